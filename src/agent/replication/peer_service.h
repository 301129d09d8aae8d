// PeerService: the agent's side of the agent <-> agent protocol
// (peer_protocol.h) on one authenticated connection.
//
// kPeerReplicateChunked: a replica in chunks (chunked_replica.h: the header
// is validated, including that a replica may never overwrite a rank this
// machine owns; every chunk's CRC32C is checked before the commit). A peer
// that breaks any rule gets an error reply (where the stream still allows)
// and the connection is dropped; the slot it was writing is released and
// nothing committed changes. kFetch: the shard is pinned and streamed from
// the slot. kPeerStatus: the store's status JSON. kPeerReplicated: a host's
// completion report, handed to `on_report` (the root's tracker, completion.h);
// its status is the answer.
//
// Also the client half of a fetch: FetchInto().
// Thread-safe: one PeerService serves many connections concurrently (each on
// its own thread); it holds no per-connection state.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <string>

#include "agent/replication/chunked_replica.h"
#include "agent/replication/fragments.h"
#include "agent/replication/peer_protocol.h"
#include "store/store.h"
#include "transport/connection.h"
#include "transport/peer_server.h"

namespace gemini {

class PeerService {
 public:
  // is_owned(job, rank): whether a trainer on this machine owns that shard
  // (then no peer may write it). Serves `job` and its generations
  // (JOB.worldW, store/generations.h).
  // Connection threads run at CPU nice `nice` (common/thread_priority.h).
  using ReportHandler = std::function<Status(const ReplicatedReport&)>;
  PeerService(Store* store, std::string job, OwnedRank is_owned, int nice = 0,
              ReportHandler on_report = nullptr);
  // Serves requests until the peer closes (OK) or breaks a rule (error).
  Status Serve(transport::Connection& conn);

 private:
  Status HandleFetch(transport::Connection& conn, const std::string& payload);

  Store* store_;
  const std::string job_;
  const OwnedRank is_owned_;
  const int nice_;
  const ReportHandler on_report_;
  std::atomic<uint64_t> next_writer_{uint64_t{1} << 62};
};

// The peer server's limits for a job of `num_hosts` hosts: the root keeps a
// connection from every host (completion reports, completion.h) besides the
// replica and fetch streams of its group, so the authenticated-connection
// bound grows with the job (at least transport's default of 64).
transport::PeerServerOptions PeerServerOptionsFor(const std::string& job, uint32_t num_hosts);

// Sends a completion report to the root and waits for its answer.
Status SendReplicatedReport(transport::Connection& conn, const ReplicatedReport& report,
                            Deadline deadline);

// Fetches (job, rank, iteration) from a peer into `store` as a committed
// shard (CRC-verified before commit). Returns the fetched iteration. A peer
// that holds only a fragment of it: FailedPrecondition (the connection is
// then closed).
Result<int64_t> FetchInto(transport::Connection& conn, Store* store, uint64_t writer,
                          const std::string& job, uint32_t rank, int64_t iteration,
                          std::chrono::milliseconds timeout);

// Fetches whatever the peer holds of (job, rank, iteration), a whole shard or
// a fragment (agent/replication/fragments.h), into memory, CRC-verified; at most
// `max_bytes` of data.
Result<FetchedPiece> FetchPiece(transport::Connection& conn, const std::string& job, uint32_t rank,
                                int64_t iteration, uint64_t max_bytes,
                                std::chrono::milliseconds timeout);

}  // namespace gemini
