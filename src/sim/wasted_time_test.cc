// Tests of the wasted-time model: checkpoint / recovery times of each policy.
#include "sim/wasted_time.h"

#include <gtest/gtest.h>

namespace gemini::sim {
namespace {

TEST(SimWastedTimeTest, DefaultClusterCosts) {
  ClusterModel m;  // 100B params x 12 B, 16 machines, 400 Gbps, 20 Gbps storage, m = 2
  EXPECT_DOUBLE_EQ(CheckpointBytes(m), 1.2e12);
  EXPECT_NEAR(RemoteCheckpointSeconds(m), 480, 1e-9);  // 1.2 TB at 2.5 GB/s
  EXPECT_NEAR(GeminiCheckpointSeconds(m), 1.5, 1e-9);  // one 75 GB copy at 50 GB/s

  auto strawman = CostsOf(m, Policy::kStrawman);
  ASSERT_TRUE(strawman.ok());
  EXPECT_NEAR(strawman->primary.interval_s, 3 * 3600, 1e-9);
  EXPECT_NEAR(strawman->primary.ExpectedWaste(), 480 + 5400 + 480, 1e-9);

  auto highfreq = CostsOf(m, Policy::kHighFreq);
  EXPECT_NEAR(highfreq->primary.interval_s, 480, 1e-9);  // 1/f = max(t_ckpt, T_iter)
  EXPECT_NEAR(highfreq->primary.ExpectedWaste(), 480 + 240 + 480, 1e-9);

  auto gemini = CostsOf(m, Policy::kGemini);
  EXPECT_NEAR(gemini->primary.interval_s, 30, 1e-9);  // every iteration
  double pcie = 75e9 / (8 * 16e9);
  EXPECT_NEAR(gemini->primary.recovery_s, 1.5 + pcie, 1e-9);
  EXPECT_NEAR(gemini->fallback.ExpectedWaste(), 6360, 1e-9);  // persistent tier every 3 h
}

TEST(SimWastedTimeTest, GeminiWastesFarLessThanHighFreq) {
  ClusterModel m;
  double gemini = *ExpectedWastePerFailure(m, Policy::kGemini, 1);
  double highfreq = *ExpectedWastePerFailure(m, Policy::kHighFreq, 1);
  double strawman = *ExpectedWastePerFailure(m, Policy::kStrawman, 1);
  EXPECT_GT(highfreq / gemini, 13);  // the paper's headline: > 13x faster recovery
  EXPECT_GT(strawman, highfreq);
}

TEST(SimWastedTimeTest, SimultaneousFailuresWeighTheFallback) {
  ClusterModel m;  // N = 16, m = 2: two failures recover from memory with p = 14/15
  double mem = CostsOf(m, Policy::kGemini)->primary.ExpectedWaste();
  double persist = CostsOf(m, Policy::kGemini)->fallback.ExpectedWaste();
  EXPECT_NEAR(*ExpectedWastePerFailure(m, Policy::kGemini, 1), mem, 1e-9);
  EXPECT_NEAR(*ExpectedWastePerFailure(m, Policy::kGemini, 2), (14 * mem + persist) / 15, 1e-9);
  m.replicas = 1;  // no remote copy: every machine failure needs persistent storage
  EXPECT_NEAR(*ExpectedWastePerFailure(m, Policy::kGemini, 1), persist, 1e-9);
}

TEST(SimWastedTimeTest, SlowLinksBoundCheckpointTime) {
  ClusterModel m;
  m.network_gbps = 1;  // 16 Gbps in all is below the 20 Gbps storage
  EXPECT_NEAR(RemoteCheckpointSeconds(m), 1.2e12 / (16 * 1e9 / 8), 1e-6);
  m = ClusterModel{};
  m.network_gbps = 100000;  // network no longer the limit: PCIe is
  EXPECT_NEAR(GeminiCheckpointSeconds(m), 75e9 / (8 * 16e9), 1e-9);
}

TEST(SimWastedTimeTest, AnalyticRatio) {
  EXPECT_DOUBLE_EQ(AnalyticEffectiveRatio(0, 1000), 1.0);
  EXPECT_NEAR(AnalyticEffectiveRatio(8, 1200), 1 - 8 * 1200 / 86400.0, 1e-12);
  EXPECT_EQ(AnalyticEffectiveRatio(100, 6360), 0.0);
}

TEST(SimWastedTimeTest, InvalidModelIsAnError) {
  ClusterModel m;
  m.storage_gbps = 0;
  EXPECT_EQ(CostsOf(m, Policy::kStrawman).status().code(), Code::kInvalidArgument);
  m = ClusterModel{};
  m.replicas = 17;
  EXPECT_EQ(CostsOf(m, Policy::kGemini).status().code(), Code::kInvalidArgument);
  m = ClusterModel{};
  m.replicas = 3;
  m.placement = PlacementStrategy::kGroup;  // 3 does not divide 16
  EXPECT_EQ(ValidateModel(m).code(), Code::kInvalidArgument);
  m = ClusterModel{};
  m.iteration_s = -1;
  EXPECT_FALSE(ValidateModel(m).ok());
  EXPECT_EQ(ExpectedWastePerFailure(ClusterModel{}, Policy::kGemini, 0).status().code(),
            Code::kInvalidArgument);
}

}  // namespace
}  // namespace gemini::sim
