// Monte Carlo over failure times: the effective-training-time ratio of
// Gemini, Strawman and HighFreq (wasted_time.h) on one timeline.
//
// A run lasts horizon_s of wall-clock time. Failure events arrive as a Poisson
// process (failures_per_day for the whole cluster), each taking down
// machines_per_failure distinct machines chosen uniformly, or come from a
// trace. Training progresses while no recovery is under way; checkpoints start
// every interval_s of training progress and are complete ckpt_s later. At a
// failure, training rolls back to the newest complete checkpoint and stops for
// the tier's recovery_s. Machines failing while a recovery is under way join
// the same failure set; for Gemini, once that set holds every holder of some
// shard (LostShards), recovery falls back to the persistent tier. The ratio is
// training progress at the horizon divided by horizon_s. Every trial draws one
// failure sequence and replays it for all three policies. Pure functions;
// thread-safe.
#pragma once

#include <cstdint>
#include <istream>
#include <string>
#include <vector>

#include "common/status.h"
#include "sim/wasted_time.h"

namespace gemini::sim {

struct FailureEvent {
  double time_s = 0;          // wall-clock seconds from the start of the run
  std::vector<int> machines;  // distinct ids in [0, instances)
};

// Trace format, one event per line: "<seconds> <machine>[ <machine>...]"
// (machines separated by spaces or commas); '#' starts a comment. Events may
// come in any order; they are returned sorted by time.
Result<std::vector<FailureEvent>> ParseFailureTrace(std::istream& in, int instances);
Result<std::vector<FailureEvent>> LoadFailureTrace(const std::string& path, int instances);

struct RunOutcome {
  double effective_ratio = 0;  // progress / horizon
  int failures = 0;            // events inside the horizon
  int fallbacks = 0;           // Gemini recoveries from the persistent tier
  double wasted_s = 0;         // horizon - progress
};

// One policy over one failure sequence (sorted by time).
Result<RunOutcome> SimulateRun(const ClusterModel& model, Policy policy,
                               const std::vector<FailureEvent>& events, double horizon_s);

struct MonteCarloOptions {
  double failures_per_day = 8;   // cluster-wide rate of failure events
  int machines_per_failure = 1;  // machines each event takes down at once
  double days = 30;              // horizon of one trial
  int trials = 200;
  uint64_t seed = 1;
};

struct PolicySummary {
  Policy policy;
  double mean_ratio = 0;
  double stderr_ratio = 0;               // standard error of mean_ratio
  double mean_wasted_per_failure_s = 0;  // total waste / total failures
  double fallback_fraction = 0;          // fallbacks / failures (Gemini)
  int failures = 0;                      // over all trials
};

// Poisson failure sequence over [0, horizon_s).
std::vector<FailureEvent> SampleFailures(const MonteCarloOptions& opt, int instances,
                                         double horizon_s, uint64_t seed);

// Summaries in kAllPolicies order.
Result<std::vector<PolicySummary>> RunMonteCarlo(const ClusterModel& model,
                                                 const MonteCarloOptions& opt);

// The same summaries for one fixed failure sequence (a trace): one trial.
Result<std::vector<PolicySummary>> RunTrace(const ClusterModel& model,
                                            const std::vector<FailureEvent>& events,
                                            double horizon_s);

}  // namespace gemini::sim
