// Timing helpers shared by the benchmarks: medians of repeated runs (the
// machines are noisy) and the wall time of one call.
#pragma once

#include <algorithm>
#include <chrono>
#include <vector>

namespace gemini::cli {

inline double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

template <typename Fn>
double TimeIt(Fn fn) {
  auto t0 = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace gemini::cli
