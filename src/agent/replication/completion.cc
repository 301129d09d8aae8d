#include "agent/replication/completion.h"

#include <algorithm>

#include "agent/cluster/coord_records.h"
#include "agent/replication/peer_service.h"
#include "common/log.h"

namespace gemini {
namespace {

using std::chrono::milliseconds;
constexpr milliseconds kCall{2000};
constexpr size_t kEpochsKept = 4;  // reports of newer epochs than the root has entered yet

}  // namespace

CompletionTracker::CompletionTracker(JobCoordinator* coord, uint32_t num_hosts,
                                     Advanced on_advanced)
    : coord_(coord), num_hosts_(num_hosts), on_advanced_(std::move(on_advanced)) {}

CompletionTracker::~CompletionTracker() { Stop(); }

void CompletionTracker::Start() {
  thread_ = std::thread([this] { Run(); });
}

void CompletionTracker::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Status CompletionTracker::Record(const ReplicatedReport& r) {
  if (r.host >= num_hosts_)
    return InvalidArgument("completion report from host " + std::to_string(r.host) +
                           ", not a host of this job (" + std::to_string(num_hosts_) + " hosts)");
  if (r.epoch < coord_->epoch()) return Status::Ok();  // An abandoned timeline: never counts.
  std::lock_guard<std::mutex> lock(mu_);
  auto it = reported_.find(r.epoch);
  if (it == reported_.end()) {
    if (reported_.size() >= kEpochsKept) reported_.erase(reported_.begin());
    EpochReports e{std::vector<int64_t>(num_hosts_, -1), std::vector<bool>(num_hosts_, true), {}};
    if (auto m = members_.find(r.epoch); m != members_.end()) e.member = m->second;
    Recount(e);
    it = reported_.emplace(r.epoch, std::move(e)).first;
  }
  EpochReports& e = it->second;
  const int64_t old = e.newest[r.host];
  if (r.iteration <= old) return Status::Ok();
  e.newest[r.host] = r.iteration;
  if (!e.member[r.host]) return Status::Ok();  // Left the job: kept, not counted.
  const int64_t min_before = e.count.begin()->first;
  if (--e.count[old] == 0) e.count.erase(old);
  ++e.count[r.iteration];
  // Only a report that raises the slowest host can advance `complete`.
  if (e.count.begin()->first != min_before) {
    dirty_ = true;
    cv_.notify_all();
  }
  return Status::Ok();
}

void CompletionTracker::Recount(EpochReports& e) {
  e.count.clear();
  for (size_t h = 0; h < e.newest.size(); ++h)
    if (e.member[h]) ++e.count[e.newest[h]];
  if (e.count.empty()) e.count[-1] = 0;  // No member: nothing completes.
}

void CompletionTracker::SetMembers(int64_t epoch, const std::vector<uint32_t>& members) {
  std::vector<bool> mask(num_hosts_, false);
  for (uint32_t h : members)
    if (h < num_hosts_) mask[h] = true;
  std::lock_guard<std::mutex> lock(mu_);
  members_[epoch] = mask;
  while (members_.size() > kEpochsKept) members_.erase(members_.begin());
  if (auto it = reported_.find(epoch); it != reported_.end()) {
    it->second.member = mask;
    Recount(it->second);
  }
  dirty_ = true;
  cv_.notify_all();
}

void CompletionTracker::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  std::map<int64_t, int64_t> advanced;  // epoch -> the iteration `complete` was set to
  bool retry = false;                   // etcd refused an advance: try again in 100 ms
  while (!stop_) {
    // Woken by a report; also every second, in case the coordinator entered
    // the epoch of reports that came early.
    if (retry)
      cv_.wait_for(lock, milliseconds(100), [&] { return stop_; });
    else
      cv_.wait_for(lock, milliseconds(1000), [&] { return dirty_ || stop_; });
    if (stop_) break;
    const auto reported = std::chrono::steady_clock::now();
    dirty_ = retry = false;
    const int64_t epoch = coord_->epoch();
    reported_.erase(reported_.begin(), reported_.lower_bound(epoch));
    auto it = reported_.find(epoch);
    if (it == reported_.end()) continue;
    const int64_t newest = it->second.count.begin()->first;
    if (newest < 0 || (advanced.count(epoch) && advanced[epoch] >= newest)) continue;
    lock.unlock();
    Result<int64_t> done = coord_->AdvanceComplete(epoch, newest);
    if (done.ok() && *done == newest && on_advanced_) on_advanced_(epoch, newest, reported);
    lock.lock();
    if (done.ok()) {
      advanced[epoch] = *done;
      advanced.erase(advanced.begin(), advanced.lower_bound(epoch));
    } else {
      GEMINI_LOG_EVERY_N_SEC(WARN, 10) << "[completion] advancing complete to iteration " << newest
                                       << ": " << done.status().ToString() << "; retrying";
      retry = true;  // etcd away.
    }
  }
}

