// EtcdGrpcKvStore: KvStore on a real etcd v3 server over etcd's native gRPC
// API (services KV, Watch and Lease; etcd_api/rpc.proto), with gRPC C++.
// The default etcd client (NewEtcdKvStore); EtcdKvStore, the JSON gateway
// client, stays as a fallback (GEMINI_ETCD_API=gateway).
//
// Why gRPC: watches are real server-pushed streams, one HTTP/2 connection per
// client. Through the JSON gateway every client's watch shares the gateway's
// one gRPC connection inside etcd, and a watcher whose host died could stall
// it for every other client, so agents polled instead.
//
// Each call is one RPC bounded by its deadline, to the member that last
// answered; on kUnavailable (member down, no leader) it moves on to the next
// member. LeaseKeepAlive is one short-lived stream per call (one request, one
// answer). A watch is one stream read by a thread the Watch owns; the stream
// has no deadline, so gRPC keepalive pings (every 10 s, 3 s to answer) find a
// dead connection, and then the watch breaks with kUnavailable; so does a
// watch on a member that lost the cluster's leader (etcd's require-leader).
//
// Each store has its own connection per member (no sharing between stores:
// the scale bench runs many agents in one process). Reconnects back off 100 ms
// to 1 s, so a restarted etcd is used again within a second.
//
// Error codes as EtcdKvStore's: kUnavailable, kDeadlineExceeded, kNotFound,
// kInvalidArgument, kResourceExhausted (answer larger than
// max_response_bytes, or etcd out of space). TLS files that cannot be read
// make every call fail with that error.
//
// Thread safety: all methods are thread-safe. Watches may outlive the store.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "coord/etcd_kv_store.h"
#include "coord/kv_store.h"

namespace gemini {

class EtcdGrpcKvStore : public KvStore {
 public:
  explicit EtcdGrpcKvStore(EtcdOptions options = EtcdOptions());
  ~EtcdGrpcKvStore() override;

  Result<int64_t> Put(const std::string& key, const std::string& value, Deadline deadline,
                      LeaseId lease = kNoLease) override;
  Result<KeyValue> Get(const std::string& key, Deadline deadline) override;
  Result<RangeResult> GetPrefix(const std::string& prefix, Deadline deadline) override;
  Result<int64_t> Delete(const std::string& key, Deadline deadline) override;
  Result<int64_t> DeletePrefix(const std::string& prefix, Deadline deadline) override;
  Result<TxnResult> Txn(const std::vector<Compare>& compares, const std::vector<TxnOp>& success,
                        const std::vector<TxnOp>& failure, Deadline deadline) override;
  Result<LeaseInfo> LeaseGrant(int64_t ttl_seconds, Deadline deadline) override;
  Result<int64_t> LeaseKeepAlive(LeaseId lease, Deadline deadline) override;
  Status LeaseRevoke(LeaseId lease, Deadline deadline) override;
  Result<std::unique_ptr<Watch>> WatchKey(const std::string& key, bool prefix,
                                          int64_t start_revision, Deadline deadline) override;

  // RPCs this store sent (unary calls, keepalive streams, watch creations):
  // what it costs etcd. For `gemini bench coordination`.
  int64_t requests() const { return requests_.load(); }

 private:
  struct Member;
  // Runs `rpc` on the preferred member, moving on while members are
  // unavailable. `rpc` fills its answer and returns gRPC's status.
  template <typename Rpc>
  Status Call(Deadline deadline, const Rpc& rpc);
  Result<RangeResult> Range(const std::string& key, bool prefix, Deadline deadline);
  Result<int64_t> DeleteRange(const std::string& key, bool prefix, Deadline deadline);

  Status init_;  // why no call can work (unreadable TLS files, no endpoints)
  std::vector<std::unique_ptr<Member>> members_;
  std::atomic<size_t> preferred_{0};
  std::atomic<int64_t> requests_{0};
};

// The etcd client Gemini uses: EtcdGrpcKvStore, or EtcdKvStore (the JSON
// gateway) when GEMINI_ETCD_API=gateway.
std::shared_ptr<KvStore> NewEtcdKvStore(const EtcdOptions& options);

}  // namespace gemini
