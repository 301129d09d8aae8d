// Timeline replay of failure events for each policy; see failure_sim.h.
#include "sim/failure_sim.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>
#include <random>
#include <sstream>

namespace gemini::sim {
namespace {

constexpr double kSecondsPerDay = 86400.0;

struct Tier {
  TierCost cost;
  double last_complete = 0;  // training progress captured by the newest complete checkpoint
};

// One policy's training timeline. Tier 0 is the primary tier, tier 1 the
// fallback (Gemini's persistent storage; unused by the other policies).
class Timeline {
 public:
  Timeline(const PolicyCosts& costs, const Placement* placement)
      : tiers_{Tier{costs.primary}, Tier{costs.fallback}},
        placement_(placement),
        pending_mask_(placement ? placement->machines : 0, 0) {}

  void OnFailure(const FailureEvent& e) {
    Advance(e.time_s);
    bool running = e.time_s >= down_until_;
    if (running) {
      RecordCheckpoints();
      ClearPending();
    }
    ++outcome_.failures;
    bool fallback = AddPending(e.machines);
    if (fallback && !in_fallback_) ++outcome_.fallbacks;
    in_fallback_ = fallback;
    Restore(fallback ? tiers_[1] : tiers_[0], e.time_s);
  }

  RunOutcome Finish(double horizon_s) {
    Advance(horizon_s);
    outcome_.effective_ratio = progress_ / horizon_s;
    outcome_.wasted_s = horizon_s - progress_;
    return outcome_;
  }

 private:
  void Advance(double t) {
    double from = std::max(last_t_, down_until_);
    if (t > from) progress_ += t - from;
    last_t_ = std::max(last_t_, t);
  }

  // Checkpoints start at multiples of interval_s of progress; those started
  // in this run (at or after run_start_) and finished by now count.
  void RecordCheckpoints() {
    for (Tier& tier : tiers_) {
      double done_by = progress_ - tier.cost.ckpt_s;
      if (done_by < run_start_) continue;
      double start = std::floor(done_by / tier.cost.interval_s) * tier.cost.interval_s;
      if (start >= run_start_) tier.last_complete = std::max(tier.last_complete, start);
    }
  }

  void ClearPending() {
    for (int f : pending_) pending_mask_[f] = 0;
    pending_.clear();
    in_fallback_ = false;
  }

  // Adds machines to the current failure set; true when Gemini must fall back.
  bool AddPending(const std::vector<int>& machines) {
    if (placement_ == nullptr) return false;
    for (int f : machines) {
      if (!pending_mask_[f]) pending_.push_back(f);
      pending_mask_[f] = 1;
    }
    if (in_fallback_) return true;
    auto lost = LostShards(*placement_, pending_);
    return lost.ok() && !lost->empty();
  }

  void Restore(Tier& from, double now) {
    double target = std::min(from.last_complete, progress_);
    progress_ = target;
    run_start_ = target;
    for (Tier& tier : tiers_) tier.last_complete = std::min(tier.last_complete, target);
    tiers_[0].last_complete = target;  // the restored state is what memory holds now
    down_until_ = now + from.cost.recovery_s;
  }

