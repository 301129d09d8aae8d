// One suite over every redundancy scheme: encode, lose pieces, decode.
#include "redundancy/scheme.h"

#include <gtest/gtest.h>

#include <random>

namespace gemini::redundancy {
namespace {

class SchemeTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    auto r = ParseRedundancy(GetParam());
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    auto s = MakeScheme(*r);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    scheme_ = std::move(*s);
  }

  // Every piece of a random shard of `bytes` bytes.
  std::vector<std::vector<uint8_t>> EncodeRandom(uint64_t bytes, std::vector<uint8_t>& shard) {
    std::mt19937_64 rng(bytes * 7919 + scheme_->pieces());
    shard.resize(bytes);
    for (auto& b : shard) b = static_cast<uint8_t>(rng());
    std::vector<std::vector<uint8_t>> pieces(scheme_->pieces(),
                                             std::vector<uint8_t>(scheme_->PieceBytes(bytes)));
    std::vector<uint8_t*> out;
    for (auto& p : pieces) out.push_back(p.data());
    EXPECT_TRUE(scheme_->Encode(shard, out).ok());
    return pieces;
  }

  std::unique_ptr<Scheme> scheme_;
};

TEST_P(SchemeTest, EveryLossItToleratesDecodesBitIdentically) {
  const int n = scheme_->pieces(), need = scheme_->needed();
  EXPECT_EQ(n - need, scheme_->redundancy().tolerates());
  for (uint64_t bytes : {0ull, 1ull, 7ull, 4099ull, (1ull << 20) + 13}) {
    std::vector<uint8_t> shard;
    auto pieces = EncodeRandom(bytes, shard);
    // Every subset of surviving pieces of at least `need` (all of them for
    // small n; the exhaustive list is at most 2^6 here).
    for (unsigned mask = 0; mask < (1u << n); ++mask) {
      if (__builtin_popcount(mask) < need) continue;
      std::vector<Piece> have;
      for (int i = 0; i < n; ++i)
        if (mask & (1u << i)) have.push_back({i, pieces[i]});
      std::vector<uint8_t> back(bytes, 0xAB);
      Status st = scheme_->Decode(have, back);
      ASSERT_TRUE(st.ok()) << st.ToString() << " mask " << mask;
      ASSERT_EQ(back, shard) << GetParam() << " bytes " << bytes << " mask " << mask;
    }
  }
}

TEST_P(SchemeTest, TooFewDuplicateUnknownOrMisSizedPiecesAreErrors) {
  std::vector<uint8_t> shard;
  auto pieces = EncodeRandom(1000, shard);
  std::vector<uint8_t> back(1000);
  std::vector<Piece> few;
  for (int i = 0; i + 1 < scheme_->needed(); ++i) few.push_back({i, pieces[i]});
  auto st = scheme_->Decode(few, back);
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_NE(st.message().find("are needed"), std::string::npos) << st.ToString();
  std::vector<Piece> dup = {{0, pieces[0]}, {0, pieces[0]}};
  EXPECT_EQ(scheme_->Decode(dup, back).code(), Code::kInvalidArgument);
  std::vector<Piece> unknown = {{scheme_->pieces(), pieces[0]}};
  EXPECT_EQ(scheme_->Decode(unknown, back).code(), Code::kInvalidArgument);
  std::vector<uint8_t> short_piece(pieces[0].begin(), pieces[0].end() - 1);
  std::vector<Piece> sized = {{0, short_piece}};
  EXPECT_EQ(scheme_->Decode(sized, back).code(), Code::kInvalidArgument);
  std::vector<uint8_t*> out(scheme_->pieces() + 1, back.data());
  EXPECT_EQ(scheme_->Encode(shard, out).code(), Code::kInvalidArgument);
}

TEST_P(SchemeTest, PiecesAddUpToTheMemoryFactor) {
  const uint64_t bytes = 6ull << 20;  // Divisible by every K here.
  double total = scheme_->PieceBytes(bytes) * double(scheme_->pieces());
  EXPECT_DOUBLE_EQ(total / bytes, scheme_->redundancy().memory_factor());
}

INSTANTIATE_TEST_SUITE_P(Every, SchemeTest,
                         ::testing::Values("copies:1", "copies:2", "copies:3", "rs:1+1", "rs:2+1",
                                           "rs:3+2", "rs:4+2"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& c : s)
                             if (c == ':' || c == '+') c = '_';
                           return s;
                         });

TEST(ReedSolomon, LimitsAreErrors) {
  EXPECT_FALSE(MakeScheme(Redundancy::ReedSolomon(0, 2)).ok());
  EXPECT_FALSE(MakeScheme(Redundancy::ReedSolomon(250, 10)).ok());
  EXPECT_TRUE(MakeScheme(Redundancy::ReedSolomon(200, 55)).ok());
}

}  // namespace
}  // namespace gemini::redundancy
