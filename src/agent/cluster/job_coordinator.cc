#include "agent/cluster/job_coordinator.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <thread>

#include "agent/cluster/coord_records.h"
#include "common/json_fields.h"
#include "common/log.h"

namespace gemini {
namespace {

using std::chrono::milliseconds;
constexpr milliseconds kCallTimeout{3000};
constexpr char kComplete[] = "complete";

std::string ReplicatedPrefix(int64_t epoch) {
  return "epochs/" + std::to_string(epoch) + "/replicated/";
}

// The complete record; (-1, -1) when unreadable (a forged or corrupt value
// is logged, counts as absent and is replaced by the next advance).
CompleteRecord ParseComplete(const std::string& v) {
  auto c = DecodeComplete(v);
  if (c.ok()) return *c;
  GEMINI_LOG_EVERY_N_SEC(WARN, 10) << "[coord] ignoring complete: " << c.status().ToString();
  return {};
}

}  // namespace

namespace {
nlohmann::json HostJson(const HostInfo& h) {
  return {{"host", h.host}, {"addr", h.addr}, {"port", h.port}, {"ranks", h.ranks}};
}
}  // namespace

std::string EncodeHostInfo(const HostInfo& h) { return HostJson(h).dump(); }

Result<HostInfo> DecodeHostInfo(const std::string& text) {
  GEMINI_ASSIGN_OR_RETURN(nlohmann::json j, ParseJsonObject(text, "host record"));
  JsonFields f(j, "host record");
  HostInfo h;
  h.host = static_cast<uint32_t>(f.Int("host", 0, INT32_MAX));
  h.addr = f.String("addr", std::nullopt, 256);
  h.port = static_cast<uint16_t>(f.Int("port", 0, 65535));
  h.ranks = f.Ids("ranks", INT32_MAX, 1 << 16);
  GEMINI_RETURN_IF_ERROR(f.status());
  return h;
}

JobCoordinator::JobCoordinator(std::shared_ptr<KvStore> kv, HostInfo self, int64_t lease_ttl_s,
                               int64_t epoch)
    : kv_(std::move(kv)), ttl_s_(lease_ttl_s), epoch_(epoch), self_(std::move(self)) {}

JobCoordinator::~JobCoordinator() { Stop(); }

Status JobCoordinator::PutSelf() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!keeper_) return FailedPrecondition("not registered");
  // The record names the lease it lives under: each registration's value is
  // its own, which is what PutOwn checks.
  nlohmann::json j = HostJson(self_);
  j["lease"] = keeper_->id();
  std::string value = j.dump();
  auto put = kv_->Put("hosts/" + std::to_string(self_.host), value, DeadlineAfter(kCallTimeout),
                      keeper_->id());
  if (put.ok()) registered_value_ = std::move(value);
  return put.status();
}

Status JobCoordinator::Register(std::function<void(const Status&)> on_lost) {
  GEMINI_ASSIGN_OR_RETURN(LeaseInfo lease, kv_->LeaseGrant(ttl_s_, DeadlineAfter(kCallTimeout)));
  std::vector<uint32_t> ranks;
  {
    std::lock_guard<std::mutex> lock(mu_);
    keeper_ = std::make_unique<LeaseKeeper>(kv_, lease, std::move(on_lost));
    registered_ = true;
    ranks.swap(self_.ranks);
  }
  if (ranks.empty()) return PutSelf();
  return SetRanks(std::move(ranks));  // Also records ranks/<r>.
}

Result<bool> JobCoordinator::PutOwn(const std::string& key, const std::string& value,
                                    Deadline deadline) {
  std::string mine;
  {
    std::lock_guard<std::mutex> lock(mu_);
    mine = registered_value_;
  }
  if (mine.empty()) return false;  // Not registered (yet, or any more).
  GEMINI_ASSIGN_OR_RETURN(
      TxnResult r, kv_->Txn({Compare::ValueEquals("hosts/" + std::to_string(self_.host), mine)},
                            {TxnOp::Put(key, value)}, {}, deadline));
  return r.succeeded;
}

Status JobCoordinator::SetRanks(std::vector<uint32_t> ranks) {
  std::sort(ranks.begin(), ranks.end());
  uint32_t host = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (ranks == self_.ranks) return Status::Ok();
    self_.ranks = ranks;
    host = self_.host;
  }
  for (uint32_t r : ranks)
    GEMINI_RETURN_IF_ERROR(
        kv_->Put("ranks/" + std::to_string(r), std::to_string(host), DeadlineAfter(kCallTimeout))
            .status());
  return PutSelf();
}

LeaseId JobCoordinator::lease_id() {
  std::lock_guard<std::mutex> lock(mu_);
  return keeper_ ? keeper_->id() : kNoLease;
}