  Tier tiers_[2];
  const Placement* placement_;
  std::vector<char> pending_mask_;
  std::vector<int> pending_;  // machines failed since training last ran
  bool in_fallback_ = false;
  double progress_ = 0, last_t_ = 0, down_until_ = 0, run_start_ = 0;
  RunOutcome outcome_;
};

RunOutcome Replay(const PolicyCosts& costs, const Placement* placement,
                  const std::vector<FailureEvent>& events, double horizon_s) {
  Timeline timeline(costs, placement);
  for (const auto& e : events) {
    if (e.time_s >= horizon_s) break;
    timeline.OnFailure(e);
  }
  return timeline.Finish(horizon_s);
}

Status CheckEvents(const std::vector<FailureEvent>& events, int instances) {
  for (size_t i = 0; i < events.size(); ++i) {
    const auto& e = events[i];
    if (!(e.time_s >= 0) || !std::isfinite(e.time_s)) {
      return InvalidArgument("failure event " + std::to_string(i) + " has a bad time");
    }
    if (i > 0 && e.time_s < events[i - 1].time_s) {
      return InvalidArgument("failure events must be sorted by time");
    }
    if (e.machines.empty()) return InvalidArgument("failure event without machines");
    for (int f : e.machines) {
      if (f < 0 || f >= instances) {
        return InvalidArgument("failed machine " + std::to_string(f) + " out of range [0, " +
                               std::to_string(instances) + ")");
      }
    }
  }
  return Status::Ok();
}

Status CheckHorizon(double horizon_s) {
  if (!(horizon_s > 0) || !std::isfinite(horizon_s)) {
    return InvalidArgument("simulated time must be positive");
  }
  return Status::Ok();
}

// Costs and (for Gemini) placement of every policy, in kAllPolicies order.
struct Prepared {
  std::vector<PolicyCosts> costs;
  Placement placement;
};

Result<Prepared> Prepare(const ClusterModel& model) {
  Prepared p;
  for (Policy policy : kAllPolicies) {
    GEMINI_ASSIGN_OR_RETURN(PolicyCosts c, CostsOf(model, policy));
    p.costs.push_back(c);
  }
  GEMINI_ASSIGN_OR_RETURN(p.placement,
                          MakePlacement(model.instances, model.replicas, model.placement));
  return p;
}

// Running sums for one policy over trials.
struct Accumulator {
  double sum = 0, sum_sq = 0, wasted = 0;
  int trials = 0, failures = 0, fallbacks = 0;

  void Add(const RunOutcome& o) {
    sum += o.effective_ratio;
    sum_sq += o.effective_ratio * o.effective_ratio;
    wasted += o.wasted_s;
    failures += o.failures;
    fallbacks += o.fallbacks;
    ++trials;
  }

  PolicySummary Summary(Policy policy) const {
    PolicySummary s{policy};
    s.mean_ratio = sum / trials;
    double var = trials > 1 ? (sum_sq - sum * sum / trials) / (trials - 1) : 0;
    s.stderr_ratio = std::sqrt(std::max(var, 0.0) / trials);
    s.mean_wasted_per_failure_s = failures > 0 ? wasted / failures : 0;
    s.fallback_fraction = failures > 0 ? static_cast<double>(fallbacks) / failures : 0;
    s.failures = failures;
    return s;
  }
};

std::vector<PolicySummary> Summaries(const std::vector<Accumulator>& acc) {
  std::vector<PolicySummary> out;
  for (size_t i = 0; i < acc.size(); ++i) out.push_back(acc[i].Summary(kAllPolicies[i]));
  return out;
}

void ReplayAll(const Prepared& prep, const std::vector<FailureEvent>& events, double horizon_s,
               std::vector<Accumulator>& acc) {
  for (size_t i = 0; i < prep.costs.size(); ++i) {
    const Placement* placement = kAllPolicies[i] == Policy::kGemini ? &prep.placement : nullptr;
    acc[i].Add(Replay(prep.costs[i], placement, events, horizon_s));
  }
}

Result<FailureEvent> ParseTraceLine(const std::string& raw, int instances) {
  std::string line = raw.substr(0, raw.find('#'));
  std::replace(line.begin(), line.end(), ',', ' ');
  std::istringstream in(line);
  FailureEvent e;
  if (!(in >> e.time_s) || !(e.time_s >= 0) || !std::isfinite(e.time_s)) {
    return InvalidArgument("expected '<seconds> <machine>...', got '" + raw + "'");
  }
  std::string tok;
  while (in >> tok) {
    size_t used = 0;
    int id = -1;
    try {
      id = std::stoi(tok, &used);
    } catch (...) {
      used = 0;
    }
    if (used != tok.size() || id < 0 || id >= instances) {
      return InvalidArgument("bad machine '" + tok + "' (expected 0.." +
                             std::to_string(instances - 1) + ")");
    }
    if (std::find(e.machines.begin(), e.machines.end(), id) != e.machines.end()) {
      return InvalidArgument("machine " + tok + " listed twice in one event");
    }
    e.machines.push_back(id);
  }
  if (e.machines.empty()) return InvalidArgument("no machine in '" + raw + "'");
  return e;
}

bool IsBlank(const std::string& line) {
  std::string s = line.substr(0, line.find('#'));
  return s.find_first_not_of(" \t\r") == std::string::npos;
}

}  // namespace

Result<std::vector<FailureEvent>> ParseFailureTrace(std::istream& in, int instances) {
  std::vector<FailureEvent> events;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (IsBlank(line)) continue;
    auto e = ParseTraceLine(line, instances);
    if (!e.ok())
      return InvalidArgument("trace line " + std::to_string(n) + ": " + e.status().message());
    events.push_back(std::move(e).value());
  }
  std::stable_sort(events.begin(), events.end(), [](const FailureEvent& a, const FailureEvent& b) {
    return a.time_s < b.time_s;
  });
  return events;
}

