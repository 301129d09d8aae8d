// Worker: the launch-mode part of an agent. It follows the job's plan in
// etcd and runs this host's trainer processes.
//
// On a new plan epoch it kills its trainers (all ranks restart together),
// moves the store and the coordinator to the new timeline, prepares its
// ranks' shards at the plan's resume iteration (already in local memory;
// fetched from a peer holder by a replacement host, 3 tries per shard; read
// from the persistent tier after a group loss) and reports ready/<epoch>/<host>. When the epoch's
// members differ from the world that saved the resume iteration (a shrink,
// agent/cluster/layout.h), it prepares every rank's shard of that world instead, so
// that each trainer can reshard from local memory (gemini.reshard). Once the root
// marks the plan running it starts the trainers (RANK, WORLD_SIZE,
// LOCAL_RANK, MASTER_ADDR, MASTER_PORT and the rest of torchrun's contract:
// LOCAL_WORLD_SIZE, GROUP_RANK, GROUP_WORLD_SIZE, ROLE_RANK, ROLE_WORLD_SIZE,
// ROLE_NAME, TORCHELASTIC_RUN_ID, TORCHELASTIC_RESTART_COUNT,
// TORCHELASTIC_MAX_RESTARTS; and
// GEMINI_SOCKET, GEMINI_JOB, GEMINI_STORE_JOB set), stops them with SIGTERM (SIGKILL after 3 s),
// and reports every unclean exit at once (exits/<epoch>/<rank>) and a clean finish
// (done/<epoch>/<host>). Also keeps the heartbeat registered. Fencing: an agent that followed an
// epoch and then sees a newer plan newly naming its own host as failed (it stalled or was cut off
// past its lease, and a replacement took its host id) stops its trainers, its heartbeat and its
// registration, and does nothing more; fenced() tells the agent's owner,
// which exits (`gemini agent` with status 3). A replacement, whose first
// epoch already names its host, is not fenced by later plans that still do.
// One thread, owned; Stop() kills the trainers and joins it.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "agent/cluster/job_coordinator.h"
#include "agent/cluster/layout.h"
#include "agent/cluster/plan.h"
#include "agent/metrics.h"
#include "common/subprocess.h"
#include "persist/layout.h"
#include "store/store.h"

namespace gemini {

struct WorkerContext {
  std::string job;
  uint32_t host = 0;
  std::string socket;  // The agent's Unix socket, for its trainers.
  std::string log_dir;
  JobConfig config;
  Store* store = nullptr;
  JobCoordinator* coord = nullptr;
  // Fetches a rank's shard of a store job at an iteration from its holders
  // into the store.
  std::function<Result<int64_t>(const std::string& store_job, uint32_t rank, int64_t iteration)>
      fetch;
  Metrics* metrics = nullptr;
  // Called on entering an epoch, before anything else moves to it: the
  // epoch's members and the world its resume iteration was saved by.
  std::function<void(int64_t epoch, LayoutPtr current, LayoutPtr resume)> on_layout;
};

class Worker {
 public:
  explicit Worker(WorkerContext ctx);
  ~Worker();
  void Start();
  void Stop();
  // A trainer of this host committed `iteration` (marks the resume).
  void OnCommit(uint32_t rank, int64_t iteration);
  // Declared lost while running: stood down (see Fence).
  bool fenced() const { return fenced_; }

 private:
  void Run();
  void Step();
  void EnterEpoch(const Plan& plan, LayoutPtr members, LayoutPtr resume);
  // This host was declared lost while this agent ran: stop everything.
  void Fence(const Plan& plan);
  Status Prepare(const Plan& plan);
  Status LoadPersisted(const JobLayout& world, uint32_t rank, const IterationKey& key);
  Status StartTrainers(const Plan& plan);
  void WatchTrainers();
  void KillTrainers();
  // A record that directs recovery (ready/, done/, exits/): written only
  // while this agent's registration stands (JobCoordinator::PutOwn).
  bool PutOwn(const std::string& key, const std::string& value);
  std::vector<uint32_t> Ranks() const;

  WorkerContext ctx_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  Plan plan_;             // The epoch this host follows.
  LayoutPtr layout_;      // Its members (agent/cluster/layout.h); null before the first epoch.
  LayoutPtr resume_;      // The world that saved its resume iteration.
  bool resumed_ = true;   // Reported the first commit of this epoch.
  bool started_ = false;  // Trainers started for this epoch.
  bool entered_ = false;  // Followed some epoch (a fresh replacement has not).
  std::atomic<bool> fenced_{false};
  bool reported_done_ = false;
  std::map<uint32_t, std::unique_ptr<Subprocess>> trainers_;  // By rank.
  std::set<uint32_t> finished_, reported_;
  uint64_t next_writer_ = uint64_t{5} << 60;
};

}  // namespace gemini
