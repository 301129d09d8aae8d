// Small order statistics shared by the profiler and the link fit (internal).
//
// Pure functions on copies of their inputs; thread-safe. Empty inputs give 0
// so callers need no special case (they check sizes where it matters).
#pragma once

#include <vector>

namespace gemini::schedule {

// The q-quantile (q in [0, 1], clamped) with linear interpolation between
// order statistics: Quantile(v, 0.5) is the median.
double Quantile(std::vector<double> values, double q);
inline double Median(std::vector<double> values) { return Quantile(std::move(values), 0.5); }

double Mean(const std::vector<double>& values);
// Population standard deviation.
double StdDev(const std::vector<double>& values);
// Median absolute deviation from the median (unscaled).
double MedianAbsDeviation(const std::vector<double>& values);

}  // namespace gemini::schedule
