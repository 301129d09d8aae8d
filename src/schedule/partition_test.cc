// Tests of Algorithm 2: a plan worked by hand, the corner cases (everything
// fits, nothing fits), the R/p bound and byte coverage over random inputs.
#include "schedule/partition.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

namespace gemini::schedule {
namespace {

// Binary-exact numbers: B = 64 B/s, alpha = 0.25 s, R/p = 64 B, f(64) = 1.25 s.
PartitionParams HandParams() {
  PartitionParams p;
  p.checkpoint_bytes = 160;
  p.copies = 2;
  p.buffer_bytes = 256;
  p.sub_buffers = 4;
  p.bandwidth_Bps = 64;
  p.alpha_s = 0.25;
  p.mu = 1;
  return p;
}

void ExpectChunk(const Chunk& c, int copy, uint64_t offset, uint64_t length, bool leftover) {
  EXPECT_EQ(c.copy, copy);
  EXPECT_EQ(c.offset, offset);
  EXPECT_EQ(c.length, length);
  EXPECT_EQ(c.leftover, leftover);
}

// Independent of CheckPlan: counts how often each byte of each copy is sent.
void ExpectEveryByteOnce(const PartitionPlan& plan, const PartitionParams& p) {
  std::vector<std::vector<int>> seen(p.copies, std::vector<int>(p.checkpoint_bytes, 0));
  for (const SpanPlan& s : plan.spans) {
    for (const Chunk& c : s.chunks) {
      ASSERT_LT(c.copy, p.copies);
      ASSERT_LE(c.offset + c.length, p.checkpoint_bytes);
      for (uint64_t b = c.offset; b < c.offset + c.length; ++b) ++seen[c.copy][b];
    }
  }
  for (int c = 0; c < p.copies; ++c) {
    for (uint64_t b = 0; b < p.checkpoint_bytes; ++b) {
      ASSERT_EQ(seen[c][b], 1) << "copy " << c << " byte " << b;
    }
  }
}

uint64_t BytesInIdleTime(const PartitionPlan& plan) {
  return plan.total_bytes - plan.leftover_bytes;
}

TEST(SchedulePartitionTest, WorkedByHandWithShrunkChunks) {
  PartitionParams p = HandParams();
  auto plan = Partition({3.0, 0.5, 1.0, 2.0}, p);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  ASSERT_EQ(plan->spans.size(), 4u);
  const auto& s = plan->spans;
  // Span 0 (3 s): two whole chunks (2.5 s), then (0.5 - 0.25) * 64 = 16 bytes.
  ASSERT_EQ(s[0].chunks.size(), 3u);
  ExpectChunk(s[0].chunks[0], 0, 0, 64, false);
  ExpectChunk(s[0].chunks[1], 0, 64, 64, false);
  ExpectChunk(s[0].chunks[2], 0, 128, 16, false);
  // Span 1 (0.5 s): 16 bytes, which end copy 0.
  ASSERT_EQ(s[1].chunks.size(), 1u);
  ExpectChunk(s[1].chunks[0], 0, 144, 16, false);
  // Span 2 (1 s): a shrunk chunk of 48 bytes starts copy 1.
  ASSERT_EQ(s[2].chunks.size(), 1u);
  ExpectChunk(s[2].chunks[0], 1, 0, 48, false);
  // td (2 s): 64 bytes, a shrunk 32, and 16 leftover bytes.
  ASSERT_EQ(s[3].chunks.size(), 3u);
  ExpectChunk(s[3].chunks[0], 1, 48, 64, false);
  ExpectChunk(s[3].chunks[1], 1, 112, 32, false);
  ExpectChunk(s[3].chunks[2], 1, 144, 16, true);
  EXPECT_EQ(plan->total_bytes, 320u);
  EXPECT_EQ(plan->leftover_bytes, 16u);
  EXPECT_DOUBLE_EQ(plan->extra_s, 0.25 + 16.0 / 64);
  EXPECT_DOUBLE_EQ(s[0].busy_s, 3.0);
  EXPECT_EQ(plan->ChunkCount(), 8u);
  EXPECT_TRUE(CheckPlan(*plan, p).ok());
  ExpectEveryByteOnce(*plan, p);
}

TEST(SchedulePartitionTest, SafetyFactorShrinksEverySpan) {
  PartitionParams p = HandParams();
  p.mu = 0.5;
  std::vector<double> spans = {3.0, 0.5, 1.0, 2.0};
  auto plan = Partition(spans, p);
  ASSERT_TRUE(plan.ok());
  for (size_t i = 0; i < spans.size(); ++i) EXPECT_LE(plan->spans[i].busy_s, 0.5 * spans[i]);
  // Span 0 gets 1.5 s: one whole chunk and (0.25 - 0.25) * 64 = 0 more.
  ASSERT_EQ(plan->spans[0].chunks.size(), 1u);
  EXPECT_TRUE(plan->spans[1].chunks.empty());  // 0.25 s is only alpha
  EXPECT_GT(plan->leftover_bytes, 16u);
  ExpectEveryByteOnce(*plan, p);
}

// A paper-like setting: 4 GB shard, one remote copy (m = 2), 128 MB as
// 4 x 32 MB, 50 GB/s, 1 ms start-up; idle spans of a ZeRO-3 iteration.
TEST(SchedulePartitionTest, PaperLikeEverythingFits) {
  PartitionParams p;
  p.checkpoint_bytes = 4ull << 30;
  p.copies = 1;
  p.buffer_bytes = 128ull << 20;
  p.sub_buffers = 4;
  p.bandwidth_Bps = 50e9;
  p.alpha_s = 1e-3;
  std::vector<double> spans = {0.02, 0.005, 0.04, 0.001, 0.03, 0.2};
  auto plan = Partition(spans, p);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->leftover_bytes, 0u);
  EXPECT_EQ(plan->extra_s, 0);
  EXPECT_TRUE(CheckPlan(*plan, p).ok()) << CheckPlan(*plan, p).ToString();
  for (size_t i = 0; i < spans.size(); ++i) {
    EXPECT_LE(plan->spans[i].busy_s, p.mu * spans[i] + 1e-12);
    for (const Chunk& c : plan->spans[i].chunks) EXPECT_LE(c.length, 32ull << 20);
  }
  EXPECT_TRUE(plan->spans[3].chunks.empty());  // 0.9 ms < alpha
}

TEST(SchedulePartitionTest, NothingFitsAllLeftoverInLastSpan) {
  PartitionParams p = HandParams();
  auto plan = Partition({0.1, 0.25, 0, 0.2}, p);  // every span at most alpha
  ASSERT_TRUE(plan.ok());
  for (size_t i = 0; i + 1 < plan->spans.size(); ++i) EXPECT_TRUE(plan->spans[i].chunks.empty());
  EXPECT_EQ(plan->leftover_bytes, plan->total_bytes);
  for (const Chunk& c : plan->spans.back().chunks) EXPECT_TRUE(c.leftover);
  EXPECT_DOUBLE_EQ(plan->extra_s, 2 * SendSeconds(160, p));  // 2 x (3 chunks: 0.75 s + 2.5 s)
  EXPECT_DOUBLE_EQ(plan->extra_s, 6.5);
  ExpectEveryByteOnce(*plan, p);
}

TEST(SchedulePartitionTest, UnboundedLastSpanTakesTheRest) {
  PartitionParams p = HandParams();
  auto plan = Partition({1.0, std::numeric_limits<double>::infinity()}, p);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->leftover_bytes, 0u);
  for (const Chunk& c : plan->spans[1].chunks) EXPECT_LE(c.length, 64u);
  ExpectEveryByteOnce(*plan, p);
}

