// PrefixKvStore: confines a user (one job) to the keys under one prefix.
//
// Every key passed in is stored as prefix + key; every key handed back (gets,
// ranges, transaction reads, watch events) has the prefix stripped, so code
// written against a whole store runs unchanged inside a job's namespace, and
// nothing outside the prefix can be read or written through it. Revisions and
// leases are the underlying store's (leases are not namespaced).
//
// Ownership: shares ownership of the underlying store. Thread safety: as
// thread-safe as the underlying store (it keeps no state of its own).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "coord/kv_store.h"

namespace gemini {

class PrefixKvStore : public KvStore {
 public:
  // A conventional job prefix: "/gemini/<job>/".
  static std::string JobPrefix(const std::string& job);

  PrefixKvStore(std::shared_ptr<KvStore> base, std::string prefix);

  const std::string& prefix() const { return prefix_; }

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

 private:
  void Strip(KeyValue& kv) const;
  void Strip(RangeResult& r) const;

  std::shared_ptr<KvStore> base_;
  std::string prefix_;
};

}  // namespace gemini
