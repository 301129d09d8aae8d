// The wasted-time model of checkpoint-based failure recovery (docs/design.md,
// "Why checkpoints in memory"): a failure wastes
//   T_wasted = t_ckpt + 1/(2f) + t_retrieve,   with 1/f >= max(t_ckpt, T_iter),
// the newest complete checkpoint being on average t_ckpt + 1/(2f) of training
// behind the failure, plus the time to fetch it back. Three policies:
//   Gemini    every iteration into peers' CPU memory (placement with m
//             replicas); falls back to its persistent tier (every
//             persist_interval_s) when a failure takes every holder of a shard.
//   Strawman  remote persistent storage every strawman_interval_s (3 h).
//   HighFreq  remote persistent storage as often as its bandwidth allows.
// ClusterModel holds every input with its default; the functions are pure and
// thread-safe, and reject out-of-range inputs with InvalidArgument.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "gemini/placement.h"

namespace gemini::sim {

struct ClusterModel {
  double model_params = 100e9;  // parameters (the paper's 100B models)
  double bytes_per_param = 12;  // checkpoint bytes per parameter (ZeRO-3 + Adam: 12)
  int instances = 16;           // machines N (16 x p4d.24xlarge in the paper)
  int gpus_per_instance = 8;    // GPUs per machine (8 A100 per p4d.24xlarge)
  double network_gbps = 400;    // network bandwidth of one instance
  double storage_gbps = 20;     // aggregate bandwidth of remote persistent storage (FSx)
  double pcie_gbps = 128;       // GPU <-> CPU memory copy bandwidth of one GPU
  double iteration_s = 30;      // training iteration time T_iter
  int replicas = 2;             // m: copies of each shard in CPU memory, local one included
  PlacementStrategy placement = PlacementStrategy::kMixed;
  double strawman_interval_s = 3 * 3600.0;  // Strawman's checkpoint interval
  double persist_interval_s = 3 * 3600.0;   // Gemini's persistent-tier interval
  double restart_s = 0;  // downtime added to every recovery (detection, replacement)
};

Status ValidateModel(const ClusterModel& model);

enum class Policy { kGemini, kStrawman, kHighFreq };
inline constexpr Policy kAllPolicies[] = {Policy::kGemini, Policy::kStrawman, Policy::kHighFreq};
const char* PolicyName(Policy p);  // "gemini", "strawman", "highfreq"

// One checkpoint tier: how long a checkpoint takes to complete, how often one
// starts (1/f, in training time) and how long recovery from it keeps training
// stopped (fetch plus restart_s).
struct TierCost {
  double ckpt_s = 0;
  double interval_s = 0;
  double recovery_s = 0;
  // t_ckpt + 1/(2f) + recovery_s: expected training time lost per failure.
  double ExpectedWaste() const { return ckpt_s + interval_s / 2 + recovery_s; }
};

struct PolicyCosts {
  Policy policy;
  TierCost primary;   // Gemini: CPU memory; others: remote storage
  TierCost fallback;  // Gemini: its persistent tier; others: same as primary
};

double CheckpointBytes(const ClusterModel& model);
// Time for Gemini to put one iteration's m-1 remote copies (and the local one)
// into CPU memory: max((m-1) * shard / network, shard / (gpus * pcie)).
double GeminiCheckpointSeconds(const ClusterModel& model);
// Time to write (or read) the whole checkpoint to remote storage.
double RemoteCheckpointSeconds(const ClusterModel& model);

Result<PolicyCosts> CostsOf(const ClusterModel& model, Policy policy);

// Expected waste of one failure event that takes `machines_per_failure`
// machines down at once: for Gemini, memory with the exact probability of
// recovering from it (RecoveryProbability), persistent storage otherwise.
Result<double> ExpectedWastePerFailure(const ClusterModel& model, Policy policy,
                                       int machines_per_failure);

// First-order effective-training-time ratio, 1 - (failures per second) *
// expected waste, floored at 0. Accurate while failures rarely overlap.
double AnalyticEffectiveRatio(double failures_per_day, double waste_per_failure_s);

}  // namespace gemini::sim