TEST(SchedulePartitionTest, NothingToSend) {
  PartitionParams p = HandParams();
  p.copies = 0;
  auto plan = Partition({1.0}, p);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->ChunkCount(), 0u);
  p.copies = 2;
  p.checkpoint_bytes = 0;
  plan = Partition({1.0}, p);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->ChunkCount(), 0u);
  EXPECT_TRUE(CheckPlan(*plan, p).ok());
}

TEST(SchedulePartitionTest, OneVersusFourSubBuffers) {
  PartitionParams p1 = HandParams();
  p1.sub_buffers = 1;  // chunks up to 256 bytes
  PartitionParams p4 = HandParams();
  std::vector<double> spans = {3.0, 0.5, 1.0, 2.0};
  auto plan1 = Partition(spans, p1);
  auto plan4 = Partition(spans, p4);
  ASSERT_TRUE(plan1.ok());
  ASSERT_TRUE(plan4.ok());
  for (const SpanPlan& s : plan1->spans) {
    for (const Chunk& c : s.chunks) EXPECT_LE(c.length, 256u);
  }
  for (const SpanPlan& s : plan4->spans) {
    for (const Chunk& c : s.chunks) EXPECT_LE(c.length, 64u);
  }
  // Bigger chunks pay alpha less often: p = 1 fits at least as much.
  EXPECT_LT(plan1->ChunkCount(), plan4->ChunkCount());
  EXPECT_GE(BytesInIdleTime(*plan1), BytesInIdleTime(*plan4));
  EXPECT_EQ(plan1->leftover_bytes, 0u);  // span 0 carries all of copy 0 as one chunk
  EXPECT_GT(plan4->leftover_bytes, 0u);
  ExpectEveryByteOnce(*plan1, p1);
  ExpectEveryByteOnce(*plan4, p4);
}

