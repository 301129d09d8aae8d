// Checkpoint placement (the paper's Algorithm 1) and the exact probability of
// recovering from CPU memory.
//
// N machines, numbered 0..N-1, each own one checkpoint shard; every shard is
// kept in the memory of m machines (m "replicas", the owner included).
//   group  m must divide N. Machines form N/m groups of consecutive machines
//          {0..m-1}, {m..2m-1}, ...; a shard is held by every member of its
//          owner's group.
//   ring   holders of machine i's shard: i, i+1, ..., i+m-1 (mod N).
//   mixed  (default) group if m divides N; otherwise the first floor(N/m)-1
//          groups use group placement and the remaining r = N - m(floor(N/m)-1)
//          machines (m < r < 2m) form a ring among themselves: the holders of
//          the j-th of them are the next m machines of that ring, itself first.
//          When floor(N/m)-1 is 0 the whole cluster is one ring.
// A Placement is an immutable value; all functions here are pure and
// thread-safe. Bad input (N < 1, m < 1, m > N, group with N mod m != 0, sizes
// beyond the limits below) yields an InvalidArgument status, never an abort.
//
// Redundancy schemes (Redundancy below): "copies:M" keeps M full copies as
// above; "rs:K+F" Reed–Solomon-codes each shard into K data and F parity
// fragments on the K+F machines of its owner's group (groups of K+F
// consecutive machines; when K+F does not divide N the last group takes the
// remainder and codes K+r data fragments, still F parity). A machine then
// holds (K+F)/K times its shard instead of M times, and a shard survives any F
// failures among its group.
//
// Recovery from memory after a set F of machines fails at once is possible iff
// no shard lost all of its holders (copies) or more than F of them (rs). RecoveryProbability gives
// the exact chance of that when F is a uniformly random k-subset, for every strategy and any N <=
// kMaxProbabilityMachines, in O(N*k) time (group, mixed) or O((N-k)*k) (ring); see
// src/placement/README.md for the method.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace gemini {

enum class PlacementStrategy { kGroup, kRing, kMixed };

// How a shard is kept on other machines: full copies, or Reed–Solomon
// fragments. Copies(m) is what `--replicas m` means.
struct Redundancy {
  int copies = 1;  // copies:M (data and parity 0)
  int data = 0;    // rs:K+F: K data fragments ...
  int parity = 0;  // ... and F parity fragments (F >= 1)

  static Redundancy Copies(int m) { return Redundancy{m, 0, 0}; }
  static Redundancy ReedSolomon(int k, int f) { return Redundancy{1, k, f}; }
  bool erasure() const { return parity > 0; }
  // Machines that hold a piece of each shard: M, or K+F.
  int width() const { return erasure() ? data + parity : copies; }
  // Failures among a shard's holders it always survives: M-1, or F.
  int tolerates() const { return erasure() ? parity : copies - 1; }
  // Memory per machine over its own shard's size: M, or (K+F)/K.
  double memory_factor() const { return erasure() ? double(data + parity) / data : copies; }
  // "copies:2", "rs:4+2".
  std::string ToString() const;
};
// Parses "copies:M" (M >= 1) or "rs:K+F" (K >= 1, F >= 1); a bare "M" is copies:M.
Result<Redundancy> ParseRedundancy(std::string_view text);

// "group", "ring", "mixed".
const char* PlacementStrategyName(PlacementStrategy s);
// Parses a name printed by PlacementStrategyName (exact, lower case).
Result<PlacementStrategy> ParsePlacementStrategy(std::string_view name);

// Largest cluster MakePlacement accepts, and largest N * m (holder entries).
inline constexpr int kMaxPlacementMachines = 65536;
inline constexpr long long kMaxHolderEntries = 1LL << 24;
// Largest N for which RecoveryProbability answers (exact at every size).
inline constexpr int kMaxProbabilityMachines = 16384;

// A set of machines whose shards stay inside the set.
struct PlacementBlock {
  // kErasure: every member holds one Reed–Solomon fragment of every member's
  // shard; the block survives any `parity` failures of its members.
  enum class Kind { kGroup, kRing, kErasure };
  Kind kind;
  std::vector<int> machines;  // ascending, consecutive machine ids
};

struct Placement {
  PlacementStrategy strategy = PlacementStrategy::kMixed;  // as requested
  int machines = 0;                                        // N
  int replicas = 0;                                        // m (rs: K+F, the group width)
  int parity = 0;  // rs: F parity fragments per shard; 0 for copies
  // Disjoint blocks covering 0..N-1 in order; groups first, then at most one
  // ring. A group block has exactly m machines; a ring block has >= m.
  std::vector<PlacementBlock> blocks;
  // holders[i]: ascending ids of the m machines that hold machine i's shard,
  // i included.
  std::vector<std::vector<int>> holders;
};

Result<Placement> MakePlacement(int machines, int replicas, PlacementStrategy strategy);
// Any redundancy: copies go to MakePlacement above; rs:K+F takes the group or
// mixed strategy (both: groups of K+F, the last one wider), not ring.
Result<Placement> MakePlacement(int machines, const Redundancy& redundancy,
                                PlacementStrategy strategy);
// What p keeps: copies:m, or rs:K+F (K of its standard groups).
Redundancy RedundancyOf(const Placement& p);

// Ascending ids of the machines whose shard `machine` holds (itself included):
// the inverse of holders. `machine` must be in range.
Result<std::vector<int>> ShardsHeldBy(const Placement& p, int machine);

// Shards (owner ids, ascending) whose holders are all in `failed` (rs: more
// than F of them). Duplicate
// or out-of-range ids in `failed` are an error.
Result<std::vector<int>> LostShards(const Placement& p, const std::vector<int>& failed);

// Exact probability that no shard is lost (LostShards) when a uniformly
// random set of `failures` distinct machines fails at once. 1 for
// failures < m (rs: failures <= F); requires 0 <= failures <= N <= kMaxProbabilityMachines.
Result<double> RecoveryProbability(const Placement& p, int failures);
Result<double> RecoveryProbability(int machines, int replicas, PlacementStrategy strategy,
                                   int failures);
// The same for every k = 0..N at once (index k), in O(N^2) time.
Result<std::vector<double>> RecoveryProbabilityAllK(const Placement& p);

}  // namespace gemini
