// PlanRecovery: the root agent's decision, as a pure function (unit-tested
// without etcd). Given the current plan and what the root observes, it
// returns the next plan when the job must recover, else nothing.
//
//   host(s) lost, every shard still has a live holder -> "hardware": survivors
//       load locally, replacements fetch from peers, all at the newest
//       complete iteration in memory
//   host(s) lost and some shard lost all its holders (or a host failed to
//       prepare its shards) -> "group_lost": everyone loads the newest
//       complete persisted iteration (or starts from scratch without one)
//   a trainer exited, every host alive -> "software": everyone restarts and
//       loads locally at the newest complete iteration
//   host(s) lost, every shard still has a live holder, no idle standby for
//       each, and at least config.min_hosts would remain (`--nnodes MIN:MAX`)
//       -> "shrink": the lost hosts leave the job; the others reshard the
//       newest complete iteration onto the smaller world (Plan::hosts,
//       Plan::resume_hosts; agent/cluster/layout.h). So does a recovery whose
//       replacement machines never came, at its prepare deadline.
//   a shrunk job running quietly with idle standbys -> "grow": the standbys
//       take back host ids that left, and everyone reshards onto the larger
//       world (a grow whose standby never arrives shrinks back at its
//       prepare deadline).
// Every rank always resumes from the same iteration: the newest complete one
// of the current epoch, else the current plan's own resume iteration (a
// completion of an abandoned epoch that lands late does not count). While a
// plan is preparing, the hosts it is replacing are expected to be missing.
// Only the plan's members count (hosts that left in a shrink are gone).
#pragma once

#include <map>
#include <optional>
#include <set>
#include <vector>

#include "agent/cluster/layout.h"
#include "agent/cluster/plan.h"

namespace gemini {

struct Observations {
  std::set<uint32_t> live_hosts;              // Registered (or answering) hosts.
  std::map<uint32_t, double> exits;           // Rank -> when it exited, this epoch.
  std::map<uint32_t, std::string> not_ready;  // Host -> why it could not prepare.
  std::set<uint32_t> ready;                   // Hosts that prepared (this epoch).
  int64_t complete = -1;                      // Newest complete iteration in memory.
  int64_t complete_epoch = -1;                // The epoch it completed in (-1: unknown).
  int64_t persisted = -1;                     // Newest complete persisted iteration.
  std::vector<uint32_t> persisted_hosts;      // The members of the world that saved it
                                              // (empty: the current plan's).
  double now = 0;
  double lease_ttl_s = 3;
  size_t standbys = 0;  // Idle standby agents (replacements at hand).
};

std::optional<Plan> PlanRecovery(const JobConfig& config, const Plan& current,
                                 const Observations& obs);

}  // namespace gemini
