// One scenario of `gemini simulate` (without --figure): for one cluster
// model, each policy's checkpoint and recovery costs, expected waste per
// failure, and effective-training-time ratio, analytic and simulated by
// Monte Carlo over failure times or over a failure trace (failure events of
// the trace's sizes: waste and Gemini's probability of recovering from CPU
// memory averaged over them). ScenarioJson is what `gemini simulate --json`
// prints; the flags are src/cli/simulate_cmd.cc's.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/status.h"
#include "sim/failure_sim.h"
#include "sim/wasted_time.h"

namespace gemini::sim {

struct ScenarioOptions {
  ClusterModel model;  // Validated (ValidateModel).
  MonteCarloOptions mc;
  double instance_failure_rate = -1;  // Per instance-day; < 0: mc.failures_per_day.
  std::string trace;                  // Failure trace file instead of Monte Carlo.
};

struct Scenario {
  ClusterModel model;
  double failures_per_day = 0;
  std::map<int, int> event_sizes;  // machines per failure event -> events
  std::vector<PolicySummary> summaries;
};

Result<Scenario> RunScenario(const ScenarioOptions& a);

// The scenario's inputs, and per policy its costs, waste and ratios.
Result<nlohmann::json> ScenarioJson(const ScenarioOptions& a, const Scenario& s);

}  // namespace gemini::sim
