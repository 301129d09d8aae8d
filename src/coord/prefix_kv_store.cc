#include "coord/prefix_kv_store.h"

#include <utility>

namespace gemini {
namespace {

class PrefixWatch : public Watch {
 public:
  PrefixWatch(std::unique_ptr<Watch> base, size_t prefix_len)
      : base_(std::move(base)), prefix_len_(prefix_len) {}

  Result<std::vector<WatchEvent>> Poll(Deadline deadline) override {
    GEMINI_ASSIGN_OR_RETURN(std::vector<WatchEvent> events, base_->Poll(deadline));
    for (auto& ev : events) ev.kv.key.erase(0, prefix_len_);
    return events;
  }

  void Cancel() override { base_->Cancel(); }

 private:
  std::unique_ptr<Watch> base_;
  size_t prefix_len_;
};

}  // namespace

std::string PrefixKvStore::JobPrefix(const std::string& job) { return "/gemini/" + job + "/"; }

PrefixKvStore::PrefixKvStore(std::shared_ptr<KvStore> base, std::string prefix)
    : base_(std::move(base)), prefix_(std::move(prefix)) {}

void PrefixKvStore::Strip(KeyValue& kv) const { kv.key.erase(0, prefix_.size()); }

void PrefixKvStore::Strip(RangeResult& r) const {
  for (auto& kv : r.kvs) Strip(kv);
}

Result<int64_t> PrefixKvStore::Put(const std::string& key, const std::string& value,
                                   Deadline deadline, LeaseId lease) {
  return base_->Put(prefix_ + key, value, deadline, lease);
}

Result<KeyValue> PrefixKvStore::Get(const std::string& key, Deadline deadline) {
  GEMINI_ASSIGN_OR_RETURN(KeyValue kv, base_->Get(prefix_ + key, deadline));
  Strip(kv);
  return kv;
}

Result<RangeResult> PrefixKvStore::GetPrefix(const std::string& prefix, Deadline deadline) {
  GEMINI_ASSIGN_OR_RETURN(RangeResult r, base_->GetPrefix(prefix_ + prefix, deadline));
  Strip(r);
  return r;
}

Result<int64_t> PrefixKvStore::Delete(const std::string& key, Deadline deadline) {
  return base_->Delete(prefix_ + key, deadline);
}

Result<int64_t> PrefixKvStore::DeletePrefix(const std::string& prefix, Deadline deadline) {
  return base_->DeletePrefix(prefix_ + prefix, deadline);
}

Result<TxnResult> PrefixKvStore::Txn(const std::vector<Compare>& compares,
                                     const std::vector<TxnOp>& success,
                                     const std::vector<TxnOp>& failure, Deadline deadline) {
  std::vector<Compare> c = compares;
  for (auto& x : c) x.key = prefix_ + x.key;
  std::vector<TxnOp> s = success;
  for (auto& x : s) x.key = prefix_ + x.key;
  std::vector<TxnOp> f = failure;
  for (auto& x : f) x.key = prefix_ + x.key;
  GEMINI_ASSIGN_OR_RETURN(TxnResult r, base_->Txn(c, s, f, deadline));
  for (auto& g : r.gets) Strip(g);
  return r;
}

Result<LeaseInfo> PrefixKvStore::LeaseGrant(int64_t ttl_seconds, Deadline deadline) {
  return base_->LeaseGrant(ttl_seconds, deadline);
}

Result<int64_t> PrefixKvStore::LeaseKeepAlive(LeaseId lease, Deadline deadline) {
  return base_->LeaseKeepAlive(lease, deadline);
}

Status PrefixKvStore::LeaseRevoke(LeaseId lease, Deadline deadline) {
  return base_->LeaseRevoke(lease, deadline);
}

Result<std::unique_ptr<Watch>> PrefixKvStore::WatchKey(const std::string& key, bool prefix,
                                                       int64_t start_revision, Deadline deadline) {
  GEMINI_ASSIGN_OR_RETURN(std::unique_ptr<Watch> w,
                          base_->WatchKey(prefix_ + key, prefix, start_revision, deadline));
  return std::unique_ptr<Watch>(new PrefixWatch(std::move(w), prefix_.size()));
}

}  // namespace gemini
