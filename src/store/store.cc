#include "store/store.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>

#include "common/log.h"

namespace gemini {

enum class SlotState { kEmpty, kWriting, kCommitted };

struct Store::Slot {
  std::unique_ptr<ShmSegment> segment;
  SlotState state = SlotState::kEmpty;
  Manifest manifest;
  std::vector<uint32_t> crcs;
  int pins = 0;  // ShardPins reading this slot; it is not reused meanwhile.
  int64_t iteration() const { return manifest.iteration; }
};

struct Store::RankSlots {
  Slot slots[2];
  int newest = -1;      // Index of the newest committed slot, or -1.
  uint64_t writer = 0;  // Connection writing the other slot, or 0.
  int64_t NewestIteration() const { return newest < 0 ? -1 : slots[newest].iteration(); }
};

struct Store::Job {
  uint32_t world_size = 0;
  std::map<uint32_t, RankSlots> ranks;
  int64_t external_complete = -1;
  bool coordinated = false;  // Complete comes from the coordinator only.
  int waiters = 0;           // Begin() calls blocked on this job; it cannot be dropped meanwhile.
  struct Cadence {
    uint32_t every_k = 1;
    std::string reason;
  };
  std::map<uint32_t, Cadence> cadence;  // As the ranks' trainers report it.
};

namespace {

std::string RandomInstance() {
  std::random_device rd;
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%08x%08x", rd(), rd());
  return buf;
}

// A grant with its own fd: a duplicate (writable, for the slot's writer) or
// the same memory opened again read-only (for readers).
Result<SlotGrant> GrantFor(const ShmSegment& seg, uint32_t index, bool writable) {
  int fd = writable
               ? fcntl(seg.fd(), F_DUPFD_CLOEXEC, 0)
               : open(("/proc/self/fd/" + std::to_string(seg.fd())).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("handing out the shared-memory fd", errno);
  return SlotGrant{index, seg.name(), seg.size(), fd, seg.data()};
}

const char* StateName(SlotState s) {
  switch (s) {
    case SlotState::kEmpty:
      return "empty";
    case SlotState::kWriting:
      return "writing";
    case SlotState::kCommitted:
      return "committed";
  }
  return "?";
}

}  // namespace

Store::Store(StoreOptions options) : options_(std::move(options)), instance_(RandomInstance()) {}
Store::~Store() = default;

uint64_t Store::UsedLocked() const {
  uint64_t used = 0;
  for (const auto& [name, job] : jobs_)
    for (const auto& [rank, rs] : job->ranks)
      for (const auto& slot : rs.slots)
        if (slot.segment) used += slot.segment->size();
  return used;
}

int64_t Store::CompleteLocked(const Job& job) const {
  if (job.coordinated || job.ranks.size() < job.world_size) return job.external_complete;
  int64_t complete = INT64_MAX;
  for (const auto& [rank, rs] : job.ranks) complete = std::min(complete, rs.NewestIteration());
  return std::max(complete, job.external_complete);
}

Result<SlotGrant> Store::Begin(uint64_t writer, const Manifest& m, std::chrono::milliseconds wait) {
  GEMINI_RETURN_IF_ERROR(m.Validate());
  std::unique_ptr<ShmSegment> replaced;  // Freed after the lock is released.
  std::unique_lock<std::mutex> lock(mu_);
  auto& job_ptr = jobs_[m.job];
  if (!job_ptr) {
    job_ptr = std::make_unique<Job>();
    job_ptr->coordinated = IsCoordinated(m.job);
  }
  Job& job = *job_ptr;
  if (job.world_size != m.world_size) {
    if (!job.ranks.empty() && CompleteLocked(job) >= 0)
      return FailedPrecondition("job '" + m.job + "' holds checkpoints of world size " +
                                std::to_string(job.world_size) + ", not " +
                                std::to_string(m.world_size) + " (drop the job first)");
    job.world_size = m.world_size;
  }
  RankSlots& rs = job.ranks[m.rank];
  if (rs.writer != 0 && rs.writer != writer)
    return Aborted("rank " + std::to_string(m.rank) + " of job '" + m.job +
                   "' is being written by another connection");
  // An abandoned timeline: committed iterations at or after the new one. They
  // stop counting and are overwritten first, but only once the new shard has
  // its memory: a Begin that fails leaves everything committed as it was.
  auto stale = [&](int i) {
    const Slot& s = rs.slots[i];
    return s.state == SlotState::kCommitted && s.iteration() >= m.iteration;
  };
  auto live_newest = [&]() -> int {
    for (int i : {rs.newest, rs.newest < 0 ? -1 : 1 - rs.newest})
      if (i >= 0 && rs.slots[i].state == SlotState::kCommitted && !stale(i)) return i;
    return -1;
  };
  auto pick = [&] {
    int n = live_newest();
    if (n >= 0) return 1 - n;
    return rs.slots[0].pins > 0 && rs.slots[1].pins == 0 ? 1 : 0;
  };
  // Never overwrite the newest complete iteration: wait for slower ranks.
  auto deadline = std::chrono::steady_clock::now() + wait;
  struct WaiterCount {
    int& n;
    explicit WaiterCount(int& c) : n(c) { ++n; }
    ~WaiterCount() { --n; }
  } counted(job.waiters);
  auto blocked = [&] {
    int t = pick(), n = live_newest();
    const Slot& s = rs.slots[t];
    return s.pins > 0 || (s.state == SlotState::kCommitted && !stale(t) && n >= 0 &&
                          CompleteLocked(job) < rs.slots[n].iteration());
  };
  while (blocked()) {
    if (committed_cv_.wait_until(lock, deadline) == std::cv_status::timeout && blocked()) {
      int n = live_newest();
      return DeadlineExceeded("rank " + std::to_string(m.rank) + " of job '" + m.job +
                              "': iteration " +
                              std::to_string(n < 0 ? -1 : rs.slots[n].iteration()) +
                              " is not complete on every rank yet (or its other slot is being "
                              "read), and writing " +
                              std::to_string(m.iteration) + " would overwrite iteration " +
                              std::to_string(rs.slots[pick()].iteration()));
    }
    if (rs.writer != 0 && rs.writer != writer) return Aborted("another writer took the rank");
  }
  const int target = pick();
  Slot& slot = rs.slots[target];
  std::unique_ptr<ShmSegment> fresh;
  const uint64_t need = PageAlign(std::max<uint64_t>(m.data_bytes, 1));
  if (!slot.segment || slot.segment->size() < need) {
    // New memory, made without the store's lock (creating and reserving GBs
    // takes long); the rank is held for this writer meanwhile.
    uint64_t freed = slot.segment ? slot.segment->size() : 0;
    uint64_t used = UsedLocked() + pending_bytes_ - freed;
    if (need > options_.budget_bytes || used > options_.budget_bytes - need)
      return ResourceExhausted("shard of " + std::to_string(m.data_bytes) +
                               " bytes does not fit the memory budget: " + std::to_string(used) +
                               " of " + std::to_string(options_.budget_bytes) +
                               " bytes in use (raise --budget)");
    std::string name =
        options_.shm_prefix + "-" + instance_ + "-" + std::to_string(next_segment_++);
    pending_bytes_ += need;
    rs.writer = writer;
    lock.unlock();
    auto created = options_.create_segment ? options_.create_segment(name, need)
                                           : ShmSegment::Create(name, need);
    lock.lock();
    pending_bytes_ -= need;
    auto give_up = [&](Status st) {
      if (rs.writer == writer) rs.writer = 0;
      committed_cv_.notify_all();
      return st;
    };
    if (!created.ok()) return give_up(created.status());
    if (rs.writer != writer) return Aborted("the writer went away while its memory was made");
    fresh = std::move(*created);
    while (slot.pins > 0)  // A reader pinned the slot meanwhile.
      if (committed_cv_.wait_until(lock, deadline) == std::cv_status::timeout && slot.pins > 0)
        return give_up(
            DeadlineExceeded("slot of rank " + std::to_string(m.rank) + " still being read"));
  }
  const ShmSegment& segment = fresh ? *fresh : *slot.segment;
  if (segment.size() < m.data_bytes) return Internal("slot smaller than its shard");
  auto grant = GrantFor(segment, static_cast<uint32_t>(target), /*writable=*/true);
  if (!grant.ok()) {
    if (rs.writer == writer) rs.writer = 0;
    return grant.status();
  }
  // From here on nothing fails: drop the abandoned timeline, take the slot.
  const int newest = live_newest();
  for (int i = 0; i < 2; ++i)
    if (stale(i)) rs.slots[i].state = SlotState::kEmpty;
  rs.newest = newest;
  if (fresh) {
    replaced = std::move(slot.segment);
    slot.segment = std::move(fresh);
  }
  slot.state = SlotState::kWriting;
  slot.manifest = m;
  slot.crcs.clear();
  rs.writer = writer;
  return grant;
}

Status Store::Commit(uint64_t writer, const std::string& job_name, uint32_t rank, int64_t iteration,
                     std::vector<uint32_t> crcs) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(job_name);
  if (it == jobs_.end()) return NotFound("no job '" + job_name + "'");
  auto rit = it->second->ranks.find(rank);
  if (rit == it->second->ranks.end() || rit->second.writer != writer)
    return FailedPrecondition("commit without a matching begin (rank " + std::to_string(rank) +
                              ")");
  RankSlots& rs = rit->second;
  int target = rs.newest < 0 ? 0 : 1 - rs.newest;
  Slot& slot = rs.slots[target];
  if (slot.state != SlotState::kWriting || slot.iteration() != iteration)
    return FailedPrecondition("commit of iteration " + std::to_string(iteration) +
                              " but the slot in progress holds another");
  if (crcs.size() != slot.manifest.NumChunks())
    return InvalidArgument("commit carries " + std::to_string(crcs.size()) + " CRCs for " +
                           std::to_string(slot.manifest.NumChunks()) + " chunks");
  slot.crcs = std::move(crcs);
  slot.state = SlotState::kCommitted;
  rs.newest = target;  // The flip.
  rs.writer = 0;
  committed_cv_.notify_all();
  return Status::Ok();
}

void Store::AbortWriter(uint64_t writer) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [name, job] : jobs_)
    for (auto& [rank, rs] : job->ranks) {
      if (rs.writer != writer) continue;
      Slot& slot = rs.slots[rs.newest < 0 ? 0 : 1 - rs.newest];
      if (slot.state == SlotState::kWriting) slot.state = SlotState::kEmpty;
      rs.writer = 0;
      GEMINI_LOG(INFO) << "[store] job " << name << " rank " << rank
                       << ": writer went away, in-progress slot dropped";
    }
  committed_cv_.notify_all();
}

