#include "store/chunks.h"

#include <gtest/gtest.h>

#include "common/crc32c.h"

namespace gemini {
namespace {

TEST(Chunks, CaptureZeroesPaddingAndChecksumsEveryChunk) {
  std::vector<uint8_t> a(10000, 0xAA), b(5000, 0xBB);
  std::vector<uint8_t> region(20000, 0xFF);
  std::vector<Piece> pieces{{a.data(), 0, a.size()}, {b.data(), 10048, b.size()}};
  const uint64_t data_bytes = 16000, chunk = 4096;
  for (int threads : {1, 2, 3}) {
    auto crcs = CaptureInto(region.data(), data_bytes, chunk, pieces, threads);
    ASSERT_EQ(crcs.size(), 4u);
    EXPECT_EQ(region[9999], 0xAA);
    EXPECT_EQ(region[10000], 0);  // Padding.
    EXPECT_EQ(region[10048], 0xBB);
    EXPECT_EQ(region[15048], 0);     // Tail padding.
    EXPECT_EQ(region[16000], 0xFF);  // Beyond data_bytes: untouched.
    for (size_t c = 0; c < 4; ++c) {
      uint64_t n = std::min<uint64_t>(chunk, data_bytes - c * chunk);
      EXPECT_EQ(crcs[c], Crc32c(region.data() + c * chunk, n)) << "chunk " << c;
    }
    std::vector<uint8_t> out(data_bytes);
    EXPECT_TRUE(CopyOutVerified(out.data(), region.data(), data_bytes, chunk, crcs, threads).ok());
    EXPECT_TRUE(std::equal(out.begin(), out.end(), region.begin()));
  }
}

TEST(Chunks, CorruptionIsDataLossNamingTheChunk) {
  std::vector<uint8_t> src(50000, 7), region(50000);
  auto crcs = CaptureInto(region.data(), src.size(), 8192, {{src.data(), 0, src.size()}});
  region[3 * 8192 + 5] ^= 0x10;
  std::vector<uint8_t> out(src.size());
  Status s = CopyOutVerified(out.data(), region.data(), src.size(), 8192, crcs, 2);
  EXPECT_EQ(s.code(), Code::kDataLoss);
  EXPECT_NE(s.message().find("chunk 3"), std::string::npos);
  crcs.pop_back();
  EXPECT_EQ(CopyOutVerified(out.data(), region.data(), src.size(), 8192, crcs).code(),
            Code::kDataLoss);
}

}  // namespace
}  // namespace gemini