Result<std::vector<FailureEvent>> LoadFailureTrace(const std::string& path, int instances) {
  std::ifstream in(path);
  if (!in) return NotFound("cannot open failure trace " + path);
  return ParseFailureTrace(in, instances);
}

Result<RunOutcome> SimulateRun(const ClusterModel& model, Policy policy,
                               const std::vector<FailureEvent>& events, double horizon_s) {
  GEMINI_RETURN_IF_ERROR(CheckHorizon(horizon_s));
  GEMINI_RETURN_IF_ERROR(CheckEvents(events, model.instances));
  GEMINI_ASSIGN_OR_RETURN(PolicyCosts costs, CostsOf(model, policy));
  GEMINI_ASSIGN_OR_RETURN(Placement placement,
                          MakePlacement(model.instances, model.replicas, model.placement));
  return Replay(costs, policy == Policy::kGemini ? &placement : nullptr, events, horizon_s);
}

std::vector<FailureEvent> SampleFailures(const MonteCarloOptions& opt, int instances,
                                         double horizon_s, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::exponential_distribution<double> gap(opt.failures_per_day / kSecondsPerDay);
  std::vector<int> ids(instances);
  std::iota(ids.begin(), ids.end(), 0);
  std::vector<FailureEvent> events;
  if (!(opt.failures_per_day > 0)) return events;
  for (double t = gap(rng); t < horizon_s; t += gap(rng)) {
    FailureEvent e{t, {}};
    for (int i = 0; i < opt.machines_per_failure; ++i) {
      std::uniform_int_distribution<int> pick(i, instances - 1);
      std::swap(ids[i], ids[pick(rng)]);
      e.machines.push_back(ids[i]);
    }
    events.push_back(std::move(e));
  }
  return events;
}

Result<std::vector<PolicySummary>> RunMonteCarlo(const ClusterModel& model,
                                                 const MonteCarloOptions& opt) {
  if (!(opt.failures_per_day >= 0) || !std::isfinite(opt.failures_per_day)) {
    return InvalidArgument("failures per day must be >= 0");
  }
  if (opt.machines_per_failure < 1 || opt.machines_per_failure > model.instances) {
    return InvalidArgument("machines per failure must be in [1, instances]");
  }
  if (opt.trials < 1) return InvalidArgument("trials must be >= 1");
  double horizon_s = opt.days * kSecondsPerDay;
  GEMINI_RETURN_IF_ERROR(CheckHorizon(horizon_s));
  GEMINI_ASSIGN_OR_RETURN(Prepared prep, Prepare(model));
  std::vector<Accumulator> acc(prep.costs.size());
  std::seed_seq seeds{opt.seed};
  std::vector<uint64_t> trial_seeds(opt.trials);
  seeds.generate(trial_seeds.begin(), trial_seeds.end());
  for (int t = 0; t < opt.trials; ++t) {
    auto events = SampleFailures(opt, model.instances, horizon_s, trial_seeds[t]);
    ReplayAll(prep, events, horizon_s, acc);
  }
  return Summaries(acc);
}

Result<std::vector<PolicySummary>> RunTrace(const ClusterModel& model,
                                            const std::vector<FailureEvent>& events,
                                            double horizon_s) {
  GEMINI_RETURN_IF_ERROR(CheckHorizon(horizon_s));
  GEMINI_RETURN_IF_ERROR(CheckEvents(events, model.instances));
  GEMINI_ASSIGN_OR_RETURN(Prepared prep, Prepare(model));
  std::vector<Accumulator> acc(prep.costs.size());
  ReplayAll(prep, events, horizon_s, acc);
  return Summaries(acc);
}

}  // namespace gemini::sim