Result<Store::Found> Store::FindCommittedLocked(const std::string& job_name, uint32_t rank,
                                                int64_t iteration) {
  auto it = jobs_.find(job_name);
  if (it == jobs_.end()) return NotFound("the agent holds no job '" + job_name + "'");
  auto rit = it->second->ranks.find(rank);
  if (rit == it->second->ranks.end())
    return NotFound("job '" + job_name + "' has no rank " + std::to_string(rank));
  RankSlots& rs = rit->second;
  if (iteration < 0) iteration = rs.NewestIteration();
  for (uint32_t i = 0; i < 2; ++i) {
    Slot& s = rs.slots[i];
    if (s.state == SlotState::kCommitted && s.iteration() == iteration)
      return Found{it->second.get(), &s, i};
  }
  return NotFound("job '" + job_name + "' rank " + std::to_string(rank) +
                  " holds no committed iteration " + std::to_string(iteration));
}

Result<CommittedShard> Store::Open(const std::string& job, uint32_t rank, int64_t iteration) {
  std::lock_guard<std::mutex> lock(mu_);
  GEMINI_ASSIGN_OR_RETURN(Found f, FindCommittedLocked(job, rank, iteration));
  GEMINI_ASSIGN_OR_RETURN(SlotGrant grant, GrantFor(*f.slot->segment, f.index, /*writable=*/false));
  return CommittedShard{f.slot->manifest, f.slot->crcs, grant};
}