Status RootLink::Send(uint32_t root, const ReplicatedReport& report) {
  if (!conn_ || conn_root_ != root) {
    conn_.reset();
    GEMINI_ASSIGN_OR_RETURN(KeyValue kv,
                            kv_->Get("hosts/" + std::to_string(root), DeadlineAfter(kCall)));
    GEMINI_ASSIGN_OR_RETURN(HostInfo to, DecodeHostInfo(kv.value));
    GEMINI_ASSIGN_OR_RETURN(conn_, dial_(to));
    conn_root_ = root;
  }
  Status st = SendReplicatedReport(*conn_, report, DeadlineAfter(kCall));
  if (!st.ok() && st.code() != Code::kFailedPrecondition) conn_.reset();  // Dial again.
  return st;
}

CompletionReporter::CompletionReporter(JobCoordinator* coord, std::vector<uint32_t> ranks,
                                       Send send)
    : coord_(coord), ranks_(std::move(ranks)), send_(std::move(send)) {}

CompletionReporter::~CompletionReporter() { Stop(); }

void CompletionReporter::Start() {
  thread_ = std::thread([this] { Run(); });
}

void CompletionReporter::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void CompletionReporter::Replicated(uint32_t rank, int64_t epoch, int64_t iteration) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = newest_.try_emplace(rank, epoch, iteration).first;
  auto& cur = it->second;
  if (epoch > cur.first || (epoch == cur.first && iteration > cur.second)) cur = {epoch, iteration};
  news_ = true;
  cv_.notify_all();
}

void CompletionReporter::SetRanks(std::vector<uint32_t> ranks) {
  std::lock_guard<std::mutex> lock(mu_);
  ranks_ = std::move(ranks);
  news_ = true;
  cv_.notify_all();
}

int64_t CompletionReporter::delivered() const {
  std::lock_guard<std::mutex> lock(mu_);
  return delivered_;
}

int64_t CompletionReporter::HostIteration(int64_t epoch) const {
  int64_t newest = INT64_MAX;
  for (uint32_t rank : ranks_) {
    auto it = newest_.find(rank);
    if (it == newest_.end() || it->second.first != epoch) return -1;
    newest = std::min(newest, it->second.second);
  }
  return ranks_.empty() ? -1 : newest;
}

void CompletionReporter::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  ReplicatedReport last{coord_->self().host, -1, -1};
  int64_t last_root = -1;
  while (!stop_) {
    // Woken by a replicated shard (also one that landed while the last
    // report was on its way); every second also looks for a new root.
    cv_.wait_for(lock, milliseconds(1000), [&] { return stop_ || news_; });
    if (stop_) break;
    news_ = false;
    ReplicatedReport r{coord_->self().host, coord_->epoch(), -1};
    r.iteration = HostIteration(r.epoch);
    if (r.iteration < 0) continue;
    auto office = coord_->Watched("root");
    auto root = office.ok() ? DecodeId(office->value) : Result<uint32_t>(office.status());
    if (!root.ok()) continue;  // No root now: the next one gets the report.
    if (static_cast<int64_t>(*root) == last_root && r.epoch == last.epoch &&
        r.iteration == last.iteration)
      continue;
    lock.unlock();
    Status st = send_(*root, r);
    lock.lock();
    if (st.ok()) {
      last = r;
      last_root = *root;
      ++delivered_;
      continue;
    }
    GEMINI_LOG_EVERY_N_SEC(WARN, 10)
        << "[completion] reporting iteration " << r.iteration << " to root host " << *root << ": "
        << st.ToString() << "; retrying";
    cv_.wait_for(lock, milliseconds(100), [&] { return stop_; });
  }
}

}  // namespace gemini
