#include "coord/fake_kv_store.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <utility>

namespace gemini {
namespace {

using Clock = std::chrono::steady_clock;

struct WatchState {
  std::string key;
  bool prefix = false;
  int64_t start_revision = 0;
  std::deque<WatchEvent> queue;
  Status error;  // sticky once set
};

bool Matches(const WatchState& w, const std::string& key) {
  return w.prefix ? key.compare(0, w.key.size(), w.key) == 0 : key == w.key;
}

bool HasPrefix(const std::string& key, const std::string& prefix) {
  return key.compare(0, prefix.size(), prefix) == 0;
}

Status Down() { return Unavailable("fake kv store: unavailable (injected)"); }

}  // namespace

struct FakeKvStore::Core {
  struct Lease {
    int64_t ttl = 0;
    Clock::time_point expiry;
    std::set<std::string> keys;
  };

  Options options;
  mutable std::mutex mu;
  std::condition_variable cv;  // a change, an event, or a clock move
  // Everything below is guarded by mu.
  int64_t revision = 1;   // etcd starts at 1
  int64_t compacted = 0;  // history holds events of revisions > compacted
  std::map<std::string, KeyValue> kvs;
  std::map<LeaseId, Lease> leases;
  LeaseId next_lease = 0x2d4c4541;
  std::deque<WatchEvent> history;
  std::vector<std::shared_ptr<WatchState>> watches;
  Clock::duration manual_elapsed{0};
  bool unavailable = false;

  Clock::time_point Now() const {
    return options.manual_clock ? Clock::time_point() + manual_elapsed : Clock::now();
  }

  // The real-time point at which the next lease expires (max() if none, or
  // if the clock is manual).
  Clock::time_point NextExpiryLocked() const {
    Clock::time_point next = Clock::time_point::max();
    if (options.manual_clock) return next;
    for (const auto& [id, lease] : leases) next = std::min(next, lease.expiry);
    return next;
  }

  void EmitLocked(WatchEvent ev) {
    for (auto& w : watches) {
      if (w->error.ok() && ev.kv.mod_revision >= w->start_revision && Matches(*w, ev.kv.key)) {
        w->queue.push_back(ev);
      }
    }
    history.push_back(std::move(ev));
    while (history.size() > options.history_limit) {
      compacted = std::max(compacted, history.front().kv.mod_revision);
      history.pop_front();
    }
    cv.notify_all();
  }

  void PutLocked(const std::string& key, const std::string& value, LeaseId lease, int64_t rev) {
    KeyValue& kv = kvs[key];
    if (kv.create_revision == 0) {
      kv.key = key;
      kv.create_revision = rev;
    }
    if (kv.lease != kNoLease && kv.lease != lease) {
      auto old = leases.find(kv.lease);
      if (old != leases.end()) old->second.keys.erase(key);
    }
    if (lease != kNoLease) leases[lease].keys.insert(key);
    kv.value = value;
    kv.mod_revision = rev;
    kv.version++;
    kv.lease = lease;
    EmitLocked(WatchEvent{WatchEvent::Type::kPut, kv});
  }

  int64_t DeleteLocked(const std::string& key, bool prefix, int64_t rev) {
    int64_t n = 0;
    auto it = kvs.lower_bound(key);
    while (it != kvs.end() && (prefix ? HasPrefix(it->first, key) : it->first == key)) {
      if (it->second.lease != kNoLease) {
        auto l = leases.find(it->second.lease);
        if (l != leases.end()) l->second.keys.erase(it->first);
      }
      WatchEvent ev;
      ev.type = WatchEvent::Type::kDelete;
      ev.kv.key = it->first;
      ev.kv.mod_revision = rev;
      EmitLocked(std::move(ev));
      it = kvs.erase(it);
      ++n;
    }
    return n;
  }

