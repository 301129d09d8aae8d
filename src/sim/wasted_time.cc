// Checkpoint and recovery times of Gemini, Strawman and HighFreq; see wasted_time.h.
#include "sim/wasted_time.h"

#include <algorithm>
#include <cmath>

namespace gemini::sim {
namespace {

constexpr double kSecondsPerDay = 86400.0;

double BytesPerSecond(double gbps) { return gbps * 1e9 / 8; }

double ShardBytes(const ClusterModel& m) { return CheckpointBytes(m) / m.instances; }

// Copy of one machine's shard between its GPUs and its CPU memory.
double PcieSeconds(const ClusterModel& m) {
  return ShardBytes(m) / (m.gpus_per_instance * BytesPerSecond(m.pcie_gbps));
}

Status Positive(double v, const char* name) {
  if (!(v > 0) || !std::isfinite(v)) {
    return InvalidArgument(std::string(name) + " must be a positive number");
  }
  return Status::Ok();
}

TierCost RemoteTier(const ClusterModel& m, double wanted_interval_s) {
  TierCost t;
  t.ckpt_s = RemoteCheckpointSeconds(m);
  t.interval_s = std::max({wanted_interval_s, t.ckpt_s, m.iteration_s});
  t.recovery_s = RemoteCheckpointSeconds(m) + m.restart_s;
  return t;
}

TierCost MemoryTier(const ClusterModel& m) {
  TierCost t;
  t.ckpt_s = GeminiCheckpointSeconds(m);
  t.interval_s = std::max(t.ckpt_s, m.iteration_s);  // every iteration
  // A replacement fetches its shard from a peer; every machine reloads its GPUs.
  t.recovery_s = ShardBytes(m) / BytesPerSecond(m.network_gbps) + PcieSeconds(m) + m.restart_s;
  return t;
}

}  // namespace

Status ValidateModel(const ClusterModel& m) {
  GEMINI_RETURN_IF_ERROR(Positive(m.model_params, "model parameters"));
  GEMINI_RETURN_IF_ERROR(Positive(m.bytes_per_param, "bytes per parameter"));
  GEMINI_RETURN_IF_ERROR(Positive(m.network_gbps, "network bandwidth"));
  GEMINI_RETURN_IF_ERROR(Positive(m.storage_gbps, "storage bandwidth"));
  GEMINI_RETURN_IF_ERROR(Positive(m.pcie_gbps, "PCIe bandwidth"));
  GEMINI_RETURN_IF_ERROR(Positive(m.iteration_s, "iteration time"));
  GEMINI_RETURN_IF_ERROR(Positive(m.strawman_interval_s, "Strawman checkpoint interval"));
  GEMINI_RETURN_IF_ERROR(Positive(m.persist_interval_s, "persistent checkpoint interval"));
  if (m.instances < 1 || m.gpus_per_instance < 1) {
    return InvalidArgument("instances and GPUs per instance must be >= 1");
  }
  if (m.instances > kMaxProbabilityMachines) {
    return InvalidArgument("the simulator supports at most " +
                           std::to_string(kMaxProbabilityMachines) + " instances");
  }
  if (!(m.restart_s >= 0) || !std::isfinite(m.restart_s)) {
    return InvalidArgument("restart time must be >= 0");
  }
  // The placement itself checks replicas against instances.
  return MakePlacement(m.instances, m.replicas, m.placement).status();
}

const char* PolicyName(Policy p) {
  switch (p) {
    case Policy::kGemini:
      return "gemini";
    case Policy::kStrawman:
      return "strawman";
    case Policy::kHighFreq:
      return "highfreq";
  }
  return "unknown";
}

double CheckpointBytes(const ClusterModel& m) { return m.model_params * m.bytes_per_param; }

double GeminiCheckpointSeconds(const ClusterModel& m) {
  double network = (m.replicas - 1) * ShardBytes(m) / BytesPerSecond(m.network_gbps);
  return std::max(network, PcieSeconds(m));
}

double RemoteCheckpointSeconds(const ClusterModel& m) {
  // Every machine writes its shard at once; the storage's aggregate bandwidth
  // (or, if lower, the machines' own links) is the limit.
  double bw = std::min(m.storage_gbps, m.instances * m.network_gbps);
  return CheckpointBytes(m) / BytesPerSecond(bw);
}

Result<PolicyCosts> CostsOf(const ClusterModel& m, Policy policy) {
  GEMINI_RETURN_IF_ERROR(ValidateModel(m));
  switch (policy) {
    case Policy::kGemini:
      return PolicyCosts{policy, MemoryTier(m), RemoteTier(m, m.persist_interval_s)};
    case Policy::kStrawman: {
      TierCost t = RemoteTier(m, m.strawman_interval_s);
      return PolicyCosts{policy, t, t};
    }
    case Policy::kHighFreq: {
      TierCost t = RemoteTier(m, 0);  // as often as the bandwidth allows
      return PolicyCosts{policy, t, t};
    }
  }
  return InvalidArgument("unknown policy");
}

Result<double> ExpectedWastePerFailure(const ClusterModel& m, Policy policy,
                                       int machines_per_failure) {
  GEMINI_ASSIGN_OR_RETURN(PolicyCosts costs, CostsOf(m, policy));
  if (machines_per_failure < 1 || machines_per_failure > m.instances) {
    return InvalidArgument("machines per failure must be in [1, instances]");
  }
  if (policy != Policy::kGemini) return costs.primary.ExpectedWaste();
  GEMINI_ASSIGN_OR_RETURN(
      double p, RecoveryProbability(m.instances, m.replicas, m.placement, machines_per_failure));
  return p * costs.primary.ExpectedWaste() + (1 - p) * costs.fallback.ExpectedWaste();
}

double AnalyticEffectiveRatio(double failures_per_day, double waste_per_failure_s) {
  return std::max(0.0, 1.0 - failures_per_day * waste_per_failure_s / kSecondsPerDay);
}

}  // namespace gemini::sim