Result<bool> JobCoordinator::Maintain() {
  std::unique_ptr<LeaseKeeper> old;
  bool renew = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!registered_ || stopping_) return false;
    renew = !(keeper_ && keeper_->status().ok());
    // Healthy and registered; or healthy, but the record did not get written
    // after the last renewal: write it again (below).
    if (!renew && !registered_value_.empty()) return false;
    if (renew) {
      old = std::move(keeper_);  // Null if the last attempt failed: try again.
      registered_value_.clear();
    }
  }
  if (old) old->Stop();
  if (renew) {
    GEMINI_ASSIGN_OR_RETURN(LeaseInfo lease, kv_->LeaseGrant(ttl_s_, DeadlineAfter(kCallTimeout)));
    std::lock_guard<std::mutex> lock(mu_);
    keeper_ = std::make_unique<LeaseKeeper>(kv_, lease);
  }
  GEMINI_RETURN_IF_ERROR(PutSelf());
  GEMINI_LOG(WARN) << "[coord] heartbeat lease was lost; registered again";
  return true;
}

void JobCoordinator::KeepRegistered(std::chrono::milliseconds every) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_ || maintainer_.joinable()) return;
  maintainer_ = std::thread([this, every] {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_cv_.wait_for(lock, every, [this] { return stopping_.load(); })) {
      lock.unlock();
      auto again = Maintain();
      if (!again.ok())
        GEMINI_LOG_EVERY_N_SEC(WARN, 10)
            << "[coord] registering again: " << again.status().ToString();
      lock.lock();
    }
  });
}

Result<uint32_t> JobCoordinator::HostOfRank(uint32_t rank) {
  GEMINI_ASSIGN_OR_RETURN(KeyValue kv,
                          kv_->Get("ranks/" + std::to_string(rank), DeadlineAfter(kCallTimeout)));
  auto host = DecodeId(kv.value);
  if (!host.ok())
    return InvalidArgument("ranks/" + std::to_string(rank) + ": " + host.status().message());
  return *host;
}

Mirror* JobCoordinator::MirrorOf(const std::string& key, bool prefix) {
  Mirror* m = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return nullptr;
    auto& slot = mirrors_[key];
    if (slot) return slot.get();
    slot = std::make_unique<Mirror>(kv_, key, prefix);
    m = slot.get();
  }
  m->Start();  // Waits (bounded) for the first read.
  return m;
}

Result<KeyValue> JobCoordinator::Watched(const std::string& key) {
  Mirror* m = MirrorOf(key, false);
  if (m == nullptr) return Aborted("coordinator stopped");
  return m->Get();
}

std::map<uint32_t, HostInfo> JobCoordinator::DecodeHosts(const std::vector<KeyValue>& kvs) {
  std::map<uint32_t, HostInfo> hosts;
  for (const auto& kv : kvs) {
    auto h = DecodeHostInfo(kv.value);
    if (!h.ok()) {
      GEMINI_LOG_EVERY_N_SEC(WARN, 10)
          << "[coord] ignoring " << kv.key << ": " << h.status().ToString();
      continue;
    }
    hosts[h->host] = *h;
  }
  return hosts;
}

uint64_t JobCoordinator::WaitWatched(const std::string& key, uint64_t seen, Deadline deadline) {
  Mirror* m = MirrorOf(key, false);
  if (m == nullptr) {
    std::this_thread::sleep_until(std::min(deadline, DeadlineAfter(milliseconds(100))));
    return seen;
  }
  return m->WaitChange(seen, deadline);
}

Result<RangeResult> JobCoordinator::WatchedPrefix(const std::string& dir,
                                                  const std::string& prefix) {
  Mirror* m = MirrorOf(dir, true);
  if (m == nullptr) return Aborted("coordinator stopped");
  auto all = m->All();
  if (!all.ok()) return kv_->GetPrefix(prefix, DeadlineAfter(kCallTimeout));
  RangeResult r;
  for (auto it = all->lower_bound(prefix); it != all->end() && it->first.rfind(prefix, 0) == 0;
       ++it)
    r.kvs.push_back(std::move(it->second));
  return r;
}

Result<std::map<uint32_t, HostInfo>> JobCoordinator::Hosts() {
  GEMINI_ASSIGN_OR_RETURN(RangeResult r, kv_->GetPrefix("hosts/", DeadlineAfter(kCallTimeout)));
  return DecodeHosts(r.kvs);
}

Result<std::map<uint32_t, HostInfo>> JobCoordinator::WatchedHosts() {
  Mirror* m = MirrorOf("hosts/", true);
  if (m == nullptr) return Aborted("coordinator stopped");
  auto all = m->All();
  if (!all.ok()) return Hosts();  // Not read yet: ask etcd itself.
  std::vector<KeyValue> kvs;
  for (auto& [key, kv] : *all) kvs.push_back(std::move(kv));
  return DecodeHosts(kvs);
}

