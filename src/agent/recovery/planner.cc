#include "agent/recovery/planner.h"

#include <algorithm>

namespace gemini {
namespace {

std::vector<uint32_t> LostHosts(const JobLayout& layout, const Plan& current,
                                const Observations& obs) {
  std::vector<uint32_t> lost;
  for (uint32_t h : layout.members()) {
    // While the job starts, hosts are still joining; while a recovery
    // prepares, its replacements are.
    bool expected_missing = current.state == "preparing" &&
                            (current.kind == "start" || std::count(current.failed_hosts.begin(),
                                                                   current.failed_hosts.end(), h));
    if (!obs.live_hosts.count(h) && !expected_missing) lost.push_back(h);
  }
  return lost;
}

bool Has(const std::vector<uint32_t>& v, uint32_t h) { return std::count(v.begin(), v.end(), h); }

// The members left when `leaving` leave, if the job may go on with them: at
// least config.min_hosts and a valid placement.
std::optional<std::vector<uint32_t>> ShrinkTo(const JobConfig& config, const JobLayout& layout,
                                              const std::vector<uint32_t>& leaving) {
  std::vector<uint32_t> left;
  for (uint32_t h : layout.members())
    if (!Has(leaving, h)) left.push_back(h);
  if (left.empty() || left.size() < config.fewest_hosts() || left.size() == layout.members().size())
    return std::nullopt;
  if (!JobLayout::Make("", config, left).ok()) return std::nullopt;
  return left;
}

std::string Join(const std::vector<uint32_t>& ids) {
  std::string out;
  for (uint32_t h : ids) out += (out.empty() ? "" : ", ") + std::to_string(h);
  return out;
}

}  // namespace

std::optional<Plan> PlanRecovery(const JobConfig& config, const Plan& current,
                                 const Observations& observed) {
  if (current.state == "done" || current.state == "failed") return std::nullopt;
  auto layout = JobLayout::ForPlan("", config, current);
  if (!layout.ok()) return std::nullopt;  // The root checks plans before planning.
  const JobLayout& members = **layout;
  Observations obs = observed;
  // Where the next epoch resumes from, unless memory lost a shard: the newest
  // iteration complete in this epoch (saved by its members), else where this
  // epoch itself resumed (a completion of an abandoned epoch that lands late
  // does not count). An epoch that resumed from the persistent tier and
  // completed nothing since has only those files (and whatever of them
  // each host loaded): the next one loads them again.
  const bool this_epoch = obs.complete_epoch < 0 || obs.complete_epoch >= current.epoch;
  const bool carry_files = !this_epoch && current.source == "persistent";
  auto resume_layout = JobLayout::ResumeForPlan("", config, current);
  if (!resume_layout.ok()) return std::nullopt;
  // Whether memory lost a shard of the iteration the next epoch would resume
  // from, `empty` (members holding nothing) counted lost. That iteration was
  // saved by this epoch's members, or else by the resume world, whose holders
  // are looked at (a host that left, or holds nothing now, holds none of it).
  const auto memory_lost = [&](const std::vector<uint32_t>& empty) {
    if (this_epoch) return members.LosesAShard(empty);
    std::vector<uint32_t> gone;
    for (uint32_t h : (*resume_layout)->members())
      if (!obs.live_hosts.count(h) || Has(empty, h)) gone.push_back(h);
    return (*resume_layout)->LosesAShard(gone);
  };
  std::optional<std::vector<uint32_t>> shrink;  // The members a shrink plan keeps.
  std::vector<uint32_t> grow;                   // The hosts a grow plan adds.
  std::vector<uint32_t> lost;
  bool persistent = carry_files;  // Resume from the persistent tier.
  Plan next;
  // A plan preparing past its deadline: never wait silently forever.
  if (current.state == "preparing" && current.kind != "start" && config.prepare_timeout_s > 0 &&
      current.detected_at > 0 && obs.now - current.detected_at > config.prepare_timeout_s) {
    std::vector<uint32_t> missing;
    for (uint32_t h : members.members()) {
      if (obs.ready.count(h) || obs.not_ready.count(h)) continue;
      if (!obs.live_hosts.count(h))
        missing.push_back(h);
      else
        obs.not_ready[h] = "did not report ready within " +
                           std::to_string(static_cast<int64_t>(config.prepare_timeout_s)) + " s";
    }
    const std::string waited = std::to_string(static_cast<int64_t>(config.prepare_timeout_s));
    if (!missing.empty() && obs.not_ready.empty() && (carry_files || !memory_lost(missing)))
      shrink = ShrinkTo(config, members, missing);
    if (shrink) {
      lost = missing;
      next.reason = "no machine took the place of host(s) " + Join(missing) + " within " + waited +
                    " s: going on without them";
    } else if (!missing.empty()) {
      Plan failed = current;
      failed.epoch = current.epoch + 1;
      failed.state = "failed";
      failed.detected_at = obs.now;
      failed.reason = "no machine took the place of host(s) " + Join(missing) + " within " +
                      waited + " s (no idle standby, and the machine provider did not deliver one)";
      return failed;
    }
  }
  if (!shrink) lost = LostHosts(members, current, obs);
  if (shrink) {
    next.kind = "shrink";
    next.failed_at = current.failed_at;
  } else if (!lost.empty()) {
    // Hosts still being replaced hold nothing yet: their memory counts as
    // lost too. A shrink drops those whose machine has not come (a live
    // replacement stays a member).
    std::vector<uint32_t> empty = lost, leaving = lost;
    if (current.state == "preparing")
      for (uint32_t h : current.failed_hosts)
        if (members.Has(h) && !Has(empty, h)) {
          empty.push_back(h);
          if (!obs.live_hosts.count(h)) leaving.push_back(h);
        }
    std::sort(empty.begin(), empty.end());
    std::sort(leaving.begin(), leaving.end());
    bool group_lost = memory_lost(empty) || !obs.not_ready.empty();
    // No machine for every newly lost host: go on without them if allowed
    // (from the persistent tier when memory lost a shard).
    if (obs.standbys < lost.size() && obs.not_ready.empty())
      shrink = ShrinkTo(config, members, leaving);
    persistent = persistent || group_lost;
    next.kind = shrink ? "shrink" : group_lost ? "group_lost" : "hardware";
    next.failed_at = obs.now - obs.lease_ttl_s;
    next.reason = std::to_string(lost.size()) + " host(s) lost";
    if (shrink) {
      next.reason +=
          " and no machine to replace " + std::string(leaving.size() > 1 ? "them" : "it") +
          ": going on with " + std::to_string(shrink->size()) + " hosts (--nnodes " +
          std::to_string(config.fewest_hosts()) + ":" + std::to_string(config.num_hosts) + ")";
      lost = leaving;
    }
  } else if (!obs.not_ready.empty()) {
    next.kind = "group_lost";
    persistent = true;
    next.failed_at = obs.now;
    next.reason = "host " + std::to_string(obs.not_ready.begin()->first) +
                  " could not prepare its shards: " + obs.not_ready.begin()->second;
  } else if (!obs.exits.empty() && current.state == "running") {
    next.kind = "software";
    next.failed_at = obs.now;
    for (const auto& [rank, at] : obs.exits) next.failed_at = std::min(next.failed_at, at);
    next.reason = "trainer rank " + std::to_string(obs.exits.begin()->first) + " exited";
  } else if (current.state == "running" && obs.standbys > 0 &&
             members.members().size() < config.num_hosts) {
    // A job that shrank, all quiet, and idle standbys at hand: take back
    // host ids that left (the standbys are assigned to them). Never one an
    // agent still serves (a replacement that came after its host left).
    for (uint32_t h = 0; h < config.num_hosts && grow.size() < obs.standbys; ++h)
      if (!members.Has(h) && !obs.live_hosts.count(h)) grow.push_back(h);
    if (grow.empty()) return std::nullopt;
    next.kind = "grow";
    next.failed_at = obs.now;
    next.reason = std::to_string(grow.size()) + " idle standby(s): growing back to " +
                  std::to_string(members.members().size() + grow.size()) + " of " +
                  std::to_string(config.num_hosts) + " hosts";
    lost = grow;  // Hosts the standbys take over, as replacements do.
  } else {
    return std::nullopt;
  }
  // Hosts still being replaced by the current plan stay replacements.
  next.failed_hosts = lost;
  if (current.state == "preparing" && !shrink)
    for (uint32_t h : current.failed_hosts)
      if (!Has(lost, h)) next.failed_hosts.push_back(h);
  std::sort(next.failed_hosts.begin(), next.failed_hosts.end());
  next.hosts = shrink ? *shrink : members.members();
  if (!grow.empty()) {
    next.hosts.insert(next.hosts.end(), grow.begin(), grow.end());
    std::sort(next.hosts.begin(), next.hosts.end());
  }
  const std::vector<uint32_t>& current_resume = (*resume_layout)->members();
  if (carry_files) {  // The same files again.
    next.resume_iteration = current.resume_iteration;
    next.resume_hosts = current_resume;
    next.persisted_epoch = current.persisted_epoch;
  } else if (persistent) {  // The newest complete persisted iteration (root.h: of which world).
    next.resume_iteration = obs.persisted;
    next.resume_hosts = obs.persisted_hosts.empty() ? members.members() : obs.persisted_hosts;
  } else if (this_epoch) {
    next.resume_iteration = obs.complete;
    next.resume_hosts = members.members();
  } else {
    next.resume_iteration = current.resume_iteration;
    next.resume_hosts = current_resume;
  }
  next.source = next.resume_iteration < 0 ? "fresh" : persistent ? "persistent" : "local";
  next.epoch = current.epoch + 1;
  // Restarts: recoveries, not the growing back of a job that shrank.
  next.restarts = current.restarts + (next.kind == "grow" ? 0 : 1);
  next.state = "preparing";
  if (config.max_restarts >= 0 && next.restarts > config.max_restarts) {
    next.state = "failed";  // Every host stops its trainers; nothing restarts.
    next.reason +=
        "; giving up: " + std::to_string(config.max_restarts) + " restart(s) used (--max-restarts)";
  }
  next.detected_at = obs.now;
  next.master_port = static_cast<uint16_t>(29500 + next.epoch % 500);
  return next;
}

}  // namespace gemini