TEST(SchedulePartitionTest, RandomPlansCoverEveryByteWithinTheBound) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> unit(0, 1);
  for (int trial = 0; trial < 300; ++trial) {
    PartitionParams p;
    p.checkpoint_bytes = rng() % 3000;
    p.copies = 1 + static_cast<int>(rng() % 3);
    p.sub_buffers = 1 + static_cast<int>(rng() % 8);
    p.buffer_bytes = p.sub_buffers + rng() % 2000;
    p.bandwidth_Bps = 100 + 10000 * unit(rng);
    p.alpha_s = 0.01 * unit(rng);
    p.mu = 0.5 + 0.5 * unit(rng);
    std::vector<double> spans(1 + rng() % 8);
    for (double& t : spans) t = 0.2 * unit(rng);
    auto plan = Partition(spans, p);
    ASSERT_TRUE(plan.ok()) << plan.status().ToString();
    ASSERT_TRUE(CheckPlan(*plan, p).ok()) << "trial " << trial;
    ExpectEveryByteOnce(*plan, p);
    for (size_t i = 0; i < spans.size(); ++i) {
      EXPECT_LE(plan->spans[i].busy_s, p.mu * spans[i] + 1e-9) << "trial " << trial;
      for (const Chunk& c : plan->spans[i].chunks) EXPECT_LE(c.length, MaxChunkBytes(p));
    }
  }
}

TEST(SchedulePartitionTest, SpanCapacityMatchesAFullSpan) {
  PartitionParams p = HandParams();
  p.checkpoint_bytes = 1 << 20;
  p.copies = 1;
  for (double t : {0.0, 0.25, 0.5, 1.25, 3.0, 7.7}) {
    auto plan = Partition({t, 0}, p);
    ASSERT_TRUE(plan.ok());
    EXPECT_EQ(SpanCapacityBytes(t, p), BytesInIdleTime(*plan)) << t;
  }
  EXPECT_EQ(SpanCapacityBytes(std::numeric_limits<double>::infinity(), p),
            std::numeric_limits<uint64_t>::max());
}

TEST(SchedulePartitionTest, CheckPlanCatchesBrokenPlans) {
  PartitionParams p = HandParams();
  auto good = Partition({3.0, 0.5, 1.0, 2.0}, p);
  ASSERT_TRUE(good.ok());
  PartitionPlan overlap = *good;
  overlap.spans[1].chunks.push_back(overlap.spans[0].chunks[0]);
  EXPECT_EQ(CheckPlan(overlap, p).code(), Code::kInvalidArgument);
  PartitionPlan gap = *good;
  gap.spans[2].chunks.clear();
  EXPECT_EQ(CheckPlan(gap, p).code(), Code::kInvalidArgument);
  PartitionPlan big = *good;
  big.spans[0].chunks[0].length = 65;
  EXPECT_EQ(CheckPlan(big, p).code(), Code::kInvalidArgument);
  PartitionPlan early = *good;
  early.spans[0].chunks[0].leftover = true;
  EXPECT_EQ(CheckPlan(early, p).code(), Code::kInvalidArgument);
}

TEST(SchedulePartitionTest, BadInputsAreInvalidArgument) {
  auto bad = [](PartitionParams p, std::vector<double> spans = {1.0}) {
    return Partition(spans, p).status().code();
  };
  PartitionParams p = HandParams();
  EXPECT_EQ(bad(p, {}), Code::kInvalidArgument);
  EXPECT_EQ(bad(p, {1.0, -0.1}), Code::kInvalidArgument);
  EXPECT_EQ(bad(p, {std::nan("")}), Code::kInvalidArgument);
  auto with = [&](auto change) {
    PartitionParams q = HandParams();
    change(q);
    return bad(q);
  };
  EXPECT_EQ(with([](auto& q) { q.bandwidth_Bps = 0; }), Code::kInvalidArgument);
  EXPECT_EQ(with([](auto& q) { q.bandwidth_Bps = -5; }), Code::kInvalidArgument);
  EXPECT_EQ(with([](auto& q) { q.sub_buffers = 0; }), Code::kInvalidArgument);
  EXPECT_EQ(with([](auto& q) { q.buffer_bytes = 3; }), Code::kInvalidArgument);  // R < p
  EXPECT_EQ(with([](auto& q) { q.mu = 0; }), Code::kInvalidArgument);
  EXPECT_EQ(with([](auto& q) { q.mu = 1.1; }), Code::kInvalidArgument);
  EXPECT_EQ(with([](auto& q) { q.alpha_s = -1; }), Code::kInvalidArgument);
  EXPECT_EQ(with([](auto& q) { q.copies = -1; }), Code::kInvalidArgument);
  EXPECT_EQ(with([](auto& q) {
              q.buffer_bytes = 4;  // 1-byte chunks of a 1 GB shard
              q.checkpoint_bytes = 1ull << 30;
            }),
            Code::kInvalidArgument);
  EXPECT_EQ(bad(p, {1.0}), Code::kOk);
}

}  // namespace
}  // namespace gemini::schedule
