#include "coord/lease_keeper.h"

#include <algorithm>
#include <utility>

#include "common/log.h"

namespace gemini {
namespace {

std::chrono::milliseconds RefreshInterval(int64_t ttl_seconds) {
  return std::max(std::chrono::milliseconds(100),
                  std::chrono::milliseconds(std::max<int64_t>(ttl_seconds, 1) * 1000 / 3));
}

}  // namespace

LeaseKeeper::LeaseKeeper(std::shared_ptr<KvStore> store, LeaseInfo lease, LostCallback on_lost)
    : store_(std::move(store)),
      lease_(lease),
      on_lost_(std::move(on_lost)),
      interval_(RefreshInterval(lease.ttl_seconds)) {
  thread_ = std::thread([this] { Run(); });
}

LeaseKeeper::~LeaseKeeper() { Stop(); }

Status LeaseKeeper::status() const {
  std::lock_guard<std::mutex> lock(mu_);
  return status_;
}

void LeaseKeeper::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void LeaseKeeper::Run() {
  const auto ttl = std::chrono::seconds(std::max<int64_t>(lease_.ttl_seconds, 1));
  auto last_ok = std::chrono::steady_clock::now();
  Status lost;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (cv_.wait_for(lock, interval_, [&] { return stopping_; })) return;
    }
    Result<int64_t> r = store_->LeaseKeepAlive(lease_.id, DeadlineAfter(interval_));
    auto now = std::chrono::steady_clock::now();
    if (r.ok()) {
      last_ok = now;
      continue;
    }
    GEMINI_LOG(WARN) << "[lease " << lease_.id << "] keepalive failed: " << r.status().ToString();
    if (r.status().code() == Code::kNotFound) {
      lost = Aborted("lease " + std::to_string(lease_.id) + " lost: " + r.status().message());
      break;
    }
    if (now - last_ok >= ttl) {
      lost = Aborted("lease " + std::to_string(lease_.id) + " presumed lost: no keepalive for " +
                     std::to_string(ttl.count()) + " s; last error: " + r.status().ToString());
      break;
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    status_ = lost;
  }
  if (on_lost_) on_lost_(lost);
}

}  // namespace gemini
