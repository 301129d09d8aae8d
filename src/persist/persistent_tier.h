// PersistentTier: the agent's background writer to persistent storage.
//
// The in-memory tier holds every iteration; this tier writes a few of them
// (every P iterations and/or every S seconds) as shard files under a root
// directory on a local disk or a network mount (layout.h), as the last resort
// when a whole placement group is lost.
//
// Offer() hands the tier one rank's shard: the epoch (timeline) it belongs
// to, its manifest, chunk CRCs and a pointer to its bytes, with a release
// callback; OfferPinned() takes a store ShardPin instead and releases it when
// done. The bytes are written straight from that memory (shard_file.h), never
// copied: a pinned slot stays pinned (the store does not reuse it) until its
// write ends, is replaced by a newer offer, or is abandoned. It never blocks
// on the disk:
// it takes a short lock, applies the policy and queues the offer. The tier
// keeps at most one pending offer per (job, rank): a newer offer replaces an
// older one that has not started yet (counted in Stats().dropped). One worker
// thread, owned by the tier, writes pending offers one at a time, lowest
// iteration first, each atomically and checked against its CRCs
// (shard_file.h), into the directory of its (iteration, epoch) (layout.h).
// After each write it tries MarkComplete for that (iteration, epoch) (which
// succeeds once all world_size ranks' files of that epoch are there, e.g. on
// a shared mount) and, when it is complete, applies retention keeping the
// last K complete ones (catalog.h), never deleting one this tier still has
// pending.
//
// Release contract: `release` is called exactly once per Offer, on whatever
// thread finishes with the data, never under the tier's lock: on the caller's
// thread before Offer returns when the offer is declined by the policy or
// rejected (bad arguments, stopped); on a later Offer's thread when that one
// replaces it; on the worker when its write ends (well or not); on the thread
// calling Stop() when Stop() abandons it. Until then the data must stay valid
// and unchanged (a changed chunk fails its CRC check and is not persisted).
//
// Policy: an offered iteration is persisted if it is a multiple of P, or if
// S seconds have passed since this tier last chose an iteration of that job
// (the timer starts at the job's first offer), or if PersistIteration() asked
// for it. The choice is made once per iteration, so all the ranks this tier
// holds persist the same iterations. P is the same on every machine, so it
// makes iterations complete across machines; S is measured per machine and
// may pick different iterations on different machines, so a multi-machine
// job that relies on S alone needs a coordinator to call PersistIteration()
// with one iteration everywhere.
//
// Stop() ABANDONS pending work: offers not started are released unwritten,
// the write in flight is cancelled at its next piece boundary (its temp file
// removed, nothing renamed), and the worker is joined. To drain first, call
// Flush(timeout) and then Stop(). The destructor calls Stop(). Neither may be
// called from a release callback (the worker would wait for itself); Offer()
// may.
//
// Thread-safe: every public method may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/status.h"
#include "persist/env.h"
#include "persist/layout.h"
#include "store/manifest.h"
#include "store/store.h"

namespace gemini {

struct PersistOptions {
  using Clock = std::chrono::steady_clock;

  // Directory the tier writes under; created if missing. Required.
  std::string root;
  // P: persist iterations that are multiples of P. 0 disables. Default 100.
  int64_t every_iterations = 100;
  // S: persist the next offered iteration once S seconds have passed since
  // the last chosen one. 0 disables. Default 600.
  double every_seconds = 600;
  // K: complete iterations kept per job by retention (>= 1). Default 3.
  int keep_complete = 3;
  // Bytes per Append when writing (whole chunks). Default 8 MiB.
  uint64_t piece_bytes = 8u << 20;
  // Time source for S; default (empty) is Clock::now. Tests inject a fake.
  std::function<Clock::time_point()> clock;
};

struct PersistStats {
  uint64_t offered = 0;        // Offer() calls.
  uint64_t skipped = 0;        // Declined by the policy.
  uint64_t rejected = 0;       // Bad arguments or offered after Stop().
  uint64_t dropped = 0;        // Replaced by a newer offer of the same rank before being written.
  uint64_t abandoned = 0;      // Pending or cancelled in flight at Stop().
  uint64_t written = 0;        // Shard files written.
  uint64_t failed = 0;         // Writes that failed.
  uint64_t bytes_written = 0;  // Data bytes of the shard files written.
  uint64_t completed = 0;      // MarkComplete calls that found the iteration complete.
  uint64_t removed = 0;        // Iterations deleted by retention.
  int64_t last_written_iteration = -1;
  Status last_error;  // The latest write, complete or retention error (OK if none).
};

enum class OfferOutcome {
  kSkipped,   // The policy declined it; already released.
  kQueued,    // Pending; no older offer of this rank was waiting.
  kReplaced,  // Pending; it replaced (and released) an older pending offer.
};

class PersistentTier {
 public:
  // Validates the options, creates the root directory, starts the worker.
  static Result<std::unique_ptr<PersistentTier>> Open(PersistEnv* env, PersistOptions options);
  ~PersistentTier();
  PersistentTier(const PersistentTier&) = delete;
  PersistentTier& operator=(const PersistentTier&) = delete;

