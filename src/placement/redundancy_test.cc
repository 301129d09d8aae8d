// Tests of Reed–Solomon placement (rs:K+F): parsing, group layout, lost shards,
// and the exact recovery probability against enumeration of every failure set
// and against closed forms.
#include <gtest/gtest.h>

#include <cmath>

#include "gemini/placement.h"

namespace gemini {
namespace {

TEST(Redundancy, ParsesCopiesAndReedSolomon) {
  auto c = ParseRedundancy("copies:3");
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->erasure());
  EXPECT_EQ(c->width(), 3);
  EXPECT_EQ(c->tolerates(), 2);
  EXPECT_EQ(c->ToString(), "copies:3");
  EXPECT_EQ(ParseRedundancy("2")->copies, 2);  // --replicas 2
  auto r = ParseRedundancy("rs:4+2");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->erasure());
  EXPECT_EQ(r->width(), 6);
  EXPECT_EQ(r->tolerates(), 2);
  EXPECT_DOUBLE_EQ(r->memory_factor(), 1.5);
  EXPECT_EQ(r->ToString(), "rs:4+2");
  for (const char* bad : {"", "copies:0", "copies:", "rs:4", "rs:4+0", "rs:0+2", "rs:+2", "rs:4+",
                          "rs:04+2", "rs:4+2x", "copies:-1", "rs:4-2", "reed:4+2", "rs:99999+1"}) {
    auto got = ParseRedundancy(bad);
    EXPECT_FALSE(got.ok()) << bad;
    if (!got.ok()) {
      EXPECT_NE(got.status().message().find("copies:M or rs:K+F"), std::string::npos);
    }
  }
}

TEST(Redundancy, GroupsOfKPlusFWithTheRemainderInTheLast) {
  auto p = MakePlacement(14, Redundancy::ReedSolomon(4, 2), PlacementStrategy::kMixed);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_EQ(p->blocks.size(), 2u);  // {0..5}, {6..13}: 14 = 6 + 8
  EXPECT_EQ(p->blocks[0].machines.size(), 6u);
  EXPECT_EQ(p->blocks[1].machines.size(), 8u);
  EXPECT_EQ(p->holders[7], p->blocks[1].machines);
  EXPECT_EQ(RedundancyOf(*p).ToString(), "rs:4+2");
  auto held = ShardsHeldBy(*p, 2);
  ASSERT_TRUE(held.ok());
  EXPECT_EQ(*held, (std::vector<int>{0, 1, 2, 3, 4, 5}));
  EXPECT_FALSE(MakePlacement(5, Redundancy::ReedSolomon(4, 2), PlacementStrategy::kGroup).ok());
  EXPECT_FALSE(MakePlacement(12, Redundancy::ReedSolomon(4, 2), PlacementStrategy::kRing).ok());
  // copies:M is MakePlacement(N, M, strategy).
  auto c = MakePlacement(6, Redundancy::Copies(2), PlacementStrategy::kGroup);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->parity, 0);
  EXPECT_EQ(c->holders[1], (std::vector<int>{0, 1}));
}

TEST(Redundancy, AShardIsLostWhenMoreThanFOfItsGroupFail) {
  auto p = MakePlacement(12, Redundancy::ReedSolomon(4, 2), PlacementStrategy::kGroup);
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(LostShards(*p, {0, 1})->empty());                        // 2 of group 0: decodable
  EXPECT_TRUE(LostShards(*p, {0, 1, 6, 7})->empty());                  // 2 in each group
  EXPECT_EQ(*LostShards(*p, {0, 1, 2}), (std::vector<int>{0, 1, 2}));  // 3: group 0 lost
  EXPECT_EQ(*LostShards(*p, {0, 6, 7, 8}), (std::vector<int>{6, 7, 8}));
}

// Enumerates every failure set: the probability, for each k, that LostShards
// is empty.
std::vector<double> EnumerateAllK(const Placement& p) {
  int n = p.machines;
  std::vector<double> safe(n + 1, 0), total(n + 1, 0);
  for (unsigned mask = 0; mask < (1u << n); ++mask) {
    std::vector<int> failed;
    for (int i = 0; i < n; ++i)
      if (mask & (1u << i)) failed.push_back(i);
    total[failed.size()] += 1;
    if (LostShards(p, failed)->empty()) safe[failed.size()] += 1;
  }
  for (int k = 0; k <= n; ++k) safe[k] /= total[k];
  return safe;
}

TEST(Redundancy, RecoveryProbabilityMatchesEnumeration) {
  int checked = 0;
  for (int n = 2; n <= 14; ++n) {
    for (int k = 1; k <= 5; ++k) {
      for (int f = 1; f <= 3 && k + f <= n; ++f) {
        auto p = MakePlacement(n, Redundancy::ReedSolomon(k, f), PlacementStrategy::kMixed);
        ASSERT_TRUE(p.ok()) << p.status().ToString();
        std::vector<double> want = EnumerateAllK(*p);
        auto all = RecoveryProbabilityAllK(*p);
        ASSERT_TRUE(all.ok());
        for (int failures = 0; failures <= n; ++failures) {
          auto one = RecoveryProbability(*p, failures);
          ASSERT_TRUE(one.ok());
          EXPECT_NEAR(*one, want[failures], 1e-12)
              << n << " rs:" << k << "+" << f << " k=" << failures;
          EXPECT_NEAR((*all)[failures], want[failures], 1e-12);
        }
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 100);
}

TEST(Redundancy, ClosedFormsAtLargeN) {
  // 1200 machines, rs:4+2 (200 groups of 6): 3 failures lose a shard only
  // when all three are in one group.
  auto p = MakePlacement(1200, Redundancy::ReedSolomon(4, 2), PlacementStrategy::kMixed);
  ASSERT_TRUE(p.ok());
  auto choose = [](double n, double k) {
    return std::exp(std::lgamma(n + 1) - std::lgamma(k + 1) - std::lgamma(n - k + 1));
  };
  EXPECT_EQ(*RecoveryProbability(*p, 2), 1.0);
  EXPECT_NEAR(*RecoveryProbability(*p, 3), 1.0 - 200 * choose(6, 3) / choose(1200, 3), 1e-12);
  // rs:4+2 survives any 2 failures with 1.5x memory; copies:3 needs 3x for that.
  auto copies = MakePlacement(1200, Redundancy::Copies(3), PlacementStrategy::kMixed);
  ASSERT_TRUE(copies.ok());
  EXPECT_EQ(*RecoveryProbability(*copies, 2), 1.0);
}

}  // namespace
}  // namespace gemini
