// ShmSegment: memory is reserved when a segment is made, but the agent's
// mapping gets its page table entries as bytes are first touched (making
// them all at once stalls the whole agent on some machines).
#include "store/shm_segment.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <sstream>

namespace gemini {
namespace {

// Resident kB of the mapping that starts at `at` (/proc/self/smaps); -1 if none.
long ResidentKb(const void* at) {
  std::ifstream smaps("/proc/self/smaps");
  char want[32];
  std::snprintf(want, sizeof(want), "%lx-", reinterpret_cast<unsigned long>(at));
  bool in = false;
  for (std::string line; std::getline(smaps, line);) {
    if (line.find('-') != std::string::npos && line.find(' ') > line.find('-') &&
        std::isxdigit(static_cast<unsigned char>(line[0])))
      in = line.rfind(want, 0) == 0;
    if (in && line.rfind("Rss:", 0) == 0) return std::stol(line.substr(4));
  }
  return -1;
}

TEST(ShmSegment, MemoryIsReservedButMappedAsItIsTouched) {
  const size_t size = 64 << 20;
  auto seg = ShmSegment::Create("gemini-shm-segment-test", size);
  ASSERT_TRUE(seg.ok()) << seg.status().ToString();
  EXPECT_EQ(ResidentKb((*seg)->data()), 0);
  std::memset((*seg)->data(), 1, 1 << 20);
  const long touched = ResidentKb((*seg)->data());
  EXPECT_GE(touched, 1024);
  EXPECT_LT(touched, static_cast<long>(size >> 10));
  // A trainer's mapping of the same memory is populated when made.
  auto mapped = Mapping::Map((*seg)->fd(), size, /*writable=*/false);
  ASSERT_TRUE(mapped.ok());
  EXPECT_EQ(ResidentKb((*mapped)->data()), static_cast<long>(size >> 10));
}

}  // namespace
}  // namespace gemini
