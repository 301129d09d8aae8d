// Link model fit: bandwidth B and per-transfer start-up cost alpha from
// measured transfers, for f(s) = alpha + s/B in Algorithm 2 (partition.h).
//
// FitLinkModel() takes (bytes, seconds) measurements of real transfers on the
// link (the executor records them) and fits seconds = alpha + bytes/B by least
// squares. A few outliers (a transfer that waited behind training traffic, a
// retransmission) are dropped first: a Theil-Sen line (median of pairwise
// slopes, robust to about 29% bad points) gives residuals, and points whose
// residual exceeds 3.5 scaled median absolute deviations are left out of the
// least-squares fit. If the fitted alpha comes out negative, the line is
// refitted through the origin (alpha = 0). Pure and thread-safe.
//
// InvalidArgument on degenerate input: fewer than 2 samples, fewer than two
// distinct sizes, negative or non-finite seconds, or a non-positive slope
// (bigger transfers not slower).
#pragma once

#include <cstdint>
#include <vector>

#include "common/status.h"

namespace gemini::schedule {

struct TransferSample {
  uint64_t bytes = 0;
  double seconds = 0;
};

struct LinkModel {
  double bandwidth_Bps = 0;   // B
  double alpha_s = 0;         // per-transfer start-up cost, >= 0
  int samples_used = 0;       // samples in the final least-squares fit
  int outliers = 0;           // samples left out as outliers
  double rms_residual_s = 0;  // root-mean-square residual over the samples used
};

Result<LinkModel> FitLinkModel(const std::vector<TransferSample>& samples);

}  // namespace gemini::schedule
