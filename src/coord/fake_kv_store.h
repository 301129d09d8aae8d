// FakeKvStore: an in-memory KvStore with etcd's semantics, for unit tests.
//
// Same revisions, versions, lease expiry, transactions and watches as
// EtcdKvStore (both pass kv_store_test.cc). Leases expire in real time, or,
// with Options::manual_clock, only when the test calls AdvanceClock(). Expiry
// is applied lazily, at the start of every call and while a Watch polls,
// which no caller can tell apart from a background reaper.
//
// Fault injection: SetUnavailable(true) makes every call fail with
// kUnavailable and breaks every open watch, as a dead etcd would.
//
// Thread safety: all methods are thread-safe (one mutex). Watches hold a
// reference to the store's state, so they may outlive the FakeKvStore.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "coord/kv_store.h"

namespace gemini {

class FakeKvStore : public KvStore {
 public:
  struct Options {
    // false: leases expire in real time. true: time stands still until
    // AdvanceClock().
    bool manual_clock = false;
    // Events kept for watches that start at an old revision; older ones are
    // compacted away (such a watch fails with kAborted, as in etcd).
    size_t history_limit = 100000;
  };

  FakeKvStore();
  explicit FakeKvStore(Options options);
  ~FakeKvStore() override;

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

  // Manual clock only (kFailedPrecondition otherwise): moves time forward and
  // expires the leases that are due.
  Status AdvanceClock(std::chrono::milliseconds d);
  // While true, every call returns kUnavailable and open watches break.
  void SetUnavailable(bool unavailable);
  // The current store revision.
  int64_t revision() const;

  struct Core;  // shared with watches; defined in the .cc

 private:
  std::shared_ptr<Core> core_;
};

}  // namespace gemini
