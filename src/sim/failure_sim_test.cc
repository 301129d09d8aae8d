// Tests of the failure-timeline simulator: hand-computed timelines, traces,
// Monte Carlo against the analytic model, and the figure data.
#include "sim/failure_sim.h"

#include <gtest/gtest.h>

#include <sstream>

#include "sim/figures.h"

namespace gemini::sim {
namespace {

double Progress(Policy p, const std::vector<FailureEvent>& events, double horizon) {
  auto r = SimulateRun(ClusterModel{}, p, events, horizon);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? r->effective_ratio * horizon : -1;
}

TEST(SimTimelineTest, HighFreqRollsBackToTheNewestCompleteCheckpoint) {
  // Checkpoints start every 480 s of progress and take 480 s. At t = 2000 the
  // newest complete one started at 1440; recovery then takes 480 s.
  EXPECT_NEAR(Progress(Policy::kHighFreq, {{2000, {3}}}, 10000), 1440 + (10000 - 2480), 1e-6);
  // A second failure during that recovery restarts it.
  EXPECT_NEAR(Progress(Policy::kHighFreq, {{2000, {3}}, {2100, {5}}}, 10000), 1440 + (10000 - 2580),
              1e-6);
  EXPECT_NEAR(Progress(Policy::kHighFreq, {}, 10000), 10000, 1e-9);
}

TEST(SimTimelineTest, GeminiRecoversFromMemoryUnlessAGroupIsLost) {
  double recovery = 1.5 + 75e9 / (8 * 16e9);
  // One machine: back to the iteration that started at 19980 (30 s iterations).
  EXPECT_NEAR(Progress(Policy::kGemini, {{20000, {0}}}, 30000), 19980 + (30000 - 20000 - recovery),
              1e-6);
  // Machines 0 and 1 form a group: persistent checkpoint of 10800 s (3 h).
  EXPECT_NEAR(Progress(Policy::kGemini, {{20000, {0, 1}}}, 30000), 10800 + (30000 - 20480), 1e-6);
  // Machines 0 and 2 are in different groups: memory still has everything.
  EXPECT_NEAR(Progress(Policy::kGemini, {{20000, {0, 2}}}, 30000),
              19980 + (30000 - 20000 - recovery), 1e-6);
  // Machine 1 fails while machine 0's replacement is still fetching: group lost.
  auto r = SimulateRun(ClusterModel{}, Policy::kGemini, {{20000, {0}}, {20001, {1}}}, 30000);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->failures, 2);
  EXPECT_EQ(r->fallbacks, 1);
  EXPECT_NEAR(r->effective_ratio * 30000, 10800 + (30000 - 20481), 1e-6);
}

TEST(SimTimelineTest, BadEventsAreErrors) {
  ClusterModel m;
  EXPECT_EQ(SimulateRun(m, Policy::kGemini, {{5, {16}}}, 100).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(SimulateRun(m, Policy::kGemini, {{5, {1}}, {4, {2}}}, 100).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(SimulateRun(m, Policy::kGemini, {{5, {}}}, 100).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(SimulateRun(m, Policy::kGemini, {}, 0).status().code(), Code::kInvalidArgument);
}

TEST(SimTraceTest, ParsesAndSorts) {
  std::istringstream in(
      "# seconds machines\n"
      "7200 3,4   # two at once\n"
      "\n"
      "3600.5 1\n");
  auto events = ParseFailureTrace(in, 16);
  ASSERT_TRUE(events.ok()) << events.status().ToString();
  ASSERT_EQ(events->size(), 2u);
  EXPECT_DOUBLE_EQ((*events)[0].time_s, 3600.5);
  EXPECT_EQ((*events)[1].machines, (std::vector<int>{3, 4}));
}

TEST(SimTraceTest, RejectsBadLinesWithTheirNumber) {
  for (const char* bad : {"10 16\n", "10\n", "x 1\n", "10 2 2\n", "10 1.5\n", "-3 1\n"}) {
    std::istringstream in(std::string("5 0\n") + bad);
    auto events = ParseFailureTrace(in, 16);
    EXPECT_EQ(events.status().code(), Code::kInvalidArgument) << bad;
    EXPECT_NE(events.status().message().find("line 2"), std::string::npos) << bad;
  }
  EXPECT_EQ(LoadFailureTrace("/nonexistent/trace.txt", 4).status().code(), Code::kNotFound);
}

TEST(SimMonteCarloTest, AgreesWithTheAnalyticModelAtLowRates) {
  ClusterModel m;
  MonteCarloOptions opt;
  opt.failures_per_day = 1;
  opt.trials = 300;
  auto res = RunMonteCarlo(m, opt);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  for (const auto& s : *res) {
    double analytic =
        AnalyticEffectiveRatio(1, *ExpectedWastePerFailure(m, s.policy, opt.machines_per_failure));
    std::printf("%s: simulated %.5f +- %.5f, analytic %.5f, waste/failure %.1f s\n",
                PolicyName(s.policy), s.mean_ratio, s.stderr_ratio, analytic,
                s.mean_wasted_per_failure_s);
    EXPECT_NEAR(s.mean_ratio, analytic, 0.01) << PolicyName(s.policy);
  }
}

TEST(SimMonteCarloTest, GeminiNearOneAtEightFailuresPerDay) {
  MonteCarloOptions opt;  // 8 failures a day on the default 16-machine cluster
  opt.trials = 50;
  auto res = RunMonteCarlo(ClusterModel{}, opt);
  ASSERT_TRUE(res.ok());
  const auto &gemini = (*res)[0], &strawman = (*res)[1], &highfreq = (*res)[2];
  EXPECT_GT(gemini.mean_ratio, 0.99);
  EXPECT_GT(gemini.mean_ratio, highfreq.mean_ratio);
  EXPECT_GT(highfreq.mean_ratio, strawman.mean_ratio);
}

TEST(SimMonteCarloTest, FallbackFrequencyMatchesExactProbability) {
  ClusterModel m;  // N = 16, m = 2; each event takes 2 machines: fallback 1/15
  MonteCarloOptions opt;
  opt.machines_per_failure = 2;
  opt.trials = 100;
  auto res = RunMonteCarlo(m, opt);
  ASSERT_TRUE(res.ok());
  const auto& g = (*res)[0];
  double p = 1.0 / 15, sigma = std::sqrt(p * (1 - p) / g.failures);
  EXPECT_NEAR(g.fallback_fraction, p, 5 * sigma + 0.002);  // + overlaps during recovery
}

TEST(SimMonteCarloTest, SameSeedSameAnswer) {
  MonteCarloOptions opt;
  opt.trials = 5;
  auto a = RunMonteCarlo(ClusterModel{}, opt), b = RunMonteCarlo(ClusterModel{}, opt);
  EXPECT_EQ((*a)[1].mean_ratio, (*b)[1].mean_ratio);
  opt.trials = 0;
  EXPECT_EQ(RunMonteCarlo(ClusterModel{}, opt).status().code(), Code::kInvalidArgument);
}

TEST(SimFigureTest, RecoveryFigureShape) {
  auto fig = RecoveryFigure(16);
  ASSERT_TRUE(fig.ok());
  ASSERT_EQ((*fig)["panels"].size(), 6u);
  const auto& panel = (*fig)["panels"][1];  // m = 2, k = 3
  EXPECT_EQ(panel["series"][0]["strategy"], "group");
  for (int n : panel["series"][0]["machines"]) EXPECT_EQ(n % 2, 0);
  auto& g = panel["series"][0];
  EXPECT_NEAR(g["probability"].back().get<double>(), 0.8, 1e-12);  // N = 16
  EXPECT_FALSE(FigureData("nope", FigureOptions{}).ok());
}

TEST(SimFigureTest, CheckpointTimeReduction) {
  auto fig = CheckpointTimeFigure(ClusterModel{});
  ASSERT_TRUE(fig.ok());
  const auto& bw = (*fig)["bandwidth_gbps"];
  size_t at400 = std::find(bw.begin(), bw.end(), 400.0) - bw.begin();
  const auto& n16m2 = (*fig)["reduction"][2];
  EXPECT_EQ(n16m2["instances"], 16);
  EXPECT_NEAR(n16m2["values"][at400].get<double>(), 480 / 1.5, 1e-9);
}

TEST(SimFigureTest, EffectiveTimeFigureShape) {
  FigureOptions opt;
  opt.monte_carlo.trials = 2;
  opt.monte_carlo.days = 2;
  auto fig = EffectiveTimeFigure(opt);
  ASSERT_TRUE(fig.ok()) << fig.status().ToString();
  const auto& series = (*fig)["by_failure_rate"]["series"];
  ASSERT_EQ(series.size(), 3u);
  EXPECT_EQ(series[0]["mc"][0], 1.0);  // no failures
  EXPECT_EQ(series[0]["mc"].size(), (*fig)["by_failure_rate"]["failures_per_day"].size());
  EXPECT_EQ((*fig)["by_instances"]["series"][2]["analytic"].size(),
            (*fig)["by_instances"]["instances"].size());
}

}  // namespace
}  // namespace gemini::sim
