// Exact safe-subset probabilities for groups, rings and their unions; see counting.h.
#include "placement/counting.h"

#include <algorithm>
#include <cmath>

namespace gemini::placement_internal {
namespace {

long double Clamp01(long double x) { return std::clamp(x, 0.0L, 1.0L); }

// Row z = 1 of w: a single part of size k is below m.
std::vector<long double> FirstRow(int m, int kmax) {
  std::vector<long double> row(kmax + 1);
  for (int k = 0; k <= kmax; ++k) row[k] = k < m ? 1.0L : 0.0L;
  return row;
}

// Row z >= 2 of w(z, k) = W(z, k) / C(k+z-1, z-1), where W(z, k) counts the
// compositions of k into z parts below m, from row z-1 (prev, k <= kmax at
// least). W(z,k) = W(z,k-1) + W(z-1,k) - W(z-1,k-m) normalizes to a convex
// combination minus one correction term.
void NextRow(const std::vector<long double>& prev, int z, int m, int kmax, const LogFactorials& lf,
             std::vector<long double>& cur) {
  cur.assign(kmax + 1, 0.0L);
  cur[0] = 1.0L;
  for (int k = 1; k <= kmax; ++k) {
    long double denom = k + z - 1;
    long double v = cur[k - 1] * (k / denom) + prev[k] * ((z - 1) / denom);
    if (k >= m && prev[k - m] > 0) {
      long double log_w = lf.LogChoose(k - m + z - 2, z - 2) - lf.LogChoose(k + z - 1, z - 1);
      v -= prev[k - m] * std::exp(log_w);
    }
    cur[k] = Clamp01(v);
  }
}

}  // namespace

LogFactorials::LogFactorials(int n) : lf_(std::max(n, 1) + 1) {
  for (int i = 0; i < static_cast<int>(lf_.size()); ++i) lf_[i] = std::lgamma(i + 1.0L);
}

std::vector<long double> GroupBlockSafe(int m) {
  std::vector<long double> safe(m + 1, 1.0L);
  safe[m] = 0.0L;
  return safe;
}

std::vector<long double> ErasureBlockSafe(int size, int parity) {
  std::vector<long double> safe(size + 1, 0.0L);
  for (int t = 0; t <= std::min(size, parity); ++t) safe[t] = 1.0L;
  return safe;
}

std::vector<long double> RingBlockSafe(int r, int m, const LogFactorials& lf) {
  std::vector<long double> safe(r + 1, 0.0L);  // safe[r] = 0: every holder failed
  safe[0] = 1.0L;
  if (m == 1) return safe;  // a single failure loses a shard; exact zeros
  std::vector<long double> prev = FirstRow(m, r - 1), cur;
  safe[r - 1] = prev[r - 1];
  for (int z = 2; z <= r; ++z) {
    NextRow(prev, z, m, r - z, lf, cur);
    safe[r - z] = cur[r - z];
    std::swap(prev, cur);
  }
  return safe;
}

long double RingSafe(int r, int m, int k, const LogFactorials& lf) {
  if (k == 0) return 1.0L;
  if (k == r || m == 1) return 0.0L;
  int z = r - k;
  std::vector<long double> prev = FirstRow(m, k), cur;
  for (int zz = 2; zz <= z; ++zz) {
    NextRow(prev, zz, m, k, lf, cur);
    std::swap(prev, cur);
  }
  return prev[k];
}

std::vector<long double> CombineBlocks(const std::vector<long double>& qa, int a,
                                       const std::vector<long double>& qb, int b, int tmax,
                                       const LogFactorials& lf) {
  int n = a + b;
  int top = std::min(n, tmax);
  std::vector<long double> q(top + 1, 0.0L);
  int qa_top = static_cast<int>(qa.size()) - 1, qb_top = static_cast<int>(qb.size()) - 1;
  for (int t = 0; t <= top; ++t) {
    long double sum = 0.0L;
    long double log_all = lf.LogChoose(n, t);
    for (int s = std::max(0, t - a); s <= std::min({b, t, qb_top}); ++s) {
      int ta = t - s;
      if (ta > qa_top || qa[ta] == 0 || qb[s] == 0) continue;
      long double log_w = lf.LogChoose(a, ta) + lf.LogChoose(b, s) - log_all;
      sum += qa[ta] * qb[s] * std::exp(log_w);
    }
    q[t] = Clamp01(sum);
  }
  return q;
}

}  // namespace gemini::placement_internal