Result<std::unique_ptr<ShardPin>> Store::Pin(const std::string& job, uint32_t rank,
                                             int64_t iteration) {
  std::lock_guard<std::mutex> lock(mu_);
  GEMINI_ASSIGN_OR_RETURN(Found f, FindCommittedLocked(job, rank, iteration));
  ++f.slot->pins;
  ++f.job->waiters;  // Keeps the job (and so the slot) alive while pinned.
  return std::make_unique<ShardPin>(f.slot->manifest, f.slot->crcs, f.slot->segment->data(),
                                    [this, f] {
                                      std::lock_guard<std::mutex> l(mu_);
                                      --f.slot->pins;
                                      --f.job->waiters;
                                      committed_cv_.notify_all();
                                    });
}

int64_t Store::CompleteIteration(const std::string& job) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(job);
  return it == jobs_.end() ? -1 : CompleteLocked(*it->second);
}

void Store::SetExternalComplete(const std::string& job, int64_t iteration) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& j = jobs_[job];
  if (!j) {
    j = std::make_unique<Job>();
    j->coordinated = IsCoordinated(job);
  }
  j->external_complete = std::max(j->external_complete, iteration);
  committed_cv_.notify_all();
}

void Store::ResetComplete(const std::string& job, int64_t iteration) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& j = jobs_[job];
  if (!j) {
    j = std::make_unique<Job>();
    j->coordinated = IsCoordinated(job);
  }
  j->external_complete = iteration;
  committed_cv_.notify_all();
}

