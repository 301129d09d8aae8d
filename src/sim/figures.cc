// Sweeps behind the figure analogs; see figures.h.
#include "sim/figures.h"

#include <vector>

namespace gemini::sim {
namespace {

using nlohmann::json;

Result<json> RecoverySeries(PlacementStrategy s, int m, int k, int max_machines) {
  json series = {{"strategy", PlacementStrategyName(s)}};
  std::vector<int> ns;
  std::vector<double> ps;
  for (int n = std::max(m, k); n <= max_machines; ++n) {
    if (s == PlacementStrategy::kGroup && n % m != 0) continue;
    GEMINI_ASSIGN_OR_RETURN(double p, RecoveryProbability(n, m, s, k));
    ns.push_back(n);
    ps.push_back(p);
  }
  series["machines"] = ns;
  series["probability"] = ps;
  return series;
}

// One point of the effective-time sweeps: Monte Carlo and first-order analytic.
Status AddEffectivePoint(const ClusterModel& model, const MonteCarloOptions& mc, json& series) {
  GEMINI_ASSIGN_OR_RETURN(auto summaries, RunMonteCarlo(model, mc));
  for (size_t i = 0; i < summaries.size(); ++i) {
    GEMINI_ASSIGN_OR_RETURN(
        double waste, ExpectedWastePerFailure(model, summaries[i].policy, mc.machines_per_failure));
    json& s = series[i];
    s["mc"].push_back(summaries[i].mean_ratio);
    s["stderr"].push_back(summaries[i].stderr_ratio);
    s["analytic"].push_back(AnalyticEffectiveRatio(mc.failures_per_day, waste));
  }
  return Status::Ok();
}

json EmptyPolicySeries() {
  json series = json::array();
  for (Policy p : kAllPolicies) {
    series.push_back({{"policy", PolicyName(p)},
                      {"mc", json::array()},
                      {"stderr", json::array()},
                      {"analytic", json::array()}});
  }
  return series;
}

}  // namespace

json ModelToJson(const ClusterModel& m) {
  return {{"model_params", m.model_params},
          {"bytes_per_param", m.bytes_per_param},
          {"instances", m.instances},
          {"gpus_per_instance", m.gpus_per_instance},
          {"network_gbps", m.network_gbps},
          {"storage_gbps", m.storage_gbps},
          {"pcie_gbps", m.pcie_gbps},
          {"iteration_s", m.iteration_s},
          {"replicas", m.replicas},
          {"placement", PlacementStrategyName(m.placement)},
          {"strawman_interval_s", m.strawman_interval_s},
          {"persist_interval_s", m.persist_interval_s},
          {"restart_s", m.restart_s}};
}

namespace {

Result<json> ByFailureRate(const FigureOptions& opt) {
  const std::vector<double> rates = {0, 1, 2, 4, 6, 8, 10, 12, 14, 16};
  json series = EmptyPolicySeries();
  for (double r : rates) {
    MonteCarloOptions mc = opt.monte_carlo;
    mc.failures_per_day = r;
    GEMINI_RETURN_IF_ERROR(AddEffectivePoint(opt.model, mc, series));
  }
  return json{{"instances", opt.model.instances}, {"failures_per_day", rates}, {"series", series}};
}

Result<json> ByInstances(const FigureOptions& opt) {
  const std::vector<int> sizes = {16, 32, 64, 128, 256, 512, 1000};
  json series = EmptyPolicySeries();
  for (int n : sizes) {
    ClusterModel model = opt.model;
    model.instances = n;
    MonteCarloOptions mc = opt.monte_carlo;
    mc.failures_per_day = opt.instance_failure_rate * n;
    GEMINI_RETURN_IF_ERROR(AddEffectivePoint(model, mc, series));
  }
  return json{{"instance_failure_rate", opt.instance_failure_rate},
              {"instances", sizes},
              {"series", series}};
}

}  // namespace

Result<json> RecoveryFigure(int max_machines) {
  if (max_machines < 4 || max_machines > 4096) {
    return InvalidArgument("recovery figure needs 4 <= max machines <= 4096");
  }
  json panels = json::array();
  for (int m : {2, 3}) {
    for (int k : {2, 3, 4}) {
      json panel = {{"replicas", m}, {"failures", k}, {"series", json::array()}};
      for (auto s :
           {PlacementStrategy::kGroup, PlacementStrategy::kMixed, PlacementStrategy::kRing}) {
        GEMINI_ASSIGN_OR_RETURN(json series, RecoverySeries(s, m, k, max_machines));
        panel["series"].push_back(series);
      }
      panels.push_back(panel);
    }
  }
  return json{{"figure", "recovery"}, {"panels", panels}};
}

Result<json> CheckpointTimeFigure(const ClusterModel& model) {
  GEMINI_RETURN_IF_ERROR(ValidateModel(model));
  const std::vector<double> bandwidths = {25, 50, 100, 200, 400, 800, 1600};
  const std::vector<std::pair<int, int>> configs = {{4, 2}, {8, 2}, {16, 2}, {16, 3}};
  json reduction = json::array();
  for (auto [n, m] : configs) {
    ClusterModel c = model;
    c.instances = n;
    c.replicas = m;
    json values = json::array();
    for (double bw : bandwidths) {
      c.network_gbps = bw;
      values.push_back(RemoteCheckpointSeconds(c) / GeminiCheckpointSeconds(c));
    }
    reduction.push_back({{"instances", n}, {"replicas", m}, {"values", values}});
  }
  json gemini_s = json::array(), remote_s = json::array();
  for (double bw : bandwidths) {
    ClusterModel c = model;
    c.network_gbps = bw;
    gemini_s.push_back(GeminiCheckpointSeconds(c));
    remote_s.push_back(RemoteCheckpointSeconds(c));
  }
  return json{{"figure", "checkpoint-time"},
              {"model", ModelToJson(model)},
              {"bandwidth_gbps", bandwidths},
              {"reduction", reduction},
              {"absolute", {{"gemini_s", gemini_s}, {"remote_s", remote_s}}}};
}

Result<json> EffectiveTimeFigure(const FigureOptions& opt) {
  GEMINI_RETURN_IF_ERROR(ValidateModel(opt.model));
  if (!(opt.instance_failure_rate >= 0)) {
    return InvalidArgument("instance failure rate must be >= 0");
  }
  GEMINI_ASSIGN_OR_RETURN(json by_rate, ByFailureRate(opt));
  GEMINI_ASSIGN_OR_RETURN(json by_instances, ByInstances(opt));
  const auto& mc = opt.monte_carlo;
  return json{{"figure", "effective-time"},
              {"model", ModelToJson(opt.model)},
              {"monte_carlo",
               {{"trials", mc.trials},
                {"days", mc.days},
                {"seed", mc.seed},
                {"machines_per_failure", mc.machines_per_failure}}},
              {"by_failure_rate", by_rate},
              {"by_instances", by_instances}};
}

Result<json> FigureData(const std::string& figure, const FigureOptions& opt) {
  if (figure == "recovery") return RecoveryFigure(opt.max_machines);
  if (figure == "checkpoint-time") return CheckpointTimeFigure(opt.model);
  if (figure == "effective-time") return EffectiveTimeFigure(opt);
  return InvalidArgument("unknown figure '" + figure +
                         "' (expected recovery, checkpoint-time or effective-time)");
}

}  // namespace gemini::sim
