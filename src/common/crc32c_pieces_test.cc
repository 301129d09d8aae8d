#include "common/crc32c_pieces.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "common/crc32c.h"

namespace gemini::crc32c_pieces {
namespace {

// The kernel's per-piece loop: words through slicing-by-4, the tail bytewise.
uint32_t PieceRaw(const Tables& t, const uint8_t* p, uint64_t n) {
  uint32_t s = 0;
  uint64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    uint32_t w;
    std::memcpy(&w, p + i, 4);
    s = FeedWord(t.slice, s, w);
  }
  return Feed(t.slice, s, p + i, n - i);
}

TEST(Crc32cPieces, FeedMatchesTheStandardCheckValue) {
  Tables t;
  t.Fill();
  const char* s = "123456789";
  EXPECT_EQ(~Feed(t.slice, ~0u, reinterpret_cast<const uint8_t*>(s), 9), 0xE3069283u);
}

TEST(Crc32cPieces, FoldedPiecesEqualOnePassForAnySplit) {
  Tables t;
  t.Fill();
  std::mt19937_64 rng(7);
  std::vector<uint8_t> data(1 << 20);
  for (auto& b : data) b = static_cast<uint8_t>(rng());
  for (uint64_t len : {0ull, 1ull, 3ull, 4096ull, 65537ull, 1ull << 20}) {
    for (uint64_t piece : {1ull, 5ull, 16ull, 4096ull, 16384ull}) {
      Folder f;
      for (uint64_t at = 0; at < len; at += piece) {
        uint64_t n = std::min(piece, len - at);
        f.Add(t.shift, PieceRaw(t, data.data() + at, n), n);
      }
      EXPECT_EQ(f.Crc(), Crc32c(data.data(), len)) << "len " << len << " piece " << piece;
    }
  }
}

TEST(Crc32cPieces, ShiftComposesLengths) {
  Tables t;
  t.Fill();
  uint32_t s = 0x12345678u;
  EXPECT_EQ(Shift(t.shift, Shift(t.shift, s, 1000), 24), Shift(t.shift, s, 1024));
  std::vector<uint8_t> zeros(1024, 0);
  EXPECT_EQ(Shift(t.shift, s, 1024), Feed(t.slice, s, zeros.data(), zeros.size()));
}

}  // namespace
}  // namespace gemini::crc32c_pieces