  RangeResult RangeLocked(const std::string& key, bool prefix) const {
    RangeResult r;
    r.revision = revision;
    for (auto it = kvs.lower_bound(key);
         it != kvs.end() && (prefix ? HasPrefix(it->first, key) : it->first == key); ++it) {
      r.kvs.push_back(it->second);
    }
    return r;
  }

  void RevokeLocked(LeaseId id) {
    auto it = leases.find(id);
    if (it == leases.end()) return;
    std::set<std::string> keys = std::move(it->second.keys);
    leases.erase(it);
    if (keys.empty()) return;
    int64_t rev = revision + 1;
    for (const auto& k : keys) DeleteLocked(k, false, rev);
    revision = rev;
  }

  void ExpireLocked() {
    Clock::time_point now = Now();
    std::vector<LeaseId> due;
    for (const auto& [id, lease] : leases) {
      if (lease.expiry <= now) due.push_back(id);
    }
    for (LeaseId id : due) RevokeLocked(id);
  }

  // Every call starts here: fails while unavailable or past its deadline,
  // else applies expiry.
  Status BeginLocked(Deadline deadline) {
    if (unavailable) return Down();
    if (Clock::now() >= deadline) return DeadlineExceeded("fake kv store: deadline passed");
    ExpireLocked();
    return Status::Ok();
  }

  bool CompareLocked(const Compare& c) const {
    auto it = kvs.find(c.key);
    if (c.target == Compare::Target::kValue) {
      if (it == kvs.end()) return false;  // etcd: a value compare on a missing key fails
      int cmp = it->second.value.compare(c.value);
      return Holds(c.op, cmp < 0 ? -1 : (cmp > 0 ? 1 : 0));
    }
    int64_t have = 0;
    if (it != kvs.end()) {
      const KeyValue& kv = it->second;
      have = c.target == Compare::Target::kVersion          ? kv.version
             : c.target == Compare::Target::kCreateRevision ? kv.create_revision
                                                            : kv.mod_revision;
    }
    return Holds(c.op, have < c.number ? -1 : (have > c.number ? 1 : 0));
  }

  static bool Holds(Compare::Op op, int cmp) {
    switch (op) {
      case Compare::Op::kEqual:
        return cmp == 0;
      case Compare::Op::kNotEqual:
        return cmp != 0;
      case Compare::Op::kGreater:
        return cmp > 0;
      case Compare::Op::kLess:
        return cmp < 0;
    }
    return false;
  }

  // etcd's request checks: no key written twice, every lease exists.
  Status ValidateLocked(const std::vector<TxnOp>& ops) const {
    std::set<std::string> written;
    for (const auto& op : ops) {
      if (op.type == TxnOp::Type::kGet) continue;
      if (!written.insert(op.key).second) {
        return InvalidArgument("duplicate key given in txn request: " + op.key);
      }
      if (op.type == TxnOp::Type::kPut && op.lease != kNoLease && !leases.count(op.lease)) {
        return NotFound("requested lease not found");
      }
    }
    return Status::Ok();
  }
};

namespace {

class FakeWatch : public Watch {
 public:
  FakeWatch(std::shared_ptr<FakeKvStore::Core> core, std::shared_ptr<WatchState> state)
      : core_(std::move(core)), state_(std::move(state)) {}

  ~FakeWatch() override {
    std::lock_guard<std::mutex> lock(core_->mu);
    auto& ws = core_->watches;
    ws.erase(std::remove(ws.begin(), ws.end(), state_), ws.end());
  }

  Result<std::vector<WatchEvent>> Poll(Deadline deadline) override {
    std::unique_lock<std::mutex> lock(core_->mu);
    for (;;) {
      if (!core_->unavailable) core_->ExpireLocked();
      if (!state_->queue.empty()) {
        std::vector<WatchEvent> out(state_->queue.begin(), state_->queue.end());
        state_->queue.clear();
        return out;
      }
      if (!state_->error.ok()) return state_->error;
      if (Clock::now() >= deadline) return std::vector<WatchEvent>{};
      core_->cv.wait_until(lock, std::min(deadline, core_->NextExpiryLocked()));
    }
  }

