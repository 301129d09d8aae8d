// Replicator: sends every shard committed on this machine to the other
// holders that the placement names, then records progress in etcd.
//
// OnCommit(rank, iteration) asks the Interleaver how this checkpoint goes
// (chunks, each maybe gated on an idle span of a following iteration) and
// queues a task; a worker thread handles tasks in order (every iteration of
// every rank, none skipped: completion counts on each holder holding each
// iteration). For a task it pins the shard and sends it, in chunks of at most
// R/p bytes with at most p unacknowledged (chunked_replica.h), to each other
// holder of the owner host's shard (mixed placement over num_hosts hosts, m
// replicas), over a channel per holder (channel.h), waiting for each gate's
// span to open before its chunk. Under
// rs:K+F each holder gets its own fragment instead of the whole shard
// (agent/replication/fragments.h), encoded here, off the training thread. It then
// waits for each holder's verdict (every CRC checked, committed), tells the
// Interleaver, writes replicated/<rank> and tries to advance the job's
// complete iteration. A failed send is retried at once (no gates) on a fresh
// connection until the task's deadline; then the task is dropped with an
// error logged, and completion stalls (recovery takes over from there). In
// mode none nothing is sent and completion records the local captures.
//
// Pieces travel over channels (channel.h: TCP in production, with the job's
// handshake; a fake in tests), made by a ChannelDialer and cached per peer
// host. Thread-safe; the worker is joined by Stop().
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "agent/cluster/job_coordinator.h"
#include "agent/cluster/layout.h"
#include "agent/cluster/plan.h"
#include "agent/interleave/interleaver.h"
#include "agent/replication/channel.h"
#include "agent/replication/fragments.h"
#include "store/store.h"

namespace gemini {

struct ReplicatorOptions {
  std::string job;
  uint32_t self_host = 0;
  uint32_t num_hosts = 1;
  Redundancy redundancy = Redundancy::Copies(2);  // copies:M (the owner's included) or rs:K+F.
  std::chrono::milliseconds task_timeout{std::chrono::minutes(2)};
  // Launch mode: a replicated shard is told to the host's CompletionReporter
  // (completion.h) instead of being recorded per rank in etcd.
  std::function<void(uint32_t rank, int64_t epoch, int64_t iteration)> on_replicated;
};

struct ReplicatorStats {
  uint64_t shards_sent = 0;
  uint64_t bytes_sent = 0;
  uint64_t failures = 0;
  int64_t last_complete = -1;
  std::string last_error;  // Of the newest failed task; empty after a success.
};

class Replicator {
 public:
  // `interleaver` outlives the replicator.
  Replicator(Store* store, JobCoordinator* coord, ChannelDialer dial, Interleaver* interleaver,
             ReplicatorOptions options);
  ~Replicator();

  void OnCommit(uint32_t rank, int64_t iteration);
  // Waits until every queued task is done (tests, benchmarks).
  void Drain();
  void Stop();
  ReplicatorStats stats();
  // Hosts (other than this one) that hold this host's shards.
  Result<std::vector<uint32_t>> PeerHolders() const;
  // Bytes each of them gets of a `shard_bytes` shard: all, or one fragment.
  uint64_t BytesPerHolder(uint64_t shard_bytes) const;
  // The job's layout from now on (launch mode: each epoch's members, store
  // job and placement). Commits already queued keep the one they came under.
  // Until set: every one of num_hosts hosts, store job options.job.
  void SetLayout(LayoutPtr layout);
  LayoutPtr layout() const;

 private:
  struct Task {
    uint32_t rank;
    int64_t iteration;
    int64_t epoch;     // The timeline the shard was committed in.
    LayoutPtr layout;  // The members, store job and holders it was committed under.
    std::vector<SendStep> steps;
  };
  using Clock = std::chrono::steady_clock;
  void Run();
  Status Replicate(const Task& t);
  // Sends the planned chunks to every peer; retries failed peers at once.
  // What peer holder i (PeerHolders order) gets of `pin`: the shard itself,
  // or under rs:K+F its fragment (of `encoded`). Streamed: the fragment is
  // made stripe by stripe as its sender sends it (`maker`); otherwise whole,
  // on the calling thread. Thread-safe for distinct i.
  struct Piece {
    const ShardPin* pin = nullptr;
    PieceMaker* maker = nullptr;  // Streamed pieces only.
  };
  using PieceFor = std::function<Result<Piece>(size_t i, bool streamed)>;
  Result<PieceFor> PiecesFor(const ShardPin& pin, const JobLayout& layout,
                             std::unique_ptr<EncodedShard>* encoded);
  Result<std::vector<uint32_t>> PeerHolders(const JobLayout* layout) const;
  uint64_t BytesPerHolder(uint64_t shard_bytes, const JobLayout* layout) const;
  // Sends each peer its piece; `sent` gets the pieces.
  Status SendScheduled(const Task& t, const PieceFor& piece_for, const std::vector<uint32_t>& peers,
                       Clock::time_point end, std::vector<const ShardPin*>* sent);
  Status SendTo(uint32_t host, const ShardPin& pin, int64_t epoch, Clock::time_point end);
  // A cached channel to `host`, dialed if needed.
  Result<Channel*> ChannelTo(uint32_t host);

  Store* store_;
  JobCoordinator* coord_;
  ChannelDialer dial_;
  Interleaver* interleaver_;
  const ReplicatorOptions options_;
  mutable std::mutex mu_;
  LayoutPtr layout_;  // guarded by mu_
  std::condition_variable cv_;
  std::deque<Task> queue_;
  bool busy_ = false;
  bool stop_ = false;
  ReplicatorStats stats_;
  std::map<uint32_t, std::unique_ptr<Channel>> channels_;  // Worker thread only.
  int64_t channels_epoch_ = -1;     // The epoch channels_ were dialed in (worker thread only).
  std::vector<uint8_t> fragments_;  // Encoded fragments (worker thread only; reused).
  std::thread worker_;
};

}  // namespace gemini
