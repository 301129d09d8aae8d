#include "common/crc32c.h"

#include <isa-l/crc.h>

#include <algorithm>
#include <climits>
#include <cstring>

namespace gemini {
namespace {
// Small enough to stay in L2 between the copy and the checksum.
constexpr size_t kPiece = 128 * 1024;
}  // namespace

uint32_t Crc32c(const void* data, size_t len, uint32_t crc) {
  auto* p = static_cast<unsigned char*>(const_cast<void*>(data));
  uint32_t state = ~crc;
  while (len > 0) {
    size_t n = std::min<size_t>(len, INT_MAX / 2);
    state = crc32_iscsi(p, static_cast<int>(n), state);
    p += n;
    len -= n;
  }
  return ~state;
}

uint32_t CopyWithCrc32c(void* dst, const void* src, size_t len, uint32_t crc) {
  auto* d = static_cast<unsigned char*>(dst);
  auto* s = static_cast<const unsigned char*>(src);
  uint32_t state = ~crc;
  while (len > 0) {
    size_t n = std::min(len, kPiece);
    std::memcpy(d, s, n);
    state = crc32_iscsi(d, static_cast<int>(n), state);
    d += n;
    s += n;
    len -= n;
  }
  return ~state;
}

}  // namespace gemini
