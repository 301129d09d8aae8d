// JobCoordinator: one agent's view of its job in etcd.
//
// Keys, under the job's prefix (/gemini/<job>/, see coord/prefix_kv_store.h):
//   hosts/<host>                 {"host","addr","port","ranks"} under this agent's
//                                lease: the heartbeat; gone when the agent is
//   ranks/<rank>                 the host that owns the rank (no lease: it must
//                                outlive the host, so its holders can be found)
//   epochs/<e>/replicated/<rank> newest iteration of `rank` whose shard and every
//                                replica are committed (written by the owner's agent)
//   complete                     {"epoch","iteration"}: the newest complete
//                                iteration; only ever increased (compare-and-swap)
// The epoch separates timelines: a recovery that resumes from an earlier
// iteration starts a new epoch, so stale "replicated" records of the
// abandoned timeline never count toward completion.
//
// Keys an agent reads over and over (plan, root, complete, hosts/) are
// mirrored (coord/mirror.h): one read and one watch each, then only the
// changes; reading them sends nothing to etcd.
//
// Thread-safe. Owns a LeaseKeeper (heartbeat thread) and the mirrors' threads
// (started on first use); Stop() joins them.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/cluster/coord_records.h"
#include "common/status.h"
#include "coord/kv_store.h"
#include "coord/lease_keeper.h"
#include "coord/mirror.h"

namespace gemini {

struct HostInfo {
  uint32_t host = 0;
  std::string addr;
  uint16_t port = 0;
  std::vector<uint32_t> ranks;
};

std::string EncodeHostInfo(const HostInfo& h);
Result<HostInfo> DecodeHostInfo(const std::string& json);

class JobCoordinator {
 public:
  // `kv` is already confined to the job's prefix.
  JobCoordinator(std::shared_ptr<KvStore> kv, HostInfo self, int64_t lease_ttl_s,
                 int64_t epoch = 0);
  ~JobCoordinator();

  // Grants the lease, writes hosts/<self>, starts the heartbeat. on_lost is
  // called (from the keeper's thread) if the lease is lost.
  Status Register(std::function<void(const Status&)> on_lost = nullptr);
  // Writes key = value only while this agent's registration stands
  // (hosts/<self> holds exactly what this agent last wrote there, lease id
  // included), in one transaction: an agent whose registration expired or was
  // taken over by a replacement, even one that wrote over a live record,
  // writes nothing that directs recovery (ready/, done/, exits/). False when
  // refused.
  Result<bool> PutOwn(const std::string& key, const std::string& value, Deadline deadline);
  // Re-publishes this host's ranks (a trainer with a new rank connected).
  Status SetRanks(std::vector<uint32_t> ranks);
  // The host that owns `rank` (kNotFound if none ever registered it).
  Result<uint32_t> HostOfRank(uint32_t rank);
  // Every registered host of the job, by host id (read from etcd).
  Result<std::map<uint32_t, HostInfo>> Hosts();
  // The same from a mirror of hosts/ (no request; for the root, which looks
  // every tick). Every registration then reaches this agent as an event.
  Result<std::map<uint32_t, HostInfo>> WatchedHosts();
  // The current value of `key` (relative to the job prefix) from its mirror,
  // started on first use: kNotFound when absent, kUnavailable before etcd
  // was first read.
  Result<KeyValue> Watched(const std::string& key);
  // Waits until `key`'s mirror changes after version `seen` (0 at first) or
  // the deadline passes; returns the version now. Wakes a thread on a change
  // instead of it polling.
  uint64_t WaitWatched(const std::string& key, uint64_t seen, Deadline deadline);
  // Every key under `prefix` from a mirror of `dir` (a prefix of it, e.g.
  // "ready/" for "ready/3/"), sorted by key, as GetPrefix would return them.
  Result<RangeResult> WatchedPrefix(const std::string& dir, const std::string& prefix);
  // Records that `rank`'s shard of `iteration`, committed in `epoch`, is on
  // every holder. Only records of the current epoch count (TryAdvanceComplete).
  Status ReportReplicated(uint32_t rank, int64_t iteration, int64_t epoch);
  // Advances `complete` to the smallest replicated iteration over ranks
  // 0..world_size-1 of this epoch when that is newer. Returns the complete
  // iteration afterwards (-1 if none).
  Result<int64_t> TryAdvanceComplete(uint32_t world_size);
  // Advances `complete` to (epoch, iteration) unless it already holds a newer
  // epoch or, in this epoch, an iteration at least as new (compare-and-swap).
  // Returns the complete iteration of `epoch` afterwards (-1 if none).
  Result<int64_t> AdvanceComplete(int64_t epoch, int64_t iteration);
  // The complete iteration of any epoch (its mirror when WatchComplete runs).
  Result<int64_t> Complete();
  // The same with the epoch it completed in ({-1, -1}: none).
  Result<CompleteRecord> CompleteWithEpoch();
  // Calls on_change(epoch, iteration) from a thread the coordinator owns,
  // once now and after every change of `complete` in this epoch (a watch).
  void WatchComplete(std::function<void(int64_t epoch, int64_t iteration)> on_change);
  void Stop();
  // Re-registers under a fresh lease if the heartbeat lease was lost (etcd
  // was unreachable for a whole TTL). Returns whether it had to.
  Result<bool> Maintain();
  // Plain cluster mode (no root fences a lost host): a thread that calls
  // Maintain() every `every` until Stop(), so an agent cut off from etcd for
  // a whole TTL serves again once etcd answers. Launch mode leaves this to
  // the worker, which must first see whether the root declared it lost.
  void KeepRegistered(std::chrono::milliseconds every);
  // A recovery moved the job to a new epoch (timeline).
  void SetEpoch(int64_t epoch) { epoch_ = epoch; }

  int64_t epoch() const { return epoch_; }
  LeaseId lease_id();
  const HostInfo& self() const { return self_; }
  // The job's key-value store (keys relative to the job prefix).
  KvStore& kv() { return *kv_; }

 private:
  Status PutSelf();
  static std::map<uint32_t, HostInfo> DecodeHosts(const std::vector<KeyValue>& kvs);
  void OnCompleteChanged();
  Mirror* MirrorOf(const std::string& key, bool prefix);

  const std::shared_ptr<KvStore> kv_;
  const int64_t ttl_s_;
  std::atomic<int64_t> epoch_;
  std::mutex mu_;
  HostInfo self_;
  std::unique_ptr<LeaseKeeper> keeper_;
  bool registered_ = false;  // Register() succeeded once: Maintain() keeps it so.
  // hosts/<self> as this agent last wrote it (it names the lease, so each
  // registration's differs); "" when not registered. PutOwn compares it.
  std::string registered_value_;
  std::function<void(int64_t, int64_t)> on_complete_;
  std::unique_ptr<Mirror> complete_;                        // set once by WatchComplete
  int64_t last_epoch_ = -1, last_iteration_ = -2;           // complete_'s thread only
  std::map<std::string, std::unique_ptr<Mirror>> mirrors_;  // guarded by mu_
  std::atomic<bool> stopping_{false};
  std::condition_variable stop_cv_;  // wakes the maintainer on Stop (mu_)
  std::thread maintainer_;           // KeepRegistered's
};

}  // namespace gemini
