// Exact counting of failure sets that a placement survives, kept as
// probabilities so that every intermediate value lies in [0, 1].
//
// A placement splits into independent blocks (groups and at most one ring).
// For a block of b machines, safe[t] is the probability that a uniformly random
// t-subset of the block loses no shard whose holders lie in the block. Two
// blocks combine by the hypergeometric convolution
//   Q(t) = sum_s Qa(t - s) * Qb(s) * C(a, t-s) C(b, s) / C(a+b, t),
// a sum of non-negative terms with weights that add up to at most 1, so
// rounding errors never grow. Internal to src/placement; pure functions.
#pragma once

#include <vector>

namespace gemini::placement_internal {

// log(i!) for 0 <= i <= n, from lgammal.
class LogFactorials {
 public:
  explicit LogFactorials(int n);
  long double LogChoose(int n, int k) const { return lf_[n] - lf_[k] - lf_[n - k]; }

 private:
  std::vector<long double> lf_;
};

// Group of m machines: every subset but the whole group is safe.
std::vector<long double> GroupBlockSafe(int m);

// Reed–Solomon group of `size` machines tolerating `parity` failures: safe[t]
// is 1 for t <= parity, else 0 (t = 0..size).
std::vector<long double> ErasureBlockSafe(int size, int parity);

// Ring of r >= m machines, each shard on the next m of the ring: safe[t] for
// t = 0..r. A t-subset is safe iff it has no m cyclically consecutive failed
// machines. With z = r - t survivors this equals the probability that a
// uniformly random composition of t into z parts has every part < m (each
// part being a run of failed machines between two survivors), computed by a
// recurrence over z in O(r^2). `lf` must cover r.
std::vector<long double> RingBlockSafe(int r, int m, const LogFactorials& lf);

// safe[k] of the same ring, for one k only: O((r - k) * k).
long double RingSafe(int r, int m, int k, const LogFactorials& lf);

// Hypergeometric convolution of block a (qa, a machines) and block b (qb, b
// machines) for t = 0..min(a + b, tmax). qa and qb may be truncated at tmax.
// `lf` must cover a + b.
std::vector<long double> CombineBlocks(const std::vector<long double>& qa, int a,
                                       const std::vector<long double>& qb, int b, int tmax,
                                       const LogFactorials& lf);

}  // namespace gemini::placement_internal
