#include "common/crc32c.h"

#include <emmintrin.h>
#include <isa-l/crc.h>

#include <algorithm>
#include <climits>
#include <cstring>

namespace gemini {
namespace {
// Small enough to stay in L2 between the checksum and the copy.
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

namespace {

// Copies n bytes (source already in cache) with non-temporal stores: the
// destination is not read for ownership nor left in cache, so the whole
// capture moves each byte through memory once each way, like a large memcpy.
void StreamCopy(unsigned char* d, const unsigned char* s, size_t n) {
  size_t head = (16 - (reinterpret_cast<uintptr_t>(d) & 15)) & 15;
  if (head > n) head = n;
  std::memcpy(d, s, head);
  d += head;
  s += head;
  n -= head;
  size_t blocks = n / 64;
  for (size_t i = 0; i < blocks; ++i, d += 64, s += 64) {
    __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s));
    __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 16));
    __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 32));
    __m128i e = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 48));
    _mm_stream_si128(reinterpret_cast<__m128i*>(d), a);
    _mm_stream_si128(reinterpret_cast<__m128i*>(d + 16), b);
    _mm_stream_si128(reinterpret_cast<__m128i*>(d + 32), c);
    _mm_stream_si128(reinterpret_cast<__m128i*>(d + 48), e);
  }
  std::memcpy(d, s, n % 64);
}

// Copies len bytes in cache-sized pieces, returning their CRC32C. Capture
// (kChecksumCopy false) checksums each source piece, pulling it into cache,
// then streams it out; reads (true) copy each piece with plain stores and
// checksum the copy, so the CRC vouches for exactly the bytes written.
template <bool kChecksumCopy>
uint32_t CopyPieces(unsigned char* d, const unsigned char* s, size_t len, uint32_t crc) {
  uint32_t state = ~crc;
  while (len > 0) {
    size_t n = std::min(len, kPiece);
    if constexpr (kChecksumCopy) {
      std::memcpy(d, s, n);
      state = crc32_iscsi(d, static_cast<int>(n), state);
    } else {
      state = crc32_iscsi(const_cast<unsigned char*>(s), static_cast<int>(n), state);
      StreamCopy(d, s, n);
    }
    d += n;
    s += n;
    len -= n;
  }
  if constexpr (!kChecksumCopy) _mm_sfence();  // Streamed stores visible to others after this.
  return ~state;
}

}  // namespace

uint32_t CopyWithCrc32c(void* dst, const void* src, size_t len, uint32_t crc) {
  return CopyPieces<false>(static_cast<unsigned char*>(dst), static_cast<const unsigned char*>(src),
                           len, crc);
}

uint32_t CopyOutWithCrc32c(void* dst, const void* src, size_t len, uint32_t crc) {
  return CopyPieces<true>(static_cast<unsigned char*>(dst), static_cast<const unsigned char*>(src),
                          len, crc);
}

}  // namespace gemini