  void Cancel() override {
    std::lock_guard<std::mutex> lock(core_->mu);
    if (state_->error.ok()) state_->error = Aborted("watch canceled");
    core_->cv.notify_all();
  }

 private:
  std::shared_ptr<FakeKvStore::Core> core_;
  std::shared_ptr<WatchState> state_;
};

}  // namespace

FakeKvStore::FakeKvStore() : FakeKvStore(Options()) {}

FakeKvStore::FakeKvStore(Options options) : core_(std::make_shared<Core>()) {
  core_->options = options;
  if (core_->options.history_limit == 0) core_->options.history_limit = 1;
}

FakeKvStore::~FakeKvStore() = default;

Result<int64_t> FakeKvStore::Put(const std::string& key, const std::string& value,
                                 Deadline deadline, LeaseId lease) {
  std::lock_guard<std::mutex> lock(core_->mu);
  GEMINI_RETURN_IF_ERROR(core_->BeginLocked(deadline));
  if (lease != kNoLease && !core_->leases.count(lease)) {
    return NotFound("requested lease not found");
  }
  core_->PutLocked(key, value, lease, core_->revision + 1);
  return ++core_->revision;
}

Result<KeyValue> FakeKvStore::Get(const std::string& key, Deadline deadline) {
  std::lock_guard<std::mutex> lock(core_->mu);
  GEMINI_RETURN_IF_ERROR(core_->BeginLocked(deadline));
  auto it = core_->kvs.find(key);
  if (it == core_->kvs.end()) return NotFound("key not found: " + key);
  return it->second;
}

Result<RangeResult> FakeKvStore::GetPrefix(const std::string& prefix, Deadline deadline) {
  std::lock_guard<std::mutex> lock(core_->mu);
  GEMINI_RETURN_IF_ERROR(core_->BeginLocked(deadline));
  return core_->RangeLocked(prefix, true);
}

Result<int64_t> FakeKvStore::Delete(const std::string& key, Deadline deadline) {
  std::lock_guard<std::mutex> lock(core_->mu);
  GEMINI_RETURN_IF_ERROR(core_->BeginLocked(deadline));
  int64_t n = core_->DeleteLocked(key, false, core_->revision + 1);
  if (n > 0) ++core_->revision;
  return n;
}

Result<int64_t> FakeKvStore::DeletePrefix(const std::string& prefix, Deadline deadline) {
  std::lock_guard<std::mutex> lock(core_->mu);
  GEMINI_RETURN_IF_ERROR(core_->BeginLocked(deadline));
  int64_t n = core_->DeleteLocked(prefix, true, core_->revision + 1);
  if (n > 0) ++core_->revision;
  return n;
}

Result<TxnResult> FakeKvStore::Txn(const std::vector<Compare>& compares,
                                   const std::vector<TxnOp>& success,
                                   const std::vector<TxnOp>& failure, Deadline deadline) {
  std::lock_guard<std::mutex> lock(core_->mu);
  GEMINI_RETURN_IF_ERROR(core_->BeginLocked(deadline));
  GEMINI_RETURN_IF_ERROR(core_->ValidateLocked(success));
  GEMINI_RETURN_IF_ERROR(core_->ValidateLocked(failure));
  TxnResult result;
  result.succeeded = std::all_of(compares.begin(), compares.end(),
                                 [&](const Compare& c) { return core_->CompareLocked(c); });
  const int64_t rev = core_->revision + 1;
  bool changed = false;
  for (const TxnOp& op : result.succeeded ? success : failure) {
    switch (op.type) {
      case TxnOp::Type::kPut:
        core_->PutLocked(op.key, op.value, op.lease, rev);
        changed = true;
        break;
      case TxnOp::Type::kDelete:
        changed |= core_->DeleteLocked(op.key, op.prefix, rev) > 0;
        break;
      case TxnOp::Type::kGet:
        result.gets.push_back(core_->RangeLocked(op.key, op.prefix));
        result.gets.back().revision = changed ? rev : core_->revision;
        break;
    }
  }
  if (changed) core_->revision = rev;
  result.revision = core_->revision;
  return result;
}

Result<LeaseInfo> FakeKvStore::LeaseGrant(int64_t ttl_seconds, Deadline deadline) {
  if (ttl_seconds <= 0) return InvalidArgument("lease TTL must be positive");
  std::lock_guard<std::mutex> lock(core_->mu);
  GEMINI_RETURN_IF_ERROR(core_->BeginLocked(deadline));
  LeaseId id = core_->next_lease++;
  Core::Lease& lease = core_->leases[id];
  lease.ttl = ttl_seconds;
  lease.expiry = core_->Now() + std::chrono::seconds(ttl_seconds);
  return LeaseInfo{id, ttl_seconds};
}

Result<int64_t> FakeKvStore::LeaseKeepAlive(LeaseId id, Deadline deadline) {
  std::lock_guard<std::mutex> lock(core_->mu);
  GEMINI_RETURN_IF_ERROR(core_->BeginLocked(deadline));
  auto it = core_->leases.find(id);
  if (it == core_->leases.end()) return NotFound("lease expired or revoked");
  it->second.expiry = core_->Now() + std::chrono::seconds(it->second.ttl);
  return it->second.ttl;
}

Status FakeKvStore::LeaseRevoke(LeaseId id, Deadline deadline) {
  std::lock_guard<std::mutex> lock(core_->mu);
  GEMINI_RETURN_IF_ERROR(core_->BeginLocked(deadline));
  if (!core_->leases.count(id)) return NotFound("requested lease not found");
  core_->RevokeLocked(id);
  return Status::Ok();
}

Result<std::unique_ptr<Watch>> FakeKvStore::WatchKey(const std::string& key, bool prefix,
                                                     int64_t start_revision, Deadline deadline) {
  std::lock_guard<std::mutex> lock(core_->mu);
  GEMINI_RETURN_IF_ERROR(core_->BeginLocked(deadline));
  auto state = std::make_shared<WatchState>();
  state->key = key;
  state->prefix = prefix;
  state->start_revision = start_revision > 0 ? start_revision : core_->revision + 1;
  if (start_revision > 0 && start_revision <= core_->compacted) {
    state->error = Aborted("required revision " + std::to_string(start_revision) +
                           " has been compacted (at " + std::to_string(core_->compacted) + ")");
  } else {
    for (const WatchEvent& ev : core_->history) {
      if (ev.kv.mod_revision >= state->start_revision && Matches(*state, ev.kv.key)) {
        state->queue.push_back(ev);
      }
    }
  }
  core_->watches.push_back(state);
  return std::unique_ptr<Watch>(new FakeWatch(core_, std::move(state)));
}

Status FakeKvStore::AdvanceClock(std::chrono::milliseconds d) {
  std::lock_guard<std::mutex> lock(core_->mu);
  if (!core_->options.manual_clock) return FailedPrecondition("fake kv store: clock is not manual");
  core_->manual_elapsed += d;
  core_->ExpireLocked();
  core_->cv.notify_all();
  return Status::Ok();
}

void FakeKvStore::SetUnavailable(bool unavailable) {
  std::lock_guard<std::mutex> lock(core_->mu);
  core_->unavailable = unavailable;
  if (unavailable) {
    for (auto& w : core_->watches) {
      if (w->error.ok()) w->error = Down();
    }
  }
  core_->cv.notify_all();
}

int64_t FakeKvStore::revision() const {
  std::lock_guard<std::mutex> lock(core_->mu);
  return core_->revision;
}

}  // namespace gemini
