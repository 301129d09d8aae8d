// Tests of the link fit: known B and alpha come back from synthetic transfers,
// with noise and with outliers; degenerate inputs are rejected.
#include "schedule/link_fit.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace gemini::schedule {
namespace {

constexpr double kB = 1.25e8;    // 1 Gbit/s
constexpr double kAlpha = 2e-4;  // 200 us

std::vector<TransferSample> Synthetic(double noise, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> jitter(-noise, noise);
  std::vector<TransferSample> out;
  for (uint64_t mib = 1; mib <= 64; mib *= 2) {
    for (int rep = 0; rep < 4; ++rep) {
      uint64_t bytes = mib << 20;
      out.push_back({bytes, (kAlpha + bytes / kB) * (1 + jitter(rng))});
    }
  }
  return out;
}

TEST(ScheduleLinkFitTest, RecoversExactModel) {
  auto m = FitLinkModel(Synthetic(0, 1));
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_NEAR(m->bandwidth_Bps / kB, 1, 1e-9);
  EXPECT_NEAR(m->alpha_s, kAlpha, 1e-9);
  EXPECT_EQ(m->samples_used, 28);
  EXPECT_EQ(m->outliers, 0);
}

TEST(ScheduleLinkFitTest, NoisyMeasurements) {
  auto m = FitLinkModel(Synthetic(0.02, 2));
  ASSERT_TRUE(m.ok());
  EXPECT_NEAR(m->bandwidth_Bps / kB, 1, 0.02);
  EXPECT_NEAR(m->alpha_s, kAlpha, 5e-4);
  EXPECT_GT(m->rms_residual_s, 0);
}

TEST(ScheduleLinkFitTest, IgnoresAFewOutliers) {
  std::vector<TransferSample> s = Synthetic(0.001, 3);
  s[5].seconds *= 6;  // waited behind training traffic
  s[17].seconds *= 4;
  s.push_back({64 << 20, 3.0});  // a retransmission storm
  auto m = FitLinkModel(s);
  ASSERT_TRUE(m.ok());
  EXPECT_NEAR(m->bandwidth_Bps / kB, 1, 0.005);
  EXPECT_NEAR(m->alpha_s, kAlpha, 1e-4);
  EXPECT_GE(m->outliers, 3);
}

TEST(ScheduleLinkFitTest, NegativeInterceptFitsThroughOrigin) {
  std::vector<TransferSample> s;
  for (uint64_t b = 1000; b <= 8000; b += 1000) s.push_back({b, b / 1e6 - 1e-4});
  auto m = FitLinkModel(s);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->alpha_s, 0);
  EXPECT_GT(m->bandwidth_Bps, 1e6);
}

TEST(ScheduleLinkFitTest, DegenerateInputs) {
  auto code = [](std::vector<TransferSample> s) { return FitLinkModel(s).status().code(); };
  EXPECT_EQ(code({}), Code::kInvalidArgument);
  EXPECT_EQ(code({{100, 1.0}}), Code::kInvalidArgument);
  EXPECT_EQ(code({{100, 1.0}, {100, 1.1}, {100, 0.9}}), Code::kInvalidArgument);
  EXPECT_EQ(code({{100, 1.0}, {200, -1.0}}), Code::kInvalidArgument);
  EXPECT_EQ(code({{100, 1.0}, {200, std::nan("")}}), Code::kInvalidArgument);
  EXPECT_EQ(code({{100, 2.0}, {200, 1.0}, {300, 0.5}}), Code::kInvalidArgument);  // faster
  EXPECT_EQ(code({{100, 1.0}, {200, 1.0}}), Code::kInvalidArgument);  // size costs nothing
  EXPECT_EQ(code({{100, 1.0}, {200, 2.0}}), Code::kOk);
}

}  // namespace
}  // namespace gemini::schedule
