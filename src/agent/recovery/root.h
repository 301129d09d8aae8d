// RootAgent: every launch-mode agent campaigns to be the job's root (a
// create-if-absent of key "root" under its heartbeat lease); the winner
// watches the job and writes recovery plans (planner.h) into etcd. When the
// root's host dies its lease expires, the key vanishes, and another agent
// wins: since the plan and its progress live in etcd, the new root carries
// on where the old one stopped (a plan still preparing is finished; a host
// lost meanwhile is planned for).
//
// Each tick (100 ms) the root looks at hosts/, exits/ and ready/ of the current
// epoch (mirrors kept by watches: no etcd request per tick), confirms a missing host by dialing it
// (a host that answers is only re-registering, e.g. after an etcd outage; one that fails
// kProbesToLose probes in a row, on successive ticks, is lost; the probes of one tick run in
// parallel; a host this root never saw registered, other than the previous root's, gets a lease TTL
// + 1 s from the root taking office to register), decides, asks for replacements (a standby if one
// is idle, else the machine provider), and moves plans from preparing to running to done. An agent
// that is not the root looks at the office when its mirror of `root` changes (at the latest every
// second), not every tick. Every plan is written in one etcd transaction with the check that this
// agent still holds the office it won (the `root` key names its host and was created when it won):
// a root that stalled or was cut off past its lease cannot overwrite its successor's plans. One
// thread, owned; Stop() joins it (within 250 ms).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <thread>

#include "agent/cluster/job_coordinator.h"
#include "agent/cluster/layout.h"
#include "agent/cluster/plan.h"
#include "agent/recovery/planner.h"
#include "persist/layout.h"
#include "transport/connection.h"

namespace gemini {

struct RootContext {
  std::string job;
  uint32_t host = 0;
  JobConfig config;
  double lease_ttl_s = 3;
  JobCoordinator* coord = nullptr;
  // Whether a host (last seen at `info`) still answers on its peer port.
  std::function<bool(const HostInfo& info)> probe;
};

class RootAgent {
 public:
  explicit RootAgent(RootContext ctx);
  ~RootAgent();
  void Start();
  void Stop();
  bool is_root() const { return is_root_; }

 private:
  void Run();
  bool Campaign();
  // Probes `hosts` in parallel; true for each that counts as live: it
  // answered, or has not yet failed kProbesToLose probes in a row.
  std::map<uint32_t, bool> Confirm(const std::map<uint32_t, HostInfo>& hosts);
  void Tick();
  Result<Observations> Observe(const Plan& plan, const JobLayout& layout);
  // The newest complete (iteration, epoch) of `layout`'s world in the persistent tier.
  Result<IterationKey> NewestPersisted(const JobLayout& layout);
  // The newest of the current world's and its resume world's, and whose.
  struct Persisted {
    IterationKey key;
    std::vector<uint32_t> members;
  };
  std::optional<Persisted> NewestPersisted(const Plan& plan);
  // A standby, else a machine from the provider, for each host `plan`
  // replaces that `superseded` was not already replacing.
  void RequestReplacements(const Plan& plan, const Plan& superseded);
  void Advance(const Plan& plan, const JobLayout& layout, int64_t mod_revision);
  bool WritePlan(const Plan& plan, int64_t mod_revision);

  RootContext ctx_;
  std::atomic<bool> stop_{false}, is_root_{false};
  std::map<uint32_t, HostInfo> last_seen_;
  std::map<uint32_t, int> failed_probes_;  // Consecutive failed probes per host.
  std::chrono::steady_clock::time_point in_office_since_;
  int64_t last_root_ = -1;  // The host seen holding the office before this one, if any.
  // The create revision of the `root` key this agent holds (0: not known
  // yet): plans are written only while that key stands (WritePlan).
  int64_t office_revision_ = 0;
  // The newest valid plan this root read or wrote: put back when the key
  // is found holding garbage or an older epoch (a forged or corrupt write).
  std::optional<Plan> known_;
  std::thread thread_;
};

}  // namespace gemini
