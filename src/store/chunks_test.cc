#include "store/chunks.h"

#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>

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

// A part of the region (one tensor): its bytes exactly, every chunk it touches
// checked, the chunks it does not touch left alone.
TEST(Chunks, RangeCopiesItsBytesAndChecksTheChunksItTouches) {
  const uint64_t data_bytes = 10 * 4096 + 1000, chunk = 4096;
  std::vector<uint8_t> src(data_bytes), region(data_bytes);
  std::mt19937 g(1);
  for (auto& b : src) b = static_cast<uint8_t>(g());
  auto crcs = CaptureInto(region.data(), data_bytes, chunk, {{src.data(), 0, data_bytes}});
  std::vector<std::pair<uint64_t, uint64_t>> ranges{
      {0, data_bytes}, {0, 0}, {4096, 4096}, {100, 5}, {4000, 300}, {8191, 20000}, {40960, 1000}};
  for (int i = 0; i < 50; ++i) {
    uint64_t off = g() % data_bytes;
    ranges.emplace_back(off, g() % (data_bytes - off + 1));
  }
  for (auto [off, len] : ranges) {
    for (int threads : {1, 3, 1000}) {
      std::vector<uint8_t> out(len + 1, 0xEE);
      ASSERT_TRUE(
          CopyRangeVerified(out.data(), region.data(), data_bytes, chunk, crcs, off, len, threads)
              .ok())
          << off << "+" << len;
      EXPECT_TRUE(std::equal(out.begin(), out.begin() + len, src.begin() + off)) << off;
      EXPECT_EQ(out[len], 0xEE);  // Nothing beyond the range.
    }
  }
  region[2 * 4096 + 10] ^= 0x01;  // Chunk 2, outside the range [2*4096+100, +50) but in its chunk.
  std::vector<uint8_t> out(data_bytes);
  Status s = CopyRangeVerified(out.data(), region.data(), data_bytes, chunk, crcs, 8292, 50);
  EXPECT_EQ(s.code(), Code::kDataLoss);
  EXPECT_NE(s.message().find("chunk 2"), std::string::npos) << s.ToString();
  EXPECT_TRUE(CopyRangeVerified(out.data(), region.data(), data_bytes, chunk, crcs, 0, 8192).ok());
  EXPECT_EQ(
      CopyRangeVerified(out.data(), region.data(), data_bytes, chunk, crcs, data_bytes, 1).code(),
      Code::kInvalidArgument);
  EXPECT_EQ(
      CopyRangeVerified(out.data(), region.data(), data_bytes, chunk, crcs, 1, UINT64_MAX).code(),
      Code::kInvalidArgument);
}

// A slot rewritten while it is read (another process's newer save): a read
// that passes its CRCs holds exactly the committed bytes. The writer flips
// one 4 KiB page at a time and puts it back; a copy that took a flipped page
// must fail, even when the check of that piece (before or after) saw it
// intact.
TEST(Chunks, AReadRacingAWriterNeverPassesOtherBytes) {
  constexpr uint64_t kBytes = 4 << 20, kChunk = 1 << 20, kPage = 4096;
  std::vector<uint8_t> region(kBytes);
  std::mt19937_64 rng(7);
  for (auto& b : region) b = static_cast<uint8_t>(rng());
  const std::vector<uint8_t> committed = region;
  const std::vector<uint32_t> crcs = ChunkCrcs(region.data(), kBytes, kChunk);
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    std::mt19937_64 r(11);
    volatile uint8_t* p = region.data();
    while (!stop.load(std::memory_order_relaxed)) {
      uint64_t at = r() % (kBytes / kPage) * kPage;
      for (uint64_t i = at; i < at + kPage; i += 64) p[i] = static_cast<uint8_t>(~p[i]);
      for (int spin = 0; spin < 200; ++spin) std::atomic_signal_fence(std::memory_order_seq_cst);
      for (uint64_t i = at; i < at + kPage; i += 64) p[i] = static_cast<uint8_t>(~p[i]);
    }
  });
  std::vector<uint8_t> dst(kBytes);
  int passed = 0, refused = 0, wrong = 0;
  for (int round = 0; round < 300; ++round) {
    std::fill(dst.begin(), dst.end(), 0);
    if (CopyOutVerified(dst.data(), region.data(), kBytes, kChunk, crcs).ok()) {
      ++passed;
      wrong += dst != committed;
    } else {
      ++refused;
    }
  }
  stop = true;
  writer.join();
  EXPECT_EQ(wrong, 0) << passed << " reads passed their CRCs, " << refused << " refused";
  EXPECT_EQ(passed + refused, 300);
}

}  // namespace
}  // namespace gemini
