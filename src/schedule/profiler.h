// Profiler: the idle spans of the training traffic, per position in the
// iteration (docs/design.md, part 3, "Profile").
//
// The training integration reports, for every iteration, when it starts,
// when each communication op starts and finishes (ops numbered 0, 1, ... in
// issue order within the iteration), and when the iteration ends at its
// optimizer step. Times are double seconds on one monotonic clock, the same
// for every call; Profiler::Now() (std::chrono::steady_clock) is the one to
// use. For PyTorch DDP, report ops from a communication hook that wraps the
// allreduce future (start when the hook runs, finish in the future's
// callback); any other framework calls the same four methods.
//
// Positions: span 0 runs from the iteration start to op 0's start (opened by
// the iteration start); span j+1 runs from the moment op j and every earlier
// op have finished to op j+1's start, or to the iteration end after the last
// op (that last span, td, ends at the optimizer step). A span's
// start_offset_s is how long after its opener finishes the network goes
// idle (nonzero only when ops overlap); a span is never negative (0 when the
// next op starts before the network goes idle).
//
// Once W (warmup_iterations, default 20) complete iterations are recorded,
// the profile is computed from the iterations with the most common op count:
// per span the `length_quantile` of its length across iterations (default
// 0.5, the median, robust to a few outlier iterations; mu in the partition
// adds the safety margin, and a lower quantile such as 0.1 is safer still on
// noisy timelines), the median of its offsets and start, and its normalized
// std (std / mean of the length; the paper found < 10%).
//
// Drift: after the profile is ready, every iteration with the profiled op
// count joins a window of the last `drift_window` (default 10). With a full
// window, drift = sum over spans of |window stat - profile stat| of length
// and offset, divided by the profiled idle time per iteration; the window
// stat is the same quantile, so one outlier iteration moves nothing. Drift
// above `drift_threshold` (default 0.2), or `drift_window` iterations in a
// row with another op count, sets NeedsReprofile() and starts collecting W
// fresh iterations; the old profile stays readable meanwhile, and the new one
// replaces it with version + 1.
//
// Incomplete iterations (an op without a start when the iteration ends, a
// duplicate report) are dropped; at most 4 iterations are open at once (the
// least recently reported one is dropped beyond that). Late op finishes are
// accepted until the iteration completes. All methods are thread-safe (one
// mutex; the comm thread and the training thread may report concurrently).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace gemini::schedule {

struct ProfilerOptions {
  int warmup_iterations = 20;    // W: complete iterations per (re-)profile, >= 1
  double length_quantile = 0.5;  // statistic of each span's length, in [0, 1]
  int drift_window = 10;         // recent iterations compared with the profile, >= 1
  double drift_threshold = 0.2;  // relative change of the idle timeline that is drift, > 0
};

Status ValidateProfilerOptions(const ProfilerOptions& options);

struct OpProfile {
  int index = 0;
  double start_s = 0;     // median start, from the iteration start
  double duration_s = 0;  // median duration
};

struct SpanProfile {
  int position = 0;           // 0 .. ops.size()
  int opened_by = -1;         // op whose finish opens it; -1: the iteration start
  double start_s = 0;         // median start, from the iteration start
  double start_offset_s = 0;  // median delay from the opener's finish to idle
  double length_s = 0;        // length_quantile of the length
  double norm_std = 0;        // std / mean of the length (0 when the mean is 0)
};

struct IterationProfile {
  uint64_t version = 0;  // 1 for the first profile, +1 per re-profile
  int iterations = 0;    // iterations the statistics came from
  int64_t first_iteration = 0;
  int64_t last_iteration = 0;
  double iteration_s = 0;  // median iteration time
  std::vector<OpProfile> ops;
  std::vector<SpanProfile> spans;  // ops.size() + 1, by position; the last is td

  double IdleSeconds() const;               // sum of span lengths
  std::vector<double> SpanLengths() const;  // t1..td, the input of Partition()
};

// For `gemini status`: version, iteration time, ops, spans, and "timeline",
// the busy/idle segments of one iteration in order.
nlohmann::json ProfileToJson(const IterationProfile& profile);

struct ProfilerStats {
  uint64_t completed_iterations = 0;  // accepted complete iterations
  uint64_t dropped_iterations = 0;    // incomplete or inconsistent ones
  uint64_t reprofiles = 0;            // times drift (or a request) restarted profiling
  double last_drift = 0;              // drift of the last full window
};

class Profiler {
 public:
  static Result<std::unique_ptr<Profiler>> Create(const ProfilerOptions& options = {});
  // Seconds on std::chrono::steady_clock.
  static double Now();

  // InvalidArgument for a negative iteration or op index, a non-finite time,
  // a duplicate report or a finish before its start (the iteration is then
  // dropped); FailedPrecondition for an iteration already complete.
  Status IterationStarted(int64_t iteration, double t);
  Status IterationEnded(int64_t iteration, double t);
  Status OpStarted(int64_t iteration, int op_index, double t);
  Status OpFinished(int64_t iteration, int op_index, double t);

  bool Ready() const;
  // The current profile; FailedPrecondition until the first one is computed.
  Result<IterationProfile> Profile() const;
  bool NeedsReprofile() const;
  // Discards the samples and open iterations, forgets which iterations were
  // complete (training may resume from an earlier one after recovery), and
  // profiles W fresh iterations.
  void RequestReprofile();
  ProfilerStats Stats() const;
  // State and profile for `gemini status`.
  nlohmann::json ToJson() const;

 private:
  // One complete iteration, times relative to its start.
  struct Timeline {
    int64_t iteration = 0;
    double iteration_s = 0;
    std::vector<double> op_start, op_duration;
    std::vector<double> span_start, span_offset, span_length;
  };
  struct OpTimes {
    std::optional<double> start, finish;
  };
  struct Open {
    std::optional<double> start, end;
    std::vector<OpTimes> ops;
    bool bad = false;
    uint64_t touched = 0;
  };

  explicit Profiler(const ProfilerOptions& options) : options_(options) {}
  static Timeline Extract(int64_t iteration, const Open& open);
  // Statistics over iterations that all have the same op count.
  static IterationProfile Summarize(const std::vector<const Timeline*>& use, double quantile);
  // Relative change of a full window against the profile (see above).
  static double Drift(const std::deque<Timeline>& window, const IterationProfile& profile,
                      double quantile);
  // All below: mu_ held.
  Result<Open*> Touch(int64_t iteration);
  Status Bad(int64_t iteration, Open& open, const std::string& why);
  void Forget(int64_t iteration, bool dropped);
  void MaybeComplete(int64_t iteration);
  void Accept(Timeline timeline);
  void BuildProfile();
  void CheckDrift(const Timeline& timeline);
  void StartReprofile(const std::string& why);

  const ProfilerOptions options_;
  mutable std::mutex mu_;
  std::map<int64_t, Open> open_;   // guarded by mu_
  std::deque<int64_t> done_;       // recently completed or dropped; guarded by mu_
  uint64_t clock_ = 0;             // event counter for least-recently-touched; guarded by mu_
  std::vector<Timeline> samples_;  // toward the next profile; guarded by mu_
  std::deque<Timeline> window_;    // drift window; guarded by mu_
  int mismatch_run_ = 0;           // iterations in a row with another op count; guarded
  std::optional<IterationProfile> profile_;  // guarded by mu_
  bool needs_reprofile_ = false;             // guarded by mu_
  ProfilerStats stats_;                      // guarded by mu_
};

}  // namespace gemini::schedule