Status JobCoordinator::ReportReplicated(uint32_t rank, int64_t iteration, int64_t epoch) {
  return kv_
      ->Put(ReplicatedPrefix(epoch) + std::to_string(rank), std::to_string(iteration),
            DeadlineAfter(kCallTimeout))
      .status();
}

Result<int64_t> JobCoordinator::Complete() {
  GEMINI_ASSIGN_OR_RETURN(CompleteRecord c, CompleteWithEpoch());
  return c.iteration;
}

Result<CompleteRecord> JobCoordinator::CompleteWithEpoch() {
  auto kv = complete_ && complete_->synced() ? complete_->Get()
                                             : kv_->Get(kComplete, DeadlineAfter(kCallTimeout));
  if (!kv.ok())
    return kv.status().code() == Code::kNotFound ? Result<CompleteRecord>(CompleteRecord{})
                                                 : kv.status();
  return ParseComplete(kv->value);
}

Result<int64_t> JobCoordinator::TryAdvanceComplete(uint32_t world_size) {
  const int64_t me = epoch_;  // One epoch for the whole decision.
  GEMINI_ASSIGN_OR_RETURN(RangeResult r,
                          kv_->GetPrefix(ReplicatedPrefix(me), DeadlineAfter(kCallTimeout)));
  std::map<uint32_t, int64_t> done;
  for (const auto& kv : r.kvs) {
    auto rank = KeyId(kv.key);
    auto iteration = DecodeIteration(kv.value);
    if (!rank.ok() || !iteration.ok()) {  // Forged or corrupt: that rank is not replicated.
      GEMINI_LOG_EVERY_N_SEC(WARN, 10)
          << "[coord] ignoring " << kv.key << ": "
          << (rank.ok() ? iteration.status() : rank.status()).ToString();
      continue;
    }
    done[*rank] = *iteration;
  }
  int64_t candidate = INT64_MAX;
  for (uint32_t rank = 0; rank < world_size; ++rank)
    candidate = std::min(candidate, done.count(rank) ? done[rank] : -1);
  return AdvanceComplete(me, candidate);
}

Result<int64_t> JobCoordinator::AdvanceComplete(int64_t epoch, int64_t candidate) {
  const int64_t me = epoch;
  for (int attempt = 0; attempt < 5; ++attempt) {
    // First from the mirror when it is current (one request per advance: the
    // compare-and-swap); a stale copy only makes the swap fail, then etcd is read.
    auto cur = attempt == 0 && complete_ && complete_->synced()
                   ? complete_->Get()
                   : kv_->Get(kComplete, DeadlineAfter(kCallTimeout));
    if (!cur.ok() && cur.status().code() != Code::kNotFound) return cur.status();
    auto [epoch, iteration] = cur.ok() ? ParseComplete(cur->value) : CompleteRecord{};
    // A newer epoch's record wins; within an epoch the iteration only grows.
    if (epoch > me || (epoch == me && iteration >= candidate) || candidate < 0)
      return epoch == me ? iteration : -1;
    std::string value = EncodeComplete({me, candidate});
    GEMINI_ASSIGN_OR_RETURN(bool swapped,
                            kv_->CompareAndSwapRevision(kComplete, cur.ok() ? cur->mod_revision : 0,
                                                        value, DeadlineAfter(kCallTimeout)));
    if (swapped) return candidate;
  }
  return Aborted("complete: too much contention");
}

void JobCoordinator::WatchComplete(std::function<void(int64_t, int64_t)> on_change) {
  on_complete_ = std::move(on_change);
  complete_ = std::make_unique<Mirror>(kv_, kComplete, false, [this] { OnCompleteChanged(); });
  complete_->Start();
}

void JobCoordinator::OnCompleteChanged() {
  auto cur = complete_->Get();
  if (!cur.ok()) return;
  auto [epoch, iteration] = ParseComplete(cur->value);
  if (epoch == epoch_ && (epoch != last_epoch_ || iteration != last_iteration_))
    on_complete_(epoch, iteration);
  last_epoch_ = epoch;
  last_iteration_ = iteration;
}

void JobCoordinator::Stop() {
  std::map<std::string, std::unique_ptr<Mirror>> mirrors;
  std::unique_ptr<LeaseKeeper> keeper;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_.exchange(true)) return;
    keeper = std::move(keeper_);
    registered_value_.clear();  // Stood down: writes nothing more (PutOwn).
    mirrors.swap(mirrors_);
  }
  stop_cv_.notify_all();
  if (maintainer_.joinable()) maintainer_.join();
  if (complete_) complete_->Stop();
  for (auto& [key, m] : mirrors) m->Stop();
  if (keeper) {
    keeper->Stop();
    (void)kv_->LeaseRevoke(keeper->id(), DeadlineAfter(kCallTimeout));
  }
}

}  // namespace gemini
