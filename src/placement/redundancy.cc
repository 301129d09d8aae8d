// Redundancy schemes (copies:M, rs:K+F) and their placement; see gemini/placement.h.
#include <charconv>

#include "gemini/placement.h"

namespace gemini {
namespace {

// A decimal in [lo, hi], canonical ("4", not "04" or "+4").
bool ParseCount(std::string_view s, int lo, int hi, int* out) {
  int v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || v < lo || v > hi ||
      std::to_string(v) != s)
    return false;
  *out = v;
  return true;
}

Status BadRedundancy(std::string_view text, const std::string& why) {
  return InvalidArgument("redundancy '" + std::string(text.substr(0, 64)) + "': " + why +
                         " (expected copies:M or rs:K+F, e.g. copies:2 or rs:4+2)");
}

}  // namespace

std::string Redundancy::ToString() const {
  if (erasure()) return "rs:" + std::to_string(data) + "+" + std::to_string(parity);
  return "copies:" + std::to_string(copies);
}

Result<Redundancy> ParseRedundancy(std::string_view text) {
  constexpr int kMax = kMaxPlacementMachines;
  std::string_view body = text;
  if (body.starts_with("copies:")) body.remove_prefix(7);
  if (!text.starts_with("rs:")) {
    int m = 0;
    if (!ParseCount(body, 1, kMax, &m)) return BadRedundancy(text, "M must be 1 or more");
    return Redundancy::Copies(m);
  }
  body.remove_prefix(3);
  auto plus = body.find('+');
  if (plus == std::string_view::npos) return BadRedundancy(text, "no '+' between K and F");
  int k = 0, f = 0;
  if (!ParseCount(body.substr(0, plus), 1, kMax, &k))
    return BadRedundancy(text, "K (data fragments) must be 1 or more");
  if (!ParseCount(body.substr(plus + 1), 1, kMax, &f))
    return BadRedundancy(text, "F (parity fragments) must be 1 or more");
  if (k + f > kMax) return BadRedundancy(text, "K+F exceeds " + std::to_string(kMax));
  return Redundancy::ReedSolomon(k, f);
}

Result<Placement> MakePlacement(int machines, const Redundancy& r, PlacementStrategy strategy) {
  if (!r.erasure()) return MakePlacement(machines, r.copies, strategy);
  if (r.data < 1) return InvalidArgument("rs:K+F needs K >= 1");
  if (strategy == PlacementStrategy::kRing)
    return InvalidArgument(
        "rs:K+F places shards in groups of K+F; use the group or mixed strategy");
  const int width = r.data + r.parity;
  if (machines < width || machines > kMaxPlacementMachines)
    return InvalidArgument(r.ToString() + " needs " + std::to_string(width) + " to " +
                           std::to_string(kMaxPlacementMachines) + " machines, got " +
                           std::to_string(machines));
  // Holder lists are as long as their group (< 2 * width).
  if (static_cast<long long>(machines) * 2 * width > kMaxHolderEntries)
    return InvalidArgument("machines * (K+F) exceeds the placement's limits");
  Placement p;
  p.strategy = strategy;
  p.machines = machines;
  p.replicas = width;
  p.parity = r.parity;
  p.holders.resize(machines);
  const int groups = machines / width;
  for (int g = 0; g < groups; ++g) {
    int size = g + 1 < groups ? width : machines - g * width;  // The last takes the rest.
    PlacementBlock b{PlacementBlock::Kind::kErasure, std::vector<int>(size)};
    for (int i = 0; i < size; ++i) b.machines[i] = g * width + i;
    for (int owner : b.machines) p.holders[owner] = b.machines;
    p.blocks.push_back(std::move(b));
  }
  return p;
}

Redundancy RedundancyOf(const Placement& p) {
  if (p.parity > 0) return Redundancy::ReedSolomon(p.replicas - p.parity, p.parity);
  return Redundancy::Copies(p.replicas);
}

}  // namespace gemini
