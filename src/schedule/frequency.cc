// Checkpoint frequency: see frequency.h.
#include "schedule/frequency.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace gemini::schedule {
namespace {

// The spans of k consecutive iterations, in order.
std::vector<double> Repeat(const std::vector<double>& spans_s, int k) {
  std::vector<double> out;
  out.reserve(spans_s.size() * static_cast<size_t>(k));
  for (int i = 0; i < k; ++i) out.insert(out.end(), spans_s.begin(), spans_s.end());
  return out;
}

// Bytes one iteration's spans can carry (a bound: copy boundaries only cut chunks).
double IterationCapacity(const std::vector<double>& spans_s, const PartitionParams& p) {
  double bytes = 0;
  for (double t : spans_s) bytes += static_cast<double>(SpanCapacityBytes(t, p));
  return bytes;
}

// No k below this can fit: k iterations carry at most k * capacity bytes.
int LowestCandidate(const std::vector<double>& spans_s, const PartitionParams& p, int max_k) {
  double capacity = IterationCapacity(spans_s, p);
  double total = static_cast<double>(p.copies) * static_cast<double>(p.checkpoint_bytes);
  if (capacity <= 0) return max_k + 1;
  double k = std::ceil(total / capacity) - 1;  // -1: slack for rounding in the bound
  return static_cast<int>(std::clamp(k, 2.0, static_cast<double>(max_k) + 1));
}

std::string Explain(const FrequencyChoice& f, double mu) {
  char buf[320];
  std::snprintf(buf, sizeof(buf),
                "idle time %.3g s/iteration (usable %.3g s at mu=%.2g) %s checkpoint send time "
                "%.3g s",
                f.idle_s_per_iter, f.usable_s_per_iter, mu,
                f.usable_s_per_iter >= f.send_s ? ">=" : "<", f.send_s);
  std::string text = buf;
  if (f.every_k == 1 && f.fits) return text + ": checkpointing every iteration";
  if (f.usable_s_per_iter >= f.send_s) text += ", but its spans are too short for whole chunks";
  if (f.fits) return text + ": checkpointing every " + Ordinal(f.every_k) + " iteration";
  std::snprintf(buf, sizeof(buf), " iteration, each lengthened by about %.3g s", f.extra_s);
  return text + "; it does not fit even " + std::to_string(f.every_k) +
         " iterations: checkpointing every " + Ordinal(f.every_k) + buf;
}

}  // namespace

std::string Ordinal(int n) {
  int last_two = std::abs(n) % 100;
  int last = std::abs(n) % 10;
  const char* suffix = "th";
  if (last_two < 11 || last_two > 13) {
    if (last == 1) suffix = "st";
    if (last == 2) suffix = "nd";
    if (last == 3) suffix = "rd";
  }
  return std::to_string(n) + suffix;
}

Result<FrequencyChoice> ChooseFrequency(const std::vector<double>& spans_s,
                                        const PartitionParams& params, int max_k) {
  if (max_k < 1 || max_k > 10000) return InvalidArgument("frequency: max_k must be in 1..10000");
  GEMINI_ASSIGN_OR_RETURN(PartitionPlan one, Partition(spans_s, params));
  FrequencyChoice f;
  for (double t : spans_s) f.idle_s_per_iter += t;
  f.usable_s_per_iter = params.mu * f.idle_s_per_iter;
  f.send_s = static_cast<double>(params.copies) * SendSeconds(params.checkpoint_bytes, params);
  f.extra_s = one.extra_s;
  f.fits = one.leftover_bytes == 0;
  for (int k = LowestCandidate(spans_s, params, max_k); !f.fits && k <= max_k; ++k) {
    GEMINI_ASSIGN_OR_RETURN(PartitionPlan plan, Partition(Repeat(spans_s, k), params));
    f.every_k = k;
    f.extra_s = plan.extra_s;
    f.fits = plan.leftover_bytes == 0;
  }
  if (!f.fits && f.every_k != max_k) {
    f.every_k = max_k;
    GEMINI_ASSIGN_OR_RETURN(PartitionPlan plan, Partition(Repeat(spans_s, max_k), params));
    f.extra_s = plan.extra_s;
  }
  f.explanation = Explain(f, params.mu);
  return f;
}

}  // namespace gemini::schedule
