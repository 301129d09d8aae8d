#include "agent/protection.h"

#include "common/log.h"

namespace gemini {

void Protection::OnCommit(int64_t iteration, Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mu_);
  if (iteration <= complete_) return;
  pending_.emplace(iteration, now);
  while (pending_.size() > 4096) pending_.erase(std::prev(pending_.end()));  // Bounded.
}

void Protection::OnComplete(int64_t iteration) {
  std::lock_guard<std::mutex> lock(mu_);
  if (iteration < complete_) pending_.clear();  // A recovery: a new timeline.
  complete_ = iteration;
  pending_.erase(pending_.begin(), pending_.upper_bound(iteration));
}

ProtectionReport Protection::Check(const std::string& reason, Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mu_);
  ProtectionReport r;
  r.complete = complete_;
  for (const auto& [iteration, at] : pending_)
    if (now - at >= grace_) {
      r.is_protected = false;
      r.unprotected_since = iteration;
      r.reason = reason.empty() ? "the holders have not confirmed replicas of iteration " +
                                      std::to_string(iteration)
                                : reason;
      break;
    }
  if (!r.is_protected && warned_since_ != r.unprotected_since) {
    warned_since_ = r.unprotected_since;
    GEMINI_LOG(WARN) << "[agent] checkpoints are NOT protected since iteration "
                     << r.unprotected_since << " (newest complete: " << complete_
                     << "): " << r.reason;
  }
  if (r.is_protected) warned_since_ = -2;
  return r;
}

}  // namespace gemini
