// Tests of the profiler on synthetic timelines: exact spans, noise and an
// outlier iteration, overlapping ops, drift detection and re-profiling, bad
// reports, concurrent reporters and the JSON export.
#include "schedule/profiler.h"

#include <gtest/gtest.h>

#include <random>
#include <thread>

namespace gemini::schedule {
namespace {

// One iteration's shape: gaps[k] is idle span k, ops[k] the duration of op k.
struct Shape {
  std::vector<double> gaps;
  std::vector<double> ops;
};

const Shape kBase = {{0.30, 0.05, 0.10, 0.08, 0.20}, {0.10, 0.12, 0.10, 0.15}};

Shape Scaled(const Shape& s, double gap_scale) {
  Shape out = s;
  for (double& g : out.gaps) g *= gap_scale;
  return out;
}

// Reports one iteration starting at t0; every duration is multiplied by
// (1 + noise) with noise uniform in [-jitter, jitter]. Returns its end time.
double Feed(Profiler& p, int64_t it, double t0, const Shape& s, double jitter = 0,
            std::mt19937_64* rng = nullptr) {
  auto d = [&](double v) {
    if (jitter == 0) return v;
    return v * (1 + std::uniform_real_distribution<double>(-jitter, jitter)(*rng));
  };
  double t = t0;
  EXPECT_TRUE(p.IterationStarted(it, t).ok());
  for (size_t k = 0; k < s.ops.size(); ++k) {
    t += d(s.gaps[k]);
    EXPECT_TRUE(p.OpStarted(it, static_cast<int>(k), t).ok());
    t += d(s.ops[k]);
    EXPECT_TRUE(p.OpFinished(it, static_cast<int>(k), t).ok());
  }
  t += d(s.gaps.back());
  EXPECT_TRUE(p.IterationEnded(it, t).ok());
  return t + 0.001;
}

std::unique_ptr<Profiler> Make(int warmup, int window = 10) {
  ProfilerOptions o;
  o.warmup_iterations = warmup;
  o.drift_window = window;
  auto p = Profiler::Create(o);
  EXPECT_TRUE(p.ok());
  return std::move(p).value();
}

TEST(ScheduleProfilerTest, ExactTimelineAfterWarmup) {
  auto p = Make(5);
  double t = 100;
  for (int it = 0; it < 4; ++it) t = Feed(*p, it, t, kBase);
  EXPECT_FALSE(p->Ready());
  EXPECT_EQ(p->Profile().status().code(), Code::kFailedPrecondition);
  Feed(*p, 4, t, kBase);
  auto prof = p->Profile();
  ASSERT_TRUE(prof.ok());
  EXPECT_EQ(prof->version, 1u);
  EXPECT_EQ(prof->iterations, 5);
  ASSERT_EQ(prof->ops.size(), 4u);
  ASSERT_EQ(prof->spans.size(), 5u);
  double start = 0;
  for (size_t k = 0; k < 5; ++k) {
    const SpanProfile& s = prof->spans[k];
    EXPECT_EQ(s.position, static_cast<int>(k));
    EXPECT_EQ(s.opened_by, static_cast<int>(k) - 1);
    EXPECT_NEAR(s.length_s, kBase.gaps[k], 1e-9);
    EXPECT_NEAR(s.start_s, start, 1e-9);
    EXPECT_NEAR(s.start_offset_s, 0, 1e-9);
    EXPECT_NEAR(s.norm_std, 0, 1e-6);
    start += kBase.gaps[k] + (k < 4 ? kBase.ops[k] : 0);
    if (k < 4) {
      EXPECT_NEAR(prof->ops[k].duration_s, kBase.ops[k], 1e-9);
    }
  }
  EXPECT_NEAR(prof->iteration_s, 1.20, 1e-9);
  EXPECT_NEAR(prof->IdleSeconds(), 0.73, 1e-9);
  EXPECT_EQ(prof->SpanLengths().size(), 5u);
}

TEST(ScheduleProfilerTest, NoiseAndAnOutlierIteration) {
  auto p = Make(20);
  std::mt19937_64 rng(11);
  double t = 0;
  for (int it = 0; it < 20; ++it) {
    Shape s = it == 7 ? Scaled(kBase, 5) : kBase;  // one very slow iteration
    t = Feed(*p, it, t, s, 0.05, &rng);
  }
  auto prof = p->Profile();
  ASSERT_TRUE(prof.ok());
  for (size_t k = 0; k < 5; ++k) {
    EXPECT_NEAR(prof->spans[k].length_s / kBase.gaps[k], 1, 0.05) << k;
    EXPECT_GT(prof->spans[k].norm_std, 0.3) << k;  // the outlier shows in the std
  }
  EXPECT_NEAR(prof->iteration_s / 1.2, 1, 0.05);
}

TEST(ScheduleProfilerTest, NormalizedStdOfNoisySpans) {
  auto p = Make(20);
  std::mt19937_64 rng(12);
  double t = 0;
  for (int it = 0; it < 20; ++it) t = Feed(*p, it, t, kBase, 0.05, &rng);
  auto prof = p->Profile();
  ASSERT_TRUE(prof.ok());
  for (const SpanProfile& s : prof->spans) {
    EXPECT_GT(s.norm_std, 0.005);
    EXPECT_LT(s.norm_std, 0.10);  // the paper's "stable" bound
  }
}

TEST(ScheduleProfilerTest, DriftTriggersAfterATimelineChangeAndNotBefore) {
  auto p = Make(20, 10);
  std::mt19937_64 rng(13);
  double t = 0;
  int64_t it = 0;
  for (; it < 60; ++it) {
    Shape s = it == 35 ? Scaled(kBase, 4) : kBase;  // an outlier after warm-up too
    t = Feed(*p, it, t, s, 0.05, &rng);
    ASSERT_FALSE(p->NeedsReprofile()) << "iteration " << it;
  }
  EXPECT_LT(p->Stats().last_drift, 0.2);
  const Shape changed = Scaled(kBase, 1.6);
  int64_t flagged = -1;
  for (; it < 80 && flagged < 0; ++it) {
    t = Feed(*p, it, t, changed, 0.05, &rng);
    if (p->NeedsReprofile()) flagged = it;
  }
  ASSERT_GE(flagged, 60 + 4);  // the window median moves after about half the window
  EXPECT_LE(flagged, 60 + 9);
  EXPECT_EQ(p->Profile()->version, 1u);  // the old profile stays readable
  for (int n = 0; n < 20; ++n, ++it) t = Feed(*p, it, t, changed, 0.05, &rng);
  EXPECT_FALSE(p->NeedsReprofile());
  auto prof = p->Profile();
  ASSERT_TRUE(prof.ok());
  EXPECT_EQ(prof->version, 2u);
  EXPECT_GT(prof->first_iteration, flagged);
  for (size_t k = 0; k < 5; ++k) EXPECT_NEAR(prof->spans[k].length_s / changed.gaps[k], 1, 0.05);
  EXPECT_EQ(p->Stats().reprofiles, 1u);
}

TEST(ScheduleProfilerTest, OpCountChangeTriggersReprofile) {
  auto p = Make(5, 3);
  double t = 0;
  int64_t it = 0;
  for (; it < 5; ++it) t = Feed(*p, it, t, kBase);
  Shape more = kBase;
  more.gaps.push_back(0.1);
  more.ops.push_back(0.1);
  t = Feed(*p, it++, t, more);
  t = Feed(*p, it++, t, more);
  EXPECT_FALSE(p->NeedsReprofile());
  t = Feed(*p, it++, t, more);
  EXPECT_TRUE(p->NeedsReprofile());
  for (int n = 0; n < 5; ++n) t = Feed(*p, it++, t, more);
  EXPECT_EQ(p->Profile()->spans.size(), 6u);
}

TEST(ScheduleProfilerTest, ProfileUsesTheCommonOpCount) {
  auto p = Make(6);
  Shape fewer = {{0.5, 0.5}, {0.2}};
  double t = Feed(*p, 0, 0, fewer);  // e.g. DDP's first iteration before bucket rebuild
  for (int it = 1; it < 6; ++it) t = Feed(*p, it, t, kBase);
  auto prof = p->Profile();
  ASSERT_TRUE(prof.ok());
  EXPECT_EQ(prof->iterations, 5);
  EXPECT_EQ(prof->ops.size(), 4u);
}

TEST(ScheduleProfilerTest, OverlappingOpsGiveZeroSpansAndOffsets) {
  auto p = Make(1);
  ASSERT_TRUE(p->IterationStarted(0, 10.0).ok());
  ASSERT_TRUE(p->OpStarted(0, 0, 10.1).ok());
  ASSERT_TRUE(p->OpStarted(0, 1, 10.2).ok());   // before op 0 finishes
  ASSERT_TRUE(p->OpFinished(0, 1, 10.3).ok());  // before op 0 finishes
  ASSERT_TRUE(p->OpFinished(0, 0, 10.5).ok());
  ASSERT_TRUE(p->OpStarted(0, 2, 10.7).ok());
  ASSERT_TRUE(p->IterationEnded(0, 11.0).ok());  // op 2 still running
  EXPECT_FALSE(p->Ready());
  ASSERT_TRUE(p->OpFinished(0, 2, 10.8).ok());  // late finish completes it
  auto prof = p->Profile();
  ASSERT_TRUE(prof.ok());
  ASSERT_EQ(prof->spans.size(), 4u);
  EXPECT_NEAR(prof->spans[0].length_s, 0.1, 1e-9);
  EXPECT_NEAR(prof->spans[1].length_s, 0, 1e-9);          // op 1 started while op 0 ran
  EXPECT_NEAR(prof->spans[2].length_s, 0.2, 1e-9);        // from op 0's finish (10.5) to 10.7
  EXPECT_NEAR(prof->spans[2].start_offset_s, 0.2, 1e-9);  // op 1 finished at 10.3
  EXPECT_NEAR(prof->spans[2].start_s, 0.5, 1e-9);
  EXPECT_NEAR(prof->spans[3].length_s, 0.2, 1e-9);
}

TEST(ScheduleProfilerTest, BadReports) {
  EXPECT_EQ(Profiler::Create({.warmup_iterations = 0}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(Profiler::Create({.length_quantile = 1.5}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(Profiler::Create({.drift_threshold = 0}).status().code(), Code::kInvalidArgument);
  auto p = Make(2);
  EXPECT_EQ(p->IterationStarted(-1, 0).code(), Code::kInvalidArgument);
  EXPECT_EQ(p->OpStarted(0, -1, 0).code(), Code::kInvalidArgument);
  EXPECT_EQ(p->OpStarted(0, 0, std::nan("")).code(), Code::kInvalidArgument);
  // A duplicate report drops the iteration.
  ASSERT_TRUE(p->IterationStarted(1, 0).ok());
  ASSERT_TRUE(p->OpStarted(1, 0, 0.1).ok());
  EXPECT_EQ(p->OpStarted(1, 0, 0.2).code(), Code::kInvalidArgument);
  ASSERT_TRUE(p->OpFinished(1, 0, 0.3).ok());
  ASSERT_TRUE(p->IterationEnded(1, 0.5).ok());
  EXPECT_EQ(p->Stats().dropped_iterations, 1u);
  // A finish before the start, and an op that never started.
  ASSERT_TRUE(p->OpStarted(2, 0, 1.0).ok());
  EXPECT_EQ(p->OpFinished(2, 0, 0.9).code(), Code::kInvalidArgument);
  ASSERT_TRUE(p->IterationStarted(3, 2.0).ok());
  ASSERT_TRUE(p->OpFinished(3, 1, 2.5).ok());
  ASSERT_TRUE(p->IterationEnded(3, 3.0).ok());
  EXPECT_EQ(p->Stats().dropped_iterations, 2u);
  // A report for a complete iteration.
  double t = Feed(*p, 4, 10, kBase);
  EXPECT_EQ(p->OpStarted(4, 0, t).code(), Code::kFailedPrecondition);
  EXPECT_EQ(p->Stats().completed_iterations, 1u);
}

TEST(ScheduleProfilerTest, AbandonedIterationsAreBounded) {
  auto p = Make(3);
  for (int it = 0; it < 10; ++it) ASSERT_TRUE(p->IterationStarted(it, it).ok());  // never end
  EXPECT_EQ(p->Stats().dropped_iterations, 6u);  // at most 4 stay open
  double t = 100;
  for (int it = 20; it < 23; ++it) t = Feed(*p, it, t, kBase);
  EXPECT_TRUE(p->Ready());
}

TEST(ScheduleProfilerTest, RequestReprofile) {
  auto p = Make(3);
  double t = 0;
  int64_t it = 0;
  for (; it < 3; ++it) t = Feed(*p, it, t, kBase);
  p->RequestReprofile();
  EXPECT_TRUE(p->NeedsReprofile());
  for (int n = 0; n < 3; ++n) t = Feed(*p, it++, t, Scaled(kBase, 2));
  EXPECT_FALSE(p->NeedsReprofile());
  EXPECT_EQ(p->Profile()->version, 2u);
  EXPECT_NEAR(p->Profile()->spans[0].length_s, 0.6, 1e-9);
}

TEST(ScheduleProfilerTest, ConcurrentReporters) {
  auto p = Make(20);
  auto run = [&](int64_t first) {
    double t = 1000.0 * static_cast<double>(first);
    for (int64_t it = first; it < first + 200; it += 2) t = Feed(*p, it, t, kBase);
  };
  std::thread a(run, 0), b(run, 1);
  for (int n = 0; n < 50; ++n) {
    (void)p->ToJson();
    (void)p->NeedsReprofile();
  }
  a.join();
  b.join();
  EXPECT_EQ(p->Stats().completed_iterations, 200u);
  EXPECT_EQ(p->Stats().dropped_iterations, 0u);
  EXPECT_FALSE(p->NeedsReprofile());
  EXPECT_NEAR(p->Profile()->spans[4].length_s, 0.20, 1e-9);
}

TEST(ScheduleProfilerTest, JsonExport) {
  auto p = Make(2);
  EXPECT_FALSE(p->ToJson()["ready"].get<bool>());
  EXPECT_TRUE(p->ToJson()["profile"].is_null());
  double t = Feed(*p, 0, 0, kBase);
  Feed(*p, 1, t, kBase);
  nlohmann::json j = p->ToJson();
  EXPECT_TRUE(j["ready"].get<bool>());
  const nlohmann::json& prof = j["profile"];
  EXPECT_EQ(prof["version"], 1);
  EXPECT_NEAR(prof["idle_s_per_iter"].get<double>(), 0.73, 1e-9);
  EXPECT_NEAR(prof["busy_fraction"].get<double>(), 1 - 0.73 / 1.2, 1e-9);
  ASSERT_EQ(prof["timeline"].size(), 9u);  // idle, busy, idle, ..., idle
  for (size_t i = 0; i < 9; ++i) {
    EXPECT_EQ(prof["timeline"][i]["kind"], i % 2 == 0 ? "idle" : "busy");
  }
  EXPECT_EQ(prof["spans"].size(), 5u);
  EXPECT_EQ(prof["ops"].size(), 4u);
}

}  // namespace
}  // namespace gemini::schedule
