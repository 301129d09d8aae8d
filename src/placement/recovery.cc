// Exact recovery probability of a placement; method in counting.h and README.md.
#include <algorithm>

#include "gemini/placement.h"
#include "placement/counting.h"

namespace gemini {
namespace {

using placement_internal::CombineBlocks;
using placement_internal::ErasureBlockSafe;
using placement_internal::GroupBlockSafe;
using placement_internal::LogFactorials;
using placement_internal::RingBlockSafe;
using placement_internal::RingSafe;

Status CheckPlacement(const Placement& p) {
  if (p.machines < 1 || p.replicas < 1 || p.replicas > p.machines || p.parity < 0 ||
      p.parity >= p.replicas || static_cast<int>(p.holders.size()) != p.machines ||
      p.blocks.empty()) {
    return InvalidArgument("placement is not built by MakePlacement");
  }
  if (p.machines > kMaxProbabilityMachines) {
    return InvalidArgument("recovery probability supports at most " +
                           std::to_string(kMaxProbabilityMachines) + " machines, got " +
                           std::to_string(p.machines));
  }
  return Status::Ok();
}

std::vector<long double> BlockSafe(const PlacementBlock& b, const Placement& p,
                                   const LogFactorials& lf) {
  int size = static_cast<int>(b.machines.size());
  if (b.kind == PlacementBlock::Kind::kGroup) return GroupBlockSafe(size);
  if (b.kind == PlacementBlock::Kind::kErasure) return ErasureBlockSafe(size, p.parity);
  return RingBlockSafe(size, p.replicas, lf);
}

// safe[t] for the whole placement, t = 0..min(N, tmax).
std::vector<long double> PlacementSafe(const Placement& p, int tmax, const LogFactorials& lf) {
  std::vector<long double> q = {1.0L};  // the empty set of machines
  int covered = 0;
  std::vector<long double> group_safe;  // every group block has the same table
  for (const auto& b : p.blocks) {
    int size = static_cast<int>(b.machines.size());
    if (b.kind == PlacementBlock::Kind::kGroup && group_safe.empty()) {
      group_safe = BlockSafe(b, p, lf);
    }
    const auto& qb = b.kind == PlacementBlock::Kind::kGroup ? group_safe : BlockSafe(b, p, lf);
    q = CombineBlocks(q, covered, qb, size, tmax, lf);
    covered += size;
  }
  return q;
}

}  // namespace

Result<double> RecoveryProbability(const Placement& p, int failures) {
  GEMINI_RETURN_IF_ERROR(CheckPlacement(p));
  if (failures < 0 || failures > p.machines) {
    return InvalidArgument("failures must be in [0, " + std::to_string(p.machines) + "], got " +
                           std::to_string(failures));
  }
  if (failures <= RedundancyOf(p).tolerates()) return 1.0;
  LogFactorials lf(p.machines);
  if (p.blocks.size() == 1 && p.blocks[0].kind == PlacementBlock::Kind::kRing) {
    return static_cast<double>(RingSafe(p.machines, p.replicas, failures, lf));
  }
  return static_cast<double>(PlacementSafe(p, failures, lf)[failures]);
}

Result<double> RecoveryProbability(int machines, int replicas, PlacementStrategy strategy,
                                   int failures) {
  GEMINI_ASSIGN_OR_RETURN(Placement p, MakePlacement(machines, replicas, strategy));
  return RecoveryProbability(p, failures);
}

Result<std::vector<double>> RecoveryProbabilityAllK(const Placement& p) {
  GEMINI_RETURN_IF_ERROR(CheckPlacement(p));
  LogFactorials lf(p.machines);
  std::vector<long double> q = PlacementSafe(p, p.machines, lf);
  return std::vector<double>(q.begin(), q.end());
}

}  // namespace gemini
