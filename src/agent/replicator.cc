#include "agent/replicator.h"

#include <algorithm>

#include "agent/peer_service.h"
#include "common/log.h"
#include "gemini/placement.h"

namespace gemini {

Replicator::Replicator(Store* store, JobCoordinator* coord, Dialer dial, ReplicatorOptions options)
    : store_(store), coord_(coord), dial_(std::move(dial)), options_(std::move(options)) {
  worker_ = std::thread([this] { Run(); });
}

Replicator::~Replicator() { Stop(); }

void Replicator::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return;
    stop_ = true;
  }
  cv_.notify_all();
  worker_.join();
}

void Replicator::OnCommit(uint32_t rank, int64_t iteration) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back({rank, iteration});
  }
  cv_.notify_all();
}

void Replicator::Drain() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return stop_ || (queue_.empty() && !busy_); });
}

ReplicatorStats Replicator::stats() {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

Result<std::vector<uint32_t>> Replicator::PeerHolders() const {
  GEMINI_ASSIGN_OR_RETURN(
      Placement p, MakePlacement(static_cast<int>(options_.num_hosts),
                                 static_cast<int>(options_.replicas), PlacementStrategy::kMixed));
  if (options_.self_host >= options_.num_hosts)
    return InvalidArgument("host id " + std::to_string(options_.self_host) + " not below " +
                           std::to_string(options_.num_hosts) + " hosts");
  std::vector<uint32_t> peers;
  for (int h : p.holders[options_.self_host])
    if (static_cast<uint32_t>(h) != options_.self_host) peers.push_back(static_cast<uint32_t>(h));
  return peers;
}

void Replicator::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (stop_) break;
    Task t = queue_.front();
    queue_.pop_front();
    busy_ = true;
    lock.unlock();
    Status st = Replicate(t);
    if (!st.ok())
      GEMINI_LOG(ERROR) << "[replicator] rank " << t.rank << " iteration " << t.iteration << ": "
                        << st.ToString();
    lock.lock();
    busy_ = false;
    if (!st.ok()) ++stats_.failures;
    cv_.notify_all();
  }
  lock.unlock();
  conns_.clear();
}

Status Replicator::Replicate(const Task& t) {
  auto end = std::chrono::steady_clock::now() + options_.task_timeout;
  GEMINI_ASSIGN_OR_RETURN(std::vector<uint32_t> peers, PeerHolders());
  GEMINI_ASSIGN_OR_RETURN(auto pin, store_->Pin(options_.job, t.rank, t.iteration));
  for (uint32_t host : peers) GEMINI_RETURN_IF_ERROR(SendTo(host, *pin, end));
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.shards_sent += peers.size();
    stats_.bytes_sent += peers.size() * pin->manifest.data_bytes;
  }
  uint32_t world_size = pin->manifest.world_size;
  pin.reset();
  // Record it; etcd may be briefly unreachable: keep trying until the deadline.
  for (int attempt = 0;; ++attempt) {
    Status st = coord_->ReportReplicated(t.rank, t.iteration);
    Result<int64_t> complete = st.ok() ? coord_->TryAdvanceComplete(world_size) : st;
    if (complete.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.last_complete = std::max(stats_.last_complete, *complete);
      return Status::Ok();
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_ || std::chrono::steady_clock::now() > end) return complete.status();
    }
    if (attempt == 0)
      GEMINI_LOG(WARN) << "[replicator] recording rank " << t.rank << " iteration " << t.iteration
                       << ": " << complete.status().ToString() << "; retrying";
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

Status Replicator::SendTo(uint32_t host, const ShardPin& pin,
                          std::chrono::steady_clock::time_point end) {
  Status last = Unavailable("no attempt");
  for (int attempt = 0; std::chrono::steady_clock::now() < end; ++attempt) {
    if (attempt > 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min(attempt, 10) * 50));
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return Aborted("replicator stopping");
    }
    auto& conn = conns_[host];
    if (!conn || !conn->status().ok()) {
      auto hosts = coord_->Hosts();
      if (!hosts.ok() || hosts->count(host) == 0) {
        last = hosts.ok() ? Unavailable("host " + std::to_string(host) + " is not registered")
                          : hosts.status();
        continue;
      }
      auto c = dial_((*hosts)[host]);
      if (!c.ok()) {
        last = c.status();
        continue;
      }
      conn = std::move(*c);
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        end - std::chrono::steady_clock::now());
    last = SendReplica(*conn, pin, left);
    if (last.ok()) return last;
    conn.reset();  // A refused or broken exchange: start over on a fresh connection.
  }
  return Status(last.code(), "replica of rank " + std::to_string(pin.manifest.rank) + " to host " +
                                 std::to_string(host) + ": " + last.message());
}

}  // namespace gemini
