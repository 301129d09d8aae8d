#include "coord/mirror.h"

#include <algorithm>

#include "common/log.h"

namespace gemini {
namespace {

using std::chrono::milliseconds;
constexpr milliseconds kCall{3000};

}  // namespace

Mirror::Mirror(std::shared_ptr<KvStore> kv, std::string key, bool prefix,
               std::function<void()> on_change)
    : kv_(std::move(kv)), key_(std::move(key)), prefix_(prefix), on_change_(std::move(on_change)) {}

Mirror::~Mirror() { Stop(); }

void Mirror::Start(milliseconds wait) {
  thread_ = std::thread([this] { Run(); });
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, wait, [&] { return loaded_ || stop_; });
}

void Mirror::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_ && !thread_.joinable()) return;
    stop_ = true;
    if (watch_) watch_->Cancel();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Result<KeyValue> Mirror::Get() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!loaded_) return Unavailable("etcd: " + key_ + " not read yet");
  auto it = copy_.find(key_);
  if (it == copy_.end()) return NotFound("key not found: " + key_);
  return it->second;
}

Result<std::map<std::string, KeyValue>> Mirror::All() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!loaded_) return Unavailable("etcd: " + key_ + " not read yet");
  return copy_;
}

uint64_t Mirror::version() const {
  std::lock_guard<std::mutex> lock(mu_);
  return version_;
}

uint64_t Mirror::WaitChange(uint64_t seen, Deadline deadline) const {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_until(lock, deadline, [&] { return version_ != seen || stop_; });
  return version_;
}

void Mirror::Changed() {
  cv_.notify_all();
  if (on_change_) on_change_();
}

void Mirror::Run() {
  milliseconds backoff{100};
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return;
    }
    if (SyncAndFollow()) backoff = milliseconds(100);
    synced_ = false;
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, backoff, [&] { return stop_; });
    backoff = std::min(backoff * 2, milliseconds(1000));
  }
}

bool Mirror::SyncAndFollow() {
  // The range and the revision it was read at, in one request.
  requests_.fetch_add(1, std::memory_order_relaxed);
  auto read =
      kv_->Txn({}, {prefix_ ? TxnOp::GetPrefix(key_) : TxnOp::Get(key_)}, {}, DeadlineAfter(kCall));
  if (!read.ok() || read->gets.empty()) return false;
  std::map<std::string, KeyValue> fresh;
  for (auto& kv : read->gets.front().kvs) fresh[kv.key] = std::move(kv);
  bool changed = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto same = [](const auto& a, const auto& b) {
      return a.first == b.first && a.second.mod_revision == b.second.mod_revision;
    };
    changed = !loaded_ || fresh.size() != copy_.size() ||
              !std::equal(fresh.begin(), fresh.end(), copy_.begin(), same);
    copy_ = std::move(fresh);
    loaded_ = true;
    if (changed) ++version_;
  }
  if (changed) Changed();
  requests_.fetch_add(1, std::memory_order_relaxed);
  auto watch = kv_->WatchKey(key_, prefix_, read->revision + 1, DeadlineAfter(kCall));
  if (!watch.ok()) return false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return true;
    watch_ = watch->get();
  }
  synced_ = true;
  for (;;) {
    auto events = (*watch)->Poll(DeadlineAfter(milliseconds(30000)));  // Stop() cancels it.
    if (!events.ok()) {
      GEMINI_LOG_EVERY_N_SEC(DEBUG, 10)
          << "[mirror] " << key_ << ": " << events.status().ToString() << "; reading again";
      break;
    }
    if (events->empty()) continue;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& e : *events) {
        if (e.type == WatchEvent::Type::kDelete)
          copy_.erase(e.kv.key);
        else
          copy_[e.kv.key] = e.kv;
      }
      ++version_;
    }
    Changed();
  }
  std::lock_guard<std::mutex> lock(mu_);
  watch_ = nullptr;
  return true;
}

}  // namespace gemini
