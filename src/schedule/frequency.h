// Checkpoint frequency from the profile: every iteration when the idle spans
// can carry a whole checkpoint, every k-th iteration when they cannot.
//
// ChooseFrequency() takes one iteration's profiled idle spans (t1..td, as for
// Partition) and the checkpoint traffic (PartitionParams: C, m-1 copies, R/p
// chunks, B, alpha, mu). k = 1 when Algorithm 2 places everything in the
// spans' usable time (no leftover). Otherwise it picks the smallest k such
// that the spans of k consecutive iterations, walked by the same algorithm
// with the same R/p bound on every chunk, carry the whole checkpoint with no
// leftover: checkpointing every k-th iteration then costs no training time.
// If no k <= max_k fits (e.g. no idle time at all), k = max_k and `fits` is
// false; the explanation says by how much each checkpointed iteration would
// be lengthened. Pure and thread-safe; bad inputs give InvalidArgument.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "schedule/partition.h"

namespace gemini::schedule {

struct FrequencyChoice {
  int every_k = 1;               // checkpoint every k-th iteration (1: every iteration)
  bool fits = true;              // false: even max_k iterations' idle time is too short
  double idle_s_per_iter = 0;    // sum of the profiled idle spans
  double usable_s_per_iter = 0;  // mu * idle_s_per_iter
  double send_s = 0;             // one checkpoint's traffic in R/p chunks, sum of f(s)
  double extra_s = 0;            // leftover time at every_k (0 when fits)
  std::string explanation;       // one line for logs and `gemini status`
};

// "1st", "2nd", "3rd", "4th", "11th", "21st", ...
std::string Ordinal(int n);

// max_k in 1..10000 (InvalidArgument otherwise).
Result<FrequencyChoice> ChooseFrequency(const std::vector<double>& spans_s,
                                        const PartitionParams& params, int max_k = 100);

}  // namespace gemini::schedule
