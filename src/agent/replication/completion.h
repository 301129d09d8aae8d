// Completion in launch mode, hierarchical: etcd work per iteration that does
// not grow with the number of hosts or ranks.
//
// Each host's CompletionReporter tells the root, over the peer protocol
// (kPeerReplicated, peer_protocol.h), the newest iteration for which every
// shard of every rank of the host is on all its holders: one small message
// per host per iteration, no etcd request. The root's CompletionTracker
// advances `complete` (JobCoordinator::AdvanceComplete) once every host has
// reported an iteration: one compare-and-swap per iteration for the whole
// job. Every agent learns it through its mirror of `complete`.
//
// Root changes: the new root's tracker starts empty; each reporter sends its
// newest report again to whichever host holds the office now (it follows the
// `root` key's mirror), so completion resumes as soon as every live host has
// reported once. Epochs: a report counts only toward its own epoch, and only
// the coordinator's current epoch is advanced.
//
// The plain cluster mode (agents without a launcher, hence no root) keeps the
// per-rank records in etcd (JobCoordinator::ReportReplicated).
//
// Trust: reports travel over connections authenticated with the job secret,
// as replicas do; a peer holding the secret is trusted with progress claims
// as it is with shard bytes. A report naming a host outside the job, or a
// malformed one, is refused (the latter drops the connection).
//
// Thread safety: both classes are thread-safe; each owns one thread, joined
// by Stop().
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "agent/cluster/job_coordinator.h"
#include "agent/replication/peer_protocol.h"
#include "transport/connection.h"

namespace gemini {

// The root's side: collects reports and advances `complete`.
class CompletionTracker {
 public:
  // on_advanced (optional) is called on the tracker's thread each time etcd
  // accepted a new `complete` (what `gemini bench coordination` times), with
  // the moment the tracker found every host's report of that iteration in
  // (before its compare-and-swap): the split of the latency between the
  // hosts' reports and etcd.
  using Advanced = std::function<void(int64_t epoch, int64_t iteration,
                                      std::chrono::steady_clock::time_point reported)>;
  CompletionTracker(JobCoordinator* coord, uint32_t num_hosts, Advanced on_advanced = nullptr);
  ~CompletionTracker();
  void Start();
  void Stop();
  // A host's report. kInvalidArgument for a host id outside the job.
  Status Record(const ReplicatedReport& report);
  // The hosts whose reports count in `epoch` (agent/cluster/layout.h: after a shrink,
  // fewer than the job's hosts). Until told, every host of the job counts.
  void SetMembers(int64_t epoch, const std::vector<uint32_t>& members);

 private:
  struct EpochReports {
    std::vector<int64_t> newest;        // per host; -1: nothing yet
    std::vector<bool> member;           // per host: counts in this epoch
    std::map<int64_t, uint32_t> count;  // members per newest iteration: begin() is the minimum
  };
  void Run();
  // The members' histogram, from `e.newest` and `e.member`.
  static void Recount(EpochReports& e);

  JobCoordinator* const coord_;
  const uint32_t num_hosts_;
  const Advanced on_advanced_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<int64_t, EpochReports> reported_;      // by epoch
  std::map<int64_t, std::vector<bool>> members_;  // by epoch (SetMembers)
  bool dirty_ = false;
  bool stop_ = false;
  std::thread thread_;
};

// A host's connection to the root for its reports: reads the root's
// registration (hosts/<root>) and dials it when the office changes hands or
// the connection broke, and keeps it otherwise. Reporter thread only.
class RootLink {
 public:
  using Dialer = std::function<Result<std::unique_ptr<transport::Connection>>(const HostInfo& to)>;
  RootLink(KvStore* kv, Dialer dial) : kv_(kv), dial_(std::move(dial)) {}
  Status Send(uint32_t root, const ReplicatedReport& report);

 private:
  KvStore* const kv_;
  const Dialer dial_;
  std::unique_ptr<transport::Connection> conn_;
  uint32_t conn_root_ = 0;
};

// A host's side: turns per-rank "replicated" events into host reports and
// delivers them to the root.
class CompletionReporter {
 public:
  // Sends a report to host `root` (the agent delivers to its own tracker when
  // it is the root); OK once the root accepted it.
  using Send = std::function<Status(uint32_t root, const ReplicatedReport& report)>;
  CompletionReporter(JobCoordinator* coord, std::vector<uint32_t> ranks, Send send);
  // This host's ranks from now on (a shrink renumbers them).
  void SetRanks(std::vector<uint32_t> ranks);
  ~CompletionReporter();
  void Start();
  void Stop();
  // `rank`'s shard of `iteration`, committed in `epoch`, is on every holder.
  void Replicated(uint32_t rank, int64_t epoch, int64_t iteration);
  // Reports the root accepted (for tests and the bench).
  int64_t delivered() const;

 private:
  void Run();
  // The newest iteration every rank of this host reached in `epoch` (-1: none).
  int64_t HostIteration(int64_t epoch) const;

  JobCoordinator* const coord_;
  std::vector<uint32_t> ranks_;  // guarded by mu_
  const Send send_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<uint32_t, std::pair<int64_t, int64_t>> newest_;  // rank -> (epoch, iteration)
  bool stop_ = false;
  bool news_ = false;  // Replicated() or SetRanks() since Run() last looked
  int64_t delivered_ = 0;
  std::thread thread_;
};

}  // namespace gemini
