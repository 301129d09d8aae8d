// Store: the agent-side in-memory checkpoint store of one machine.
//
// For every (job, owner rank) the store keeps two slots, each a shared-memory
// segment it owns. A slot is empty, being written (in progress) or committed.
// Writing iteration t goes into the slot that does not hold the newest
// committed iteration; Commit() flips which slot is newest in one step under
// the store's lock, so after a crash at any instant exactly one of t-1 or t is
// the newest committed iteration of that rank, never a mix.
//
// Keeping the newest *complete* iteration. An iteration is complete when every
// rank of the job has committed it. Ranks run asynchronously, so one rank may
// reach t+1 while another still writes t. Begin() therefore never overwrites a
// committed slot unless the job's newest complete iteration is at least the
// rank's newest committed one: it waits (up to its deadline) for the slower
// ranks instead. The complete iteration is computed here when all ranks of the
// job report to this store, or set from outside (SetExternalComplete, for
// multi-machine jobs coordinated through etcd).
//
// Begin(t) also drops committed slots of that rank holding iterations >= t:
// the job restarted from an earlier iteration and those belong to an
// abandoned timeline. It drops them only once it has succeeded: a Begin that
// fails (budget, memory, deadline) leaves every committed slot as it was.
//
// Budget: the sum of all segment sizes never exceeds budget_bytes (a
// segment being replaced by a larger one is briefly counted once). A shard
// that would exceed it is refused (ResourceExhausted) before anything
// committed changes.
//
// Segments are memfds (ShmSegment): nothing is left in /dev/shm when an agent
// dies. Writers get writable fds; readers (Open) get read-only ones.
//
// Thread-safe: every public method takes the store's lock; Begin() may block
// waiting for other ranks and creates new segments (GBs, reserved page by
// page) without holding it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"
#include "store/generations.h"
#include "store/manifest.h"
#include "store/shm_segment.h"

namespace gemini {

struct StoreOptions {
  // Upper bound on the shared memory all slots may use. Default 8 GiB.
  uint64_t budget_bytes = 8ull << 30;
  // Prefix of the shared-memory segments' names (memfd names, as shown in
  // /proc/<pid>/fd: "memfd:<prefix>-...").
  std::string shm_prefix = "gemini";
  // Makes a segment; empty: ShmSegment::Create. (Tests inject slow or failing
  // creation here.) Called without the store's lock.
  std::function<Result<std::unique_ptr<ShmSegment>>(const std::string& name, size_t size)>
      create_segment;
  // Multi-machine mode: for this job an iteration is complete only when the
  // coordinator says so (SetExternalComplete), never from the local ranks
  // alone; so for its generations (JOB.worldW, store/generations.h). Other
  // jobs stay single-machine. Empty: none.
  std::string coordinated_job;
};

// Where a trainer writes or reads a shard: a segment and its fd. The fd is
// a dup owned by the receiver of this struct.
struct SlotGrant {
  uint32_t slot_index = 0;
  std::string segment_name;
  uint64_t segment_size = 0;
  int fd = -1;
  uint8_t* data = nullptr;  // The agent's own mapping of the slot.
};

// A committed shard held still for reading inside the agent (sending a
// replica, serving a fetch): its slot is not reused until the pin is
// destroyed. Manifest and CRCs are copies.
class ShardPin {
 public:
  ShardPin(Manifest m, std::vector<uint32_t> crcs, const uint8_t* data,
           std::function<void()> release)
      : manifest(std::move(m)), crcs(std::move(crcs)), data(data), release_(std::move(release)) {}
  ~ShardPin() { release_(); }
  ShardPin(const ShardPin&) = delete;
  ShardPin& operator=(const ShardPin&) = delete;

  const Manifest manifest;
  const std::vector<uint32_t> crcs;
  const uint8_t* const data;

 private:
  std::function<void()> release_;
};

struct CommittedShard {
  Manifest manifest;
  std::vector<uint32_t> crcs;
  SlotGrant slot;
};

class Store {
 public:
  explicit Store(StoreOptions options);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Reserves the in-progress slot of manifest.rank for manifest.iteration.
  // `writer` identifies the caller (a connection); one writer per rank.
  Result<SlotGrant> Begin(uint64_t writer, const Manifest& manifest,
                          std::chrono::milliseconds wait);
  // Makes the in-progress slot the newest committed one.
  Status Commit(uint64_t writer, const std::string& job, uint32_t rank, int64_t iteration,
                std::vector<uint32_t> crcs);
  // Drops every in-progress slot held by `writer` (its connection closed).
  void AbortWriter(uint64_t writer);
  // The committed shard of (job, rank) at `iteration`; -1 means the newest.
  Result<CommittedShard> Open(const std::string& job, uint32_t rank, int64_t iteration);
  // Pins the committed shard of (job, rank) at `iteration` (-1: newest).
  Result<std::unique_ptr<ShardPin>> Pin(const std::string& job, uint32_t rank, int64_t iteration);
  // Newest complete iteration of the job, or -1 if none.
  int64_t CompleteIteration(const std::string& job);
  void SetExternalComplete(const std::string& job, int64_t iteration);
  // A recovery resumes the job at `iteration` (-1: from scratch): the complete
  // iteration becomes exactly that, even if it was newer (a new timeline).
  void ResetComplete(const std::string& job, int64_t iteration);
  // The same for every generation of `base` (store/generations.h): `keep`'s
  // complete iteration becomes `iteration`, every other generation's -1 (a
  // recovery names the one iteration everybody resumes from).
  void ResetGenerations(const std::string& base, const std::string& keep, int64_t iteration);
  // Removes a job and frees its memory.
  Status DropJob(const std::string& job);
  // What the trainer of (job, rank) reports of its checkpoint frequency: every
  // `every_k`-th iteration, and why (e.g. the overhead budget). Status shows it.
  // The job must exist (a rank reports after its first checkpoint).
  Status SetCadence(const std::string& job, uint32_t rank, uint32_t every_k, std::string reason);
  static constexpr uint32_t kMaxEveryK = 1000000;
  static constexpr size_t kMaxCadenceReason = 1024;
  // What the store holds, as JSON text (see `gemini status --json`); only
  // `only_job` and its generations if not empty (what a peer of that job may see).
  std::string StatusJson(const std::string& only_job = "");

 private:
  struct Slot;
  struct RankSlots;
  struct Job;

  // A committed slot of (job, rank) at `iteration` (-1: newest).
  struct Found {
    Job* job;
    Slot* slot;
    uint32_t index;
  };
  Result<Found> FindCommittedLocked(const std::string& job, uint32_t rank, int64_t iteration);
  int64_t CompleteLocked(const Job& job) const;
  bool IsCoordinated(const std::string& job) const {
    return !options_.coordinated_job.empty() && IsGenerationOf(options_.coordinated_job, job);
  }
  uint64_t UsedLocked() const;

  const StoreOptions options_;
  const std::string instance_;  // Random; keeps segment names unique across agent restarts.
  std::mutex mu_;
  std::condition_variable committed_cv_;
  std::map<std::string, std::unique_ptr<Job>> jobs_;
  uint64_t next_segment_ = 0;
  uint64_t pending_bytes_ = 0;  // Segments being created outside the lock.
};

}  // namespace gemini
