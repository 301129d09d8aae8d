// JobLayout: who is in the job in one epoch and where everything lives.
//
// A job starts on hosts 0..N-1. With `--nnodes MIN:MAX` a lost host that no
// machine replaces leaves the job (a "shrink" plan, planner.h): the epoch's
// members are the hosts still in it, in host-id order, and everything that
// depends on the set of machines follows from the members alone:
//   - the store job: JOB on all N hosts, else JOB.worldW (store/generations.h),
//     W = members x nproc, so the shards of each world size stay apart;
//   - ranks: member i (its group rank) runs ranks i*P .. i*P+P-1;
//   - the placement: the mixed placement over the members' positions, mapped
//     back to host ids (holders, fragment order under rs:K+F).
// The plan in etcd names the members (Plan::hosts) and those of the world its
// resume iteration was saved by (Plan::resume_hosts); agents, the root and the
// worker build their layouts from it. Immutable; shared as
// shared_ptr<const JobLayout>.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/cluster/plan.h"
#include "gemini/placement.h"

namespace gemini {

class JobLayout {
 public:
  // `members`: sorted, distinct host ids below config.num_hosts, at least one.
  static Result<std::shared_ptr<const JobLayout>> Make(const std::string& job,
                                                       const JobConfig& config,
                                                       std::vector<uint32_t> members);
  // Every host of the job (the epoch's members per the plan: Plan::hosts).
  static Result<std::shared_ptr<const JobLayout>> ForPlan(const std::string& job,
                                                          const JobConfig& config,
                                                          const Plan& plan);
  // The members of the world the plan's resume iteration was saved by.
  static Result<std::shared_ptr<const JobLayout>> ResumeForPlan(const std::string& job,
                                                                const JobConfig& config,
                                                                const Plan& plan);

  const std::string& store_job() const { return store_job_; }
  const std::vector<uint32_t>& members() const { return members_; }
  uint32_t nproc() const { return nproc_; }
  uint32_t world() const { return static_cast<uint32_t>(members_.size()) * nproc_; }
  bool full() const { return full_; }  // Every host of the job is a member.
  bool Has(uint32_t host) const { return Position(host).has_value(); }
  // The host's group rank (its index among the members).
  std::optional<uint32_t> Position(uint32_t host) const;
  // The ranks `host` runs (empty when not a member).
  std::vector<uint32_t> Ranks(uint32_t host) const;
  Result<uint32_t> HostOfRank(uint32_t rank) const;
  // The hosts holding `host`'s shards, `host` included, in placement order
  // (the fragment order under rs:K+F). Empty when not a member.
  std::vector<uint32_t> Holders(uint32_t host) const;
  // Whether losing `lost` (host ids) leaves some shard with no live holder.
  bool LosesAShard(const std::vector<uint32_t>& lost) const;
  const Redundancy& redundancy() const { return redundancy_; }

 private:
  std::string store_job_;
  std::vector<uint32_t> members_;
  uint32_t nproc_ = 1;
  bool full_ = true;
  Redundancy redundancy_;
  Placement placement_;  // Over member positions.
};

using LayoutPtr = std::shared_ptr<const JobLayout>;

// Plan::hosts of a plan for `config` (all hosts when the plan names none),
// checked: sorted, distinct, below num_hosts, non-empty.
Result<std::vector<uint32_t>> PlanMembers(const JobConfig& config,
                                          const std::vector<uint32_t>& hosts);

}  // namespace gemini
