// One scenario of `gemini simulate`; see scenario.h.
#include "sim/scenario.h"

#include "gemini/placement.h"
#include "sim/figures.h"

namespace gemini::sim {
namespace {

using nlohmann::json;

// Mean of f(k) over the scenario's failure events, k being an event's machine count.
template <typename F>
Result<double> MeanOverEvents(const Scenario& s, F f) {
  double sum = 0, events = 0;
  for (auto [k, count] : s.event_sizes) {
    GEMINI_ASSIGN_OR_RETURN(double v, f(k));
    sum += v * count;
    events += count;
  }
  return sum / events;
}

Result<json> PolicyJson(const Scenario& s, const PolicySummary& r) {
  GEMINI_ASSIGN_OR_RETURN(PolicyCosts costs, CostsOf(s.model, r.policy));
  GEMINI_ASSIGN_OR_RETURN(double waste, MeanOverEvents(s, [&](int k) {
                            return ExpectedWastePerFailure(s.model, r.policy, k);
                          }));
  json j = {{"policy", PolicyName(r.policy)},
            {"checkpoint_s", costs.primary.ckpt_s},
            {"interval_s", costs.primary.interval_s},
            {"recovery_s", costs.primary.recovery_s},
            {"wasted_per_failure_s", waste},
            {"effective_ratio_analytic", AnalyticEffectiveRatio(s.failures_per_day, waste)},
            {"effective_ratio", r.mean_ratio},
            {"effective_ratio_stderr", r.stderr_ratio},
            {"simulated_wasted_per_failure_s", r.mean_wasted_per_failure_s},
            {"failures", r.failures}};
  if (r.policy == Policy::kGemini) {
    GEMINI_ASSIGN_OR_RETURN(double p, MeanOverEvents(s, [&](int k) {
                              return RecoveryProbability(s.model.instances, s.model.replicas,
                                                         s.model.placement, k);
                            }));
    j["memory_recovery_probability"] = p;
    j["fallback_fraction"] = r.fallback_fraction;
    j["persistent_recovery_s"] = costs.fallback.recovery_s;
  }
  return j;
}

}  // namespace

Result<Scenario> RunScenario(const ScenarioOptions& a) {
  const ClusterModel& model = a.model;
  Scenario s;
  s.model = model;
  double horizon_s = a.mc.days * 86400;
  if (!a.trace.empty()) {
    GEMINI_ASSIGN_OR_RETURN(auto events, LoadFailureTrace(a.trace, model.instances));
    GEMINI_ASSIGN_OR_RETURN(s.summaries, RunTrace(model, events, horizon_s));
    s.failures_per_day = s.summaries[0].failures / a.mc.days;
    for (const auto& e : events) {
      if (e.time_s < horizon_s) ++s.event_sizes[static_cast<int>(e.machines.size())];
    }
    if (s.event_sizes.empty()) s.event_sizes[1] = 1;
    return s;
  }
  s.event_sizes[a.mc.machines_per_failure] = 1;
  MonteCarloOptions mc = a.mc;
  if (a.instance_failure_rate >= 0) mc.failures_per_day = a.instance_failure_rate * model.instances;
  GEMINI_ASSIGN_OR_RETURN(s.summaries, RunMonteCarlo(model, mc));
  s.failures_per_day = mc.failures_per_day;
  return s;
}

Result<json> ScenarioJson(const ScenarioOptions& a, const Scenario& s) {
  json policies = json::array();
  for (const auto& r : s.summaries) {
    GEMINI_ASSIGN_OR_RETURN(json j, PolicyJson(s, r));
    policies.push_back(j);
  }
  return json{{"model", ModelToJson(s.model)},
              {"checkpoint_bytes", CheckpointBytes(s.model)},
              {"failures_per_day", s.failures_per_day},
              {"machines_per_failure", a.mc.machines_per_failure},
              {"days", a.mc.days},
              {"trials", a.trace.empty() ? a.mc.trials : 1},
              {"seed", a.mc.seed},
              {"trace", a.trace.empty() ? json(nullptr) : json(a.trace)},
              {"policies", policies}};
}

}  // namespace gemini::sim
