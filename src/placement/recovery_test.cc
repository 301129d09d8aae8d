// Tests of the exact recovery probability: known values, closed forms at large
// N, and agreement with two independent computations (enumeration of every
// failure set, and exact integer counting) and with Monte Carlo sampling.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "gemini/placement.h"

namespace gemini {
namespace {

constexpr PlacementStrategy kGroup = PlacementStrategy::kGroup;
constexpr PlacementStrategy kRing = PlacementStrategy::kRing;
constexpr PlacementStrategy kMixed = PlacementStrategy::kMixed;
constexpr PlacementStrategy kAll[] = {kGroup, kRing, kMixed};

double Prob(int n, int m, PlacementStrategy s, int k) {
  auto r = RecoveryProbability(n, m, s, k);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : -1;
}

long double Choose(int n, int k) {
  return std::exp(std::lgamma(n + 1.0L) - std::lgamma(k + 1.0L) - std::lgamma(n - k + 1.0L));
}

TEST(PlacementRecoveryTest, KnownValues) {
  for (auto s : {kGroup, kMixed}) {
    EXPECT_NEAR(Prob(16, 2, s, 2), 14.0 / 15.0, 1e-12);  // 0.9333...
    EXPECT_NEAR(Prob(16, 2, s, 3), 0.8, 1e-12);
  }
  EXPECT_NEAR(Prob(16, 2, kRing, 3), 352.0 / 560.0, 1e-12);  // about 63%
  EXPECT_NEAR(Prob(4, 2, kRing, 2), 1.0 / 3.0, 1e-12);
  EXPECT_NEAR(Prob(4, 2, kGroup, 2), 2.0 / 3.0, 1e-12);
}

TEST(PlacementRecoveryTest, FewerFailuresThanReplicasAlwaysRecover) {
  for (auto s : kAll) {
    for (int n : {3, 6, 12, 1024}) {
      for (int m = 1; m <= 3; ++m) {
        if (s == kGroup && n % m != 0) continue;
        for (int k = 0; k < m; ++k) EXPECT_EQ(Prob(n, m, s, k), 1.0);
      }
    }
  }
  EXPECT_EQ(Prob(8, 1, kRing, 1), 0.0);  // no replicas: any failure loses a shard
  EXPECT_EQ(Prob(8, 2, kMixed, 8), 0.0);
}

TEST(PlacementRecoveryTest, ClosedFormsAtLargeN) {
  // k = m: only a whole group (or m consecutive ring machines) loses a shard.
  EXPECT_NEAR(Prob(4096, 2, kGroup, 2), 1.0 - 2048.0 / (4096.0 * 4095.0 / 2), 1e-12);
  EXPECT_NEAR(Prob(4096, 3, kRing, 3), 1.0 - 4096.0 / Choose(4096, 3), 1e-12);
  // Mixed, 4097 machines, m = 2: 2047 groups of 2 and a ring of 3.
  EXPECT_NEAR(Prob(4097, 2, kMixed, 2), 1.0 - (2047.0 + 3.0) / Choose(4097, 2), 1e-12);
  // k = m + 1: one whole group plus any other machine.
  for (int m : {2, 4}) {
    int n = 4096, g = n / m;
    double want = 1.0 - g * (n - m) / static_cast<double>(Choose(n, m + 1));
    EXPECT_NEAR(Prob(n, m, kGroup, m + 1), want, 1e-11) << m;
  }
  // Ring, k = m + 1: a run of m + 1, or a run of exactly m and one machine apart from it.
  int n = 4000, m = 3;
  double ring_want = 1.0 - static_cast<double>(n) * (n - m - 1) / Choose(n, m + 1);
  EXPECT_NEAR(Prob(n, m, kRing, m + 1), ring_want, 1e-11);
}

// Independent check 1: enumerate all 2^N failure sets against the holders lists.
std::vector<double> EnumerateAllK(const Placement& p) {
  int n = p.machines;
  std::vector<unsigned> holder_mask(n, 0);
  for (int i = 0; i < n; ++i) {
    for (int h : p.holders[i]) holder_mask[i] |= 1u << h;
  }
  std::vector<double> safe(n + 1, 0), total(n + 1, 0);
  for (unsigned mask = 0; mask < (1u << n); ++mask) {
    bool ok = std::none_of(holder_mask.begin(), holder_mask.end(),
                           [&](unsigned h) { return (mask & h) == h; });
    int k = __builtin_popcount(mask);
    total[k] += 1;
    if (ok) safe[k] += 1;
  }
  for (int k = 0; k <= n; ++k) safe[k] /= total[k];
  return safe;
}

TEST(PlacementRecoveryTest, MatchesEnumerationOfEveryFailureSet) {
  double worst = 0;
  for (int n = 1; n <= 13; ++n) {
    for (int m = 1; m <= n; ++m) {
      for (auto s : kAll) {
        auto p = MakePlacement(n, m, s);
        if (!p.ok()) continue;
        std::vector<double> want = EnumerateAllK(*p);
        auto all = RecoveryProbabilityAllK(*p);
        ASSERT_TRUE(all.ok());
        for (int k = 0; k <= n; ++k) {
          double one = *RecoveryProbability(*p, k);
          worst = std::max({worst, std::abs(one - want[k]), std::abs((*all)[k] - want[k])});
          ASSERT_NEAR(one, want[k], 1e-12) << n << " " << m << " " << k;
          ASSERT_NEAR((*all)[k], want[k], 1e-12) << n << " " << m << " " << k;
        }
      }
    }
  }
  std::printf("max |exact - enumeration| over N <= 13: %.3g\n", worst);
}

// Independent check 2: exact integer counts of safe k-subsets. Groups
// contribute C(m, t) for t < m; the ring's count comes from a transfer matrix
// over its positions (leading run of failed machines, then the current run).
using Count = unsigned __int128;

std::vector<Count> RingCounts(int r, int m) {
  std::vector<Count> total(r + 1, 0);
  if (r < m) total[r] += 1;  // every machine failed (never the case in a placement)
  for (int lead = 0; lead < std::min(m, r); ++lead) {
    // Positions 0..lead-1 failed, position lead survives; dp[run][t] over the rest.
    std::vector<std::vector<Count>> dp(m, std::vector<Count>(r + 1, 0));
    dp[0][lead] = 1;
    for (int pos = lead + 1; pos < r; ++pos) {
      std::vector<std::vector<Count>> next(m, std::vector<Count>(r + 1, 0));
      for (int run = 0; run < m; ++run) {
        for (int t = 0; t <= r; ++t) {
          if (dp[run][t] == 0) continue;
          next[0][t] += dp[run][t];                                           // survives
          if (run + 1 < m && t + 1 <= r) next[run + 1][t + 1] += dp[run][t];  // fails
        }
      }
      dp.swap(next);
    }
    for (int run = 0; run < m; ++run) {
      if (run + lead >= m) continue;  // the run wrapping around position 0 is too long
      for (int t = 0; t <= r; ++t) total[t] += dp[run][t];
    }
  }
  return total;
}

std::vector<Count> Multiply(const std::vector<Count>& a, const std::vector<Count>& b) {
  std::vector<Count> c(a.size() + b.size() - 1, 0);
  for (size_t i = 0; i < a.size(); ++i) {
    for (size_t j = 0; j < b.size(); ++j) c[i + j] += a[i] * b[j];
  }
  return c;
}

std::vector<double> IntegerCountAllK(const Placement& p) {
  std::vector<Count> poly = {1};
  for (const auto& b : p.blocks) {
    int size = static_cast<int>(b.machines.size());
    std::vector<Count> block(size + 1, 0);
    if (b.kind == PlacementBlock::Kind::kGroup) {
      block[0] = 1;
      for (int t = 1; t < size; ++t) block[t] = block[t - 1] * (size - t + 1) / t;
    } else {
      block = RingCounts(size, p.replicas);
    }
    poly = Multiply(poly, block);
  }
  std::vector<double> prob(p.machines + 1);
  Count choose = 1;  // C(n, k), built incrementally
  for (int k = 0; k <= p.machines; ++k) {
    if (k > 0) choose = choose * (p.machines - k + 1) / k;
    prob[k] =
        static_cast<double>(static_cast<long double>(poly[k]) / static_cast<long double>(choose));
  }
  return prob;
}

double WorstDeviation(const Placement& p) {
  std::vector<double> want = IntegerCountAllK(p);
  auto all = RecoveryProbabilityAllK(p);
  EXPECT_TRUE(all.ok());
  double worst = 0;
  for (int k = 0; k <= p.machines; ++k) worst = std::max(worst, std::abs((*all)[k] - want[k]));
  return worst;
}

TEST(PlacementRecoveryTest, MatchesExactIntegerCounting) {
  double worst = 0;
  for (int n = 14; n <= 28; ++n) {
    for (int m = 1; m <= n; ++m) {
      for (auto s : kAll) {
        auto p = MakePlacement(n, m, s);
        if (p.ok()) worst = std::max(worst, WorstDeviation(*p));
      }
    }
  }
  // Larger clusters (C(100, 50) < 2^128): a spread of replica counts.
  for (int n : {48, 64, 97, 100}) {
    for (int m : {2, 3, 4, 5, 7, 16, 33, 49}) {
      for (auto s : kAll) {
        auto p = MakePlacement(n, m, s);
        if (p.ok()) worst = std::max(worst, WorstDeviation(*p));
      }
    }
  }
  std::printf("max |exact - integer counting| over 14 <= N <= 100: %.3g\n", worst);
  EXPECT_LT(worst, 1e-9);
}

TEST(PlacementRecoveryTest, SingleKAgreesWithAllKAtLargeN) {
  for (auto s : kAll) {
    auto p = MakePlacement(1536, 3, s);
    ASSERT_TRUE(p.ok());
    auto all = RecoveryProbabilityAllK(*p);
    ASSERT_TRUE(all.ok());
    for (int k : {3, 4, 10, 40, 200, 1000, 1535}) {
      EXPECT_NEAR(*RecoveryProbability(*p, k), (*all)[k], 1e-10) << k;
    }
  }
}

// Monte Carlo: sample failure sets uniformly, count the ones LostShards calls safe.
TEST(PlacementRecoveryTest, MatchesMonteCarlo) {
  std::mt19937_64 rng(12345);
  struct Case {
    int n, m;
    PlacementStrategy s;
    int k;
  };
  for (Case c : {Case{1024, 2, kMixed, 40}, Case{1023, 2, kMixed, 40}, Case{4096, 3, kRing, 300},
                 Case{4095, 4, kMixed, 600}, Case{256, 2, kRing, 12}, Case{4096, 2, kGroup, 90}}) {
    auto p = MakePlacement(c.n, c.m, c.s);
    ASSERT_TRUE(p.ok());
    std::vector<int> ids(c.n);
    std::iota(ids.begin(), ids.end(), 0);
    const int trials = 4000;
    int safe = 0;
    for (int t = 0; t < trials; ++t) {
      for (int i = 0; i < c.k; ++i) std::swap(ids[i], ids[i + rng() % (c.n - i)]);
      std::vector<int> failed(ids.begin(), ids.begin() + c.k);
      safe += LostShards(*p, failed)->empty() ? 1 : 0;
    }
    double exact = *RecoveryProbability(*p, c.k), mc = static_cast<double>(safe) / trials;
    double sigma = std::sqrt(std::max(exact * (1 - exact), 1e-4) / trials);
    std::printf("N=%d m=%d %s k=%d exact=%.6f mc=%.6f\n", c.n, c.m, PlacementStrategyName(c.s), c.k,
                exact, mc);
    EXPECT_NEAR(mc, exact, 5 * sigma) << c.n << " " << c.m << " " << c.k;
  }
}

TEST(PlacementRecoveryTest, ProbabilityIsNonIncreasingInK) {
  for (auto s : kAll) {
    auto p = MakePlacement(60, 3, s);
    auto all = RecoveryProbabilityAllK(*p);
    for (int k = 1; k <= 60; ++k) EXPECT_LE((*all)[k], (*all)[k - 1] + 1e-15);
  }
}

TEST(PlacementRecoveryTest, GroupIsNeverWorseThanRing) {
  for (int m = 2; m <= 4; ++m) {
    for (int n = 2 * m; n <= 64; n += m) {
      auto group = RecoveryProbabilityAllK(*MakePlacement(n, m, kGroup));
      auto ring = RecoveryProbabilityAllK(*MakePlacement(n, m, kRing));
      for (int k = 0; k <= n; ++k) {
        EXPECT_GE((*group)[k], (*ring)[k] - 1e-12) << n << " " << m << " " << k;
      }
    }
  }
}

TEST(PlacementRecoveryTest, InvalidInputIsAnError) {
  EXPECT_EQ(RecoveryProbability(8, 2, kRing, 9).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(RecoveryProbability(8, 2, kRing, -1).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(RecoveryProbability(9, 2, kGroup, 2).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(RecoveryProbability(0, 1, kMixed, 0).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(RecoveryProbability(kMaxProbabilityMachines + 1, 2, kMixed, 2).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(RecoveryProbabilityAllK(Placement{}).status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace gemini
