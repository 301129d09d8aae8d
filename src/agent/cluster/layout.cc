#include "agent/cluster/layout.h"

#include <algorithm>

#include "store/generations.h"

namespace gemini {

Result<std::vector<uint32_t>> PlanMembers(const JobConfig& config,
                                          const std::vector<uint32_t>& hosts) {
  if (hosts.empty()) {
    std::vector<uint32_t> all(config.num_hosts);
    for (uint32_t h = 0; h < config.num_hosts; ++h) all[h] = h;
    return all;
  }
  for (size_t i = 0; i < hosts.size(); ++i) {
    if (hosts[i] >= config.num_hosts)
      return InvalidArgument("member host " + std::to_string(hosts[i]) +
                             " is not below the job's " + std::to_string(config.num_hosts) +
                             " hosts");
    if (i > 0 && hosts[i] <= hosts[i - 1])
      return InvalidArgument("member hosts are not sorted and distinct");
  }
  return hosts;
}

Result<LayoutPtr> JobLayout::Make(const std::string& job, const JobConfig& config,
                                  std::vector<uint32_t> members) {
  GEMINI_ASSIGN_OR_RETURN(members, PlanMembers(config, members));
  auto l = std::make_shared<JobLayout>();
  l->members_ = std::move(members);
  l->nproc_ = config.nproc_per_host;
  l->full_ = l->members_.size() == config.num_hosts;
  l->store_job_ = l->full_ ? job : GenerationName(job, l->world());
  l->redundancy_ = config.redundancy;
  GEMINI_ASSIGN_OR_RETURN(l->placement_,
                          JobPlacement(static_cast<uint32_t>(l->members_.size()), l->redundancy_));
  return LayoutPtr(std::move(l));
}

Result<LayoutPtr> JobLayout::ForPlan(const std::string& job, const JobConfig& config,
                                     const Plan& plan) {
  return Make(job, config, plan.hosts);
}

Result<LayoutPtr> JobLayout::ResumeForPlan(const std::string& job, const JobConfig& config,
                                           const Plan& plan) {
  return Make(job, config, plan.resume_hosts.empty() ? plan.hosts : plan.resume_hosts);
}

std::optional<uint32_t> JobLayout::Position(uint32_t host) const {
  auto it = std::lower_bound(members_.begin(), members_.end(), host);
  if (it == members_.end() || *it != host) return std::nullopt;
  return static_cast<uint32_t>(it - members_.begin());
}

std::vector<uint32_t> JobLayout::Ranks(uint32_t host) const {
  std::vector<uint32_t> ranks;
  if (auto pos = Position(host))
    for (uint32_t i = 0; i < nproc_; ++i) ranks.push_back(*pos * nproc_ + i);
  return ranks;
}

Result<uint32_t> JobLayout::HostOfRank(uint32_t rank) const {
  if (rank >= world())
    return NotFound("rank " + std::to_string(rank) + " is not below world size " +
                    std::to_string(world()) + " of " + store_job_);
  return members_[rank / nproc_];
}

std::vector<uint32_t> JobLayout::Holders(uint32_t host) const {
  std::vector<uint32_t> out;
  auto pos = Position(host);
  if (!pos) return out;
  for (int p : placement_.holders[*pos]) out.push_back(members_[static_cast<size_t>(p)]);
  return out;
}

bool JobLayout::LosesAShard(const std::vector<uint32_t>& lost) const {
  std::vector<int> failed;
  for (uint32_t h : lost)
    if (auto pos = Position(h)) failed.push_back(static_cast<int>(*pos));
  auto shards = LostShards(placement_, failed);
  return !shards.ok() || !shards->empty();
}

}  // namespace gemini
