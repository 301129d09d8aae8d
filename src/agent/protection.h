// Protection: is this host's newest training state covered by a complete
// checkpoint (in memory on every holder), and if not, since when and why.
//
// The agent calls OnCommit for every shard a local trainer commits and
// OnComplete whenever the job's complete iteration changes. A committed
// iteration that is not complete `grace` after its commit means checkpoints
// have stopped protecting the job (agent cut off from etcd, a holder out of
// budget, replication failing): Check() then names the first such iteration
// and the reason the agent gives it. Lost protection is loud: the agent
// serves it as metrics (gemini_protected, gemini_unprotected_since_iteration),
// a `gemini status` line and warnings. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace gemini {

struct ProtectionReport {
  bool is_protected = true;
  int64_t unprotected_since = -1;  // First committed iteration not complete in time.
  int64_t complete = -1;
  std::string reason;  // Why, when not protected.
};

class Protection {
 public:
  using Clock = std::chrono::steady_clock;
  explicit Protection(std::chrono::milliseconds grace = std::chrono::seconds(10)) : grace_(grace) {}

  void OnCommit(int64_t iteration, Clock::time_point now = Clock::now());
  void OnComplete(int64_t iteration);
  // `reason`: what the agent knows is wrong (empty: "replicas not confirmed").
  ProtectionReport Check(const std::string& reason, Clock::time_point now = Clock::now());

 private:
  const std::chrono::milliseconds grace_;
  std::mutex mu_;
  int64_t complete_ = -1;
  std::map<int64_t, Clock::time_point> pending_;  // Committed, not complete: first commit time.
  int64_t warned_since_ = -2;
};

}  // namespace gemini
