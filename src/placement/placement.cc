// Builds group / ring / mixed placements (Algorithm 1); see gemini/placement.h.
#include "gemini/placement.h"

#include <algorithm>
#include <numeric>

namespace gemini {
namespace {

Status CheckSizes(int machines, int replicas) {
  if (machines < 1) {
    return InvalidArgument("placement needs at least 1 machine, got " + std::to_string(machines));
  }
  if (machines > kMaxPlacementMachines) {
    return InvalidArgument("placement supports at most " + std::to_string(kMaxPlacementMachines) +
                           " machines, got " + std::to_string(machines));
  }
  if (replicas < 1) {
    return InvalidArgument("replicas must be >= 1 (the local copy counts), got " +
                           std::to_string(replicas));
  }
  if (replicas > machines) {
    return InvalidArgument("replicas (" + std::to_string(replicas) + ") exceed machines (" +
                           std::to_string(machines) + ")");
  }
  if (static_cast<long long>(machines) * replicas > kMaxHolderEntries) {
    return InvalidArgument("machines * replicas exceeds " + std::to_string(kMaxHolderEntries));
  }
  return Status::Ok();
}

PlacementBlock MakeBlock(PlacementBlock::Kind kind, int first, int count) {
  PlacementBlock b{kind, std::vector<int>(count)};
  std::iota(b.machines.begin(), b.machines.end(), first);
  return b;
}

// Consecutive groups of m starting at machine 0, then (if any remain) one ring.
std::vector<PlacementBlock> MakeBlocks(int n, int m, int groups) {
  std::vector<PlacementBlock> blocks;
  for (int g = 0; g < groups; ++g)
    blocks.push_back(MakeBlock(PlacementBlock::Kind::kGroup, g * m, m));
  int rest = n - groups * m;
  if (rest > 0) blocks.push_back(MakeBlock(PlacementBlock::Kind::kRing, groups * m, rest));
  return blocks;
}

void FillHolders(const PlacementBlock& b, int m, std::vector<std::vector<int>>& holders) {
  int r = static_cast<int>(b.machines.size());
  for (int j = 0; j < r; ++j) {
    std::vector<int>& h = holders[b.machines[j]];
    if (b.kind == PlacementBlock::Kind::kGroup) {
      h = b.machines;
      continue;
    }
    for (int d = 0; d < m; ++d) h.push_back(b.machines[(j + d) % r]);
    std::sort(h.begin(), h.end());
  }
}

}  // namespace

const char* PlacementStrategyName(PlacementStrategy s) {
  switch (s) {
    case PlacementStrategy::kGroup:
      return "group";
    case PlacementStrategy::kRing:
      return "ring";
    case PlacementStrategy::kMixed:
      return "mixed";
  }
  return "unknown";
}

Result<PlacementStrategy> ParsePlacementStrategy(std::string_view name) {
  for (auto s : {PlacementStrategy::kGroup, PlacementStrategy::kRing, PlacementStrategy::kMixed}) {
    if (name == PlacementStrategyName(s)) return s;
  }
  return InvalidArgument("unknown placement strategy '" + std::string(name) +
                         "' (expected group, ring or mixed)");
}

Result<Placement> MakePlacement(int machines, int replicas, PlacementStrategy strategy) {
  GEMINI_RETURN_IF_ERROR(CheckSizes(machines, replicas));
  int n = machines, m = replicas;
  bool divides = n % m == 0;
  if (strategy == PlacementStrategy::kGroup && !divides) {
    return InvalidArgument("group placement needs replicas to divide machines (" +
                           std::to_string(n) + " mod " + std::to_string(m) +
                           " != 0); use ring or mixed");
  }
  int groups = 0;
  if (strategy != PlacementStrategy::kRing) groups = divides ? n / m : n / m - 1;
  Placement p;
  p.strategy = strategy;
  p.machines = n;
  p.replicas = m;
  p.blocks = MakeBlocks(n, m, groups);
  p.holders.resize(n);
  for (const auto& b : p.blocks) FillHolders(b, m, p.holders);
  return p;
}

Result<std::vector<int>> ShardsHeldBy(const Placement& p, int machine) {
  if (machine < 0 || machine >= p.machines) {
    return InvalidArgument("machine " + std::to_string(machine) + " out of range [0, " +
                           std::to_string(p.machines) + ")");
  }
  std::vector<int> shards;
  for (const auto& b : p.blocks) {
    if (machine < b.machines.front() || machine > b.machines.back()) continue;
    for (int owner : b.machines) {
      const auto& h = p.holders[owner];
      if (std::binary_search(h.begin(), h.end(), machine)) shards.push_back(owner);
    }
  }
  return shards;
}

Result<std::vector<int>> LostShards(const Placement& p, const std::vector<int>& failed) {
  std::vector<char> down(p.machines, 0);
  for (int f : failed) {
    if (f < 0 || f >= p.machines) {
      return InvalidArgument("failed machine " + std::to_string(f) + " out of range [0, " +
                             std::to_string(p.machines) + ")");
    }
    if (down[f]) return InvalidArgument("failed machine " + std::to_string(f) + " listed twice");
    down[f] = 1;
  }
  // A lost shard's owner is among its holders, so only failed owners can lose one.
  // Copies: lost when every holder failed; rs: when more than F did.
  std::vector<int> lost;
  for (int f : failed) {
    const auto& h = p.holders[f];
    auto failed_holders = std::count_if(h.begin(), h.end(), [&](int x) { return down[x] != 0; });
    bool gone =
        p.parity > 0 ? failed_holders > p.parity : failed_holders == static_cast<long>(h.size());
    if (gone) lost.push_back(f);
  }
  std::sort(lost.begin(), lost.end());
  return lost;
}

}  // namespace gemini