void Store::ResetGenerations(const std::string& base, const std::string& keep, int64_t iteration) {
  ResetComplete(keep, iteration);
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [name, j] : jobs_)
    if (name != keep && IsGenerationOf(base, name)) j->external_complete = -1;
  committed_cv_.notify_all();
}

Status Store::DropJob(const std::string& job) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(job);
  if (it == jobs_.end()) return NotFound("no job '" + job + "'");
  bool busy = it->second->waiters > 0;
  for (auto& [rank, rs] : it->second->ranks) busy = busy || rs.writer != 0;
  if (busy) return FailedPrecondition("job '" + job + "' is being written");
  jobs_.erase(it);
  return Status::Ok();
}

Status Store::SetCadence(const std::string& job, uint32_t rank, uint32_t every_k,
                         std::string reason) {
  if (every_k < 1 || every_k > kMaxEveryK)
    return InvalidArgument("every_k " + std::to_string(every_k) + " is outside [1, " +
                           std::to_string(kMaxEveryK) + "]");
  if (reason.size() > kMaxCadenceReason) return InvalidArgument("cadence reason too long");
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(job);
  if (it == jobs_.end()) return NotFound("no job '" + job + "'");
  if (rank >= it->second->world_size)
    return InvalidArgument("rank " + std::to_string(rank) + " outside the job's world of " +
                           std::to_string(it->second->world_size));
  it->second->cadence[rank] = {every_k, std::move(reason)};
  return Status::Ok();
}

std::string Store::StatusJson(const std::string& only_job) {
  std::lock_guard<std::mutex> lock(mu_);
  nlohmann::json out;
  out["budget_bytes"] = options_.budget_bytes;
  out["used_bytes"] = UsedLocked() + pending_bytes_;
  out["jobs"] = nlohmann::json::array();
  for (const auto& [name, job] : jobs_) {
    if (!only_job.empty() && !IsGenerationOf(only_job, name)) continue;
    nlohmann::json j{{"job", name},
                     {"world_size", job->world_size},
                     {"complete_iteration", CompleteLocked(*job)},
                     {"ranks", nlohmann::json::array()}};
    // The job checkpoints the iterations every rank does: the largest k.
    uint32_t every_k = 1;
    for (const auto& [rank, c] : job->cadence) every_k = std::max(every_k, c.every_k);
    j["every_k"] = every_k;
    for (const auto& [rank, rs] : job->ranks) {
      nlohmann::json r{{"rank", rank}, {"newest_iteration", rs.NewestIteration()}};
      if (auto c = job->cadence.find(rank); c != job->cadence.end()) {
        r["every_k"] = c->second.every_k;
        r["every_k_reason"] = c->second.reason;
      }
      r["slots"] = nlohmann::json::array();
      for (const auto& s : rs.slots) {
        nlohmann::json sj{{"state", StateName(s.state)},
                          {"bytes", s.segment ? s.segment->size() : 0}};
        if (s.state != SlotState::kEmpty) {
          sj["iteration"] = s.iteration();
          sj["data_bytes"] = s.manifest.data_bytes;
          if (s.manifest.is_fragment()) {
            sj["fragment"] = s.manifest.fragment.index;
            sj["shard_bytes"] = s.manifest.fragment.shard_bytes;
          }
          sj["tensors"] = s.manifest.entries.size();
        }
        r["slots"].push_back(sj);
      }
      j["ranks"].push_back(r);
    }
    out["jobs"].push_back(j);
  }
  // Names were validated, but never let a status call throw on bytes.
  return out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace gemini