  // See the release contract above. `manifest` must describe (job, rank,
  // iteration) and `crcs` hold its NumChunks() entries; `epoch` (>= 0) is the
  // timeline the caller committed it in (agent: JobCoordinator::epoch()).
  Result<OfferOutcome> Offer(const std::string& job, uint32_t rank, int64_t iteration,
                             int64_t epoch, Manifest manifest, std::vector<uint32_t> crcs,
                             const uint8_t* data, std::function<void()> release);
  // Offer() of a pinned store slot: the pin's manifest, CRCs and bytes; the
  // pin is the release (destroyed when the tier is done with it).
  Result<OfferOutcome> OfferPinned(const std::string& job, uint32_t rank, int64_t iteration,
                                   int64_t epoch, std::unique_ptr<ShardPin> pin);
  // Makes the policy accept `iteration` of `job` when it is offered.
  void PersistIteration(const std::string& job, int64_t iteration);

  // Waits until nothing is pending or being written; DeadlineExceeded after
  // `timeout`. Write errors are reported in Stats(), not here.
  Status Flush(std::chrono::milliseconds timeout);
  // Abandons pending work and joins the worker (see above). Idempotent.
  void Stop();
  PersistStats Stats() const;

  // catalog.h under this tier's root.
  Status MarkComplete(const std::string& job, const IterationKey& key, uint32_t world_size);
  Result<IterationKey> NewestComplete(const std::string& job);
  Result<std::vector<IterationKey>> ApplyRetention(const std::string& job);
  const PersistOptions& options() const { return options_; }

 private:
  struct Pending {
    int64_t epoch = 0;
    Manifest manifest;
    std::vector<uint32_t> crcs;
    const uint8_t* data = nullptr;
    std::function<void()> release;
  };
  struct JobPolicy {
    PersistOptions::Clock::time_point last_choice;
    int64_t chosen = -1;
    std::set<int64_t> forced;
  };
  using Key = std::pair<std::string, uint32_t>;  // (job, rank)

  PersistentTier(PersistEnv* env, PersistOptions options);
  bool AcceptLocked(const std::string& job, int64_t iteration);
  Result<OfferOutcome> EnqueueLocked(Pending offer, std::function<void()>* superseded);
  void Run();
  Pending TakeNextLocked();
  void WriteOne(Pending& offer);
  void CompleteAndRetain(const IterationKey& key, const Manifest& m);
  // Keys of `job` pending or being written: retention leaves them.
  std::set<IterationKey> BusyIterations(const std::string& job);
  void RecordError(const Status& st);

  PersistEnv* const env_;
  const PersistOptions options_;
  std::atomic<bool> cancel_{false};  // Set by Stop(); checked by the write in flight.
  std::mutex stop_mu_;               // Serializes Stop() (join once).

  mutable std::mutex mu_;
  std::condition_variable cv_;
  // Guarded by mu_:
  std::map<Key, Pending> pending_;
  std::map<std::string, JobPolicy> policy_;
  std::optional<std::pair<std::string, IterationKey>> writing_;  // (job, key) in flight.
  bool stopping_ = false;
  PersistStats stats_;

  std::thread worker_;
};

}  // namespace gemini
