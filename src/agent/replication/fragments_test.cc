// EncodedShard and RebuildShard: every shard size (shorter than K included)
// round-trips through any K fragments; forged or stale pieces cannot spoil a
// rebuild, and corrupted ones are caught by the shard's CRCs.
#include "agent/replication/fragments.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <thread>

#include "store/chunks.h"

namespace gemini {
namespace {

struct Shard {
  Manifest manifest;
  std::vector<uint8_t> data;
  std::vector<uint32_t> crcs;
  std::unique_ptr<ShardPin> pin;
};

Shard MakeShard(uint64_t bytes, int64_t iteration) {
  Shard s;
  s.manifest.job = "job";
  s.manifest.iteration = iteration;
  s.manifest.chunk_size = 4096;
  s.manifest.entries.push_back({"t", Dtype::kUint8, {int64_t(bytes)}, 0, bytes, 0});
  s.manifest.AssignOffsets();
  s.data.resize(s.manifest.data_bytes);
  std::mt19937 g(static_cast<uint32_t>(bytes * 31 + iteration));
  for (auto& b : s.data) b = static_cast<uint8_t>(g());
  s.crcs = ChunkCrcs(s.data.data(), s.data.size(), s.manifest.chunk_size);
  s.pin = std::make_unique<ShardPin>(s.manifest, s.crcs, s.data.data(), [] {});
  return s;
}

FetchedPiece Fetched(const ShardPin& p) {
  FetchedPiece f{p.manifest, p.crcs, {}};
  f.data.assign(p.data, p.data + p.manifest.data_bytes);
  return f;
}

// Streamed fragments, each made by its own thread stripe by stripe in steps
// that do not follow the stripes, are the fragments Encode makes, CRCs too.
TEST(Fragments, StreamedFragmentsAreTheEncodedOnes) {
  const Redundancy code = Redundancy::ReedSolomon(4, 2);
  for (uint64_t bytes : {3ull, 4096ull * 4 + 1, 100000ull, 1ull << 20}) {
    Shard s = MakeShard(bytes, 9);
    std::vector<uint8_t> whole_buffer, streamed_buffer;
    auto whole = EncodedShard::Encode(*s.pin, code, &whole_buffer);
    auto streamed = EncodedShard::Make(*s.pin, code, &streamed_buffer);
    ASSERT_TRUE(whole.ok() && streamed.ok());
    std::vector<std::thread> senders;
    for (int i = 0; i < 6; ++i)
      senders.emplace_back([&, i] {
        auto f = (*streamed)->Stream(i);
        ASSERT_TRUE(f.ok());
        const uint64_t n = f->pin->manifest.data_bytes;
        for (uint64_t end = 1000;; end += 1000 + 977 * i) {
          ASSERT_TRUE(f->maker->MakeUpTo(std::min(end, n)).ok());
          if (end >= n) break;
        }
        const ShardPin& want = (*whole)->fragment(i);
        EXPECT_EQ(f->pin->manifest.Encode(), want.manifest.Encode());
        EXPECT_EQ(f->maker->Crcs(), want.crcs);
        EXPECT_EQ(0, std::memcmp(f->pin->data, want.data, n)) << "fragment " << i;
      });
    for (auto& t : senders) t.join();
  }
}

TEST(Fragments, EveryKFragmentsRebuildEveryShardSize) {
  const Redundancy code = Redundancy::ReedSolomon(4, 2);
  std::vector<uint8_t> buffer;
  for (uint64_t bytes : {1ull, 3ull, 5ull, 4096ull * 4 + 1, 100000ull, 1ull << 20}) {
    Shard s = MakeShard(bytes, 7);
    auto enc = EncodedShard::Encode(*s.pin, code, &buffer);
    ASSERT_TRUE(enc.ok()) << enc.status().ToString();
    ASSERT_EQ((*enc)->count(), 6);
    EXPECT_EQ((*enc)->fragment_bytes(), (s.data.size() + 3) / 4);
    for (int i = 0; i < 6; ++i) {
      const ShardPin& f = (*enc)->fragment(i);
      ASSERT_TRUE(f.manifest.Validate().ok()) << f.manifest.Validate().ToString();
      EXPECT_TRUE(VerifyChunks(f.data, f.manifest.data_bytes, 4096, f.crcs).ok());
    }
    // Every set of 4 of the 6.
    for (int mask = 0; mask < 64; ++mask) {
      if (__builtin_popcount(mask) != 4) continue;
      std::vector<FetchedPiece> have;
      for (int i = 0; i < 6; ++i)
        if (mask & (1 << i)) have.push_back(Fetched((*enc)->fragment(i)));
      auto groups = GroupPieces(have);
      ASSERT_EQ(groups.size(), 1u);
      ASSERT_TRUE(groups[0].enough());
      EXPECT_EQ(groups[0].manifest.data_bytes, s.data.size());
      std::vector<uint8_t> out(s.data.size());
      ASSERT_TRUE(RebuildShard(groups[0], out.data()).ok()) << bytes << " mask " << mask;
      EXPECT_EQ(out, s.data) << bytes << " mask " << mask;
    }
  }
}

TEST(Fragments, StaleForgedAndCorruptedPiecesCannotSpoilARebuild) {
  const Redundancy code = Redundancy::ReedSolomon(2, 1);
  std::vector<uint8_t> buf_a, buf_b;
  Shard now = MakeShard(50000, 8), old = MakeShard(50000, 7);
  auto a = EncodedShard::Encode(*now.pin, code, &buf_a);
  auto b = EncodedShard::Encode(*old.pin, code, &buf_b);
  ASSERT_TRUE(a.ok() && b.ok());
  // A stale fragment of iteration 7 forms its own group: too few to rebuild.
  std::vector<FetchedPiece> have{Fetched((*b)->fragment(0)), Fetched((*a)->fragment(1)),
                                 Fetched((*a)->fragment(2)), Fetched((*a)->fragment(2))};
  auto groups = GroupPieces(have);
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_FALSE(groups[0].enough());
  ASSERT_TRUE(groups[1].enough());
  EXPECT_EQ(groups[1].fragments, 2) << "a repeated index counts once";
  std::vector<uint8_t> out(now.data.size());
  EXPECT_EQ(RebuildShard(groups[0], out.data()).code(), Code::kInvalidArgument);
  ASSERT_TRUE(RebuildShard(groups[1], out.data()).ok());
  EXPECT_EQ(out, now.data);
  // A fragment whose bytes were altered after its own CRCs were made (a
  // hostile holder): the rebuilt shard fails the shard's CRCs.
  std::vector<FetchedPiece> bad{Fetched((*a)->fragment(0)), Fetched((*a)->fragment(2))};
  bad[1].data[100] ^= 1;
  auto g = GroupPieces(bad);
  ASSERT_EQ(g.size(), 1u);
  EXPECT_EQ(RebuildShard(g[0], out.data()).code(), Code::kDataLoss);
  // A whole shard among the pieces is used as it is.
  std::vector<FetchedPiece> whole{Fetched(*now.pin)};
  auto w = GroupPieces(whole);
  ASSERT_TRUE(w[0].whole && w[0].enough());
  std::fill(out.begin(), out.end(), 0);
  ASSERT_TRUE(RebuildShard(w[0], out.data()).ok());
  EXPECT_EQ(out, now.data);
}

}  // namespace
}  // namespace gemini
