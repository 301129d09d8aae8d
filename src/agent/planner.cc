#include "agent/planner.h"

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

// The members left when `gone` leave, if the job may go on with them: at
// least config.min_hosts, a valid placement, and every shard still held.
std::optional<std::vector<uint32_t>> ShrinkTo(const JobConfig& config, const JobLayout& layout,
                                              const std::vector<uint32_t>& gone) {
  std::vector<uint32_t> left;
  for (uint32_t h : layout.members())
    if (!std::count(gone.begin(), gone.end(), h)) left.push_back(h);
  if (left.empty() || left.size() < config.fewest_hosts() || left.size() == layout.members().size())
    return std::nullopt;
  if (layout.LosesAShard(gone) || !JobLayout::Make("", config, left).ok()) return std::nullopt;
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
  std::optional<std::vector<uint32_t>> shrink;  // The members a shrink plan keeps.
  std::vector<uint32_t> grow;                   // The hosts a grow plan adds.
  std::vector<uint32_t> lost;
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
    if (!missing.empty() && obs.not_ready.empty()) shrink = ShrinkTo(config, members, missing);
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
    // Hosts still being replaced hold nothing yet: their memory counts as lost too.
    std::vector<uint32_t> gone = lost;
    size_t need = lost.size();  // Replacements this plan would ask for.
    if (current.state == "preparing")
      for (uint32_t h : current.failed_hosts)
        if (members.Has(h) && !std::count(gone.begin(), gone.end(), h)) {
          gone.push_back(h);
          --need;
        }
    std::sort(gone.begin(), gone.end());
    bool group_lost = members.LosesAShard(gone) || !obs.not_ready.empty();
    if (!group_lost && obs.standbys < need) shrink = ShrinkTo(config, members, gone);
    next.kind = group_lost ? "group_lost" : shrink ? "shrink" : "hardware";
    next.failed_at = obs.now - obs.lease_ttl_s;
    next.reason = std::to_string(lost.size()) + " host(s) lost";
    if (shrink) {
      lost = gone;
      next.reason += " and no machine to replace " + std::string(need > 1 ? "them" : "it") +
                     ": going on with " + std::to_string(shrink->size()) + " hosts (--nnodes " +
                     std::to_string(config.fewest_hosts()) + ":" +
                     std::to_string(config.num_hosts) + ")";
    }
  } else if (!obs.not_ready.empty()) {
    next.kind = "group_lost";
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
    // the host ids that left (the standbys are assigned to them).
    for (uint32_t h = 0; h < config.num_hosts && grow.size() < obs.standbys; ++h)
      if (!members.Has(h)) grow.push_back(h);
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
      if (!std::count(lost.begin(), lost.end(), h)) next.failed_hosts.push_back(h);
  std::sort(next.failed_hosts.begin(), next.failed_hosts.end());
  next.hosts = shrink ? *shrink : members.members();
  if (!grow.empty()) {
    next.hosts.insert(next.hosts.end(), grow.begin(), grow.end());
    std::sort(next.hosts.begin(), next.hosts.end());
  }
  // Resume from the newest iteration complete in this epoch (saved by this
  // epoch's members), else from where this epoch itself resumed.
  const bool this_epoch = obs.complete_epoch < 0 || obs.complete_epoch >= current.epoch;
  const std::vector<uint32_t>& current_resume =
      current.resume_hosts.empty() ? members.members() : current.resume_hosts;
  bool persistent = next.kind == "group_lost";
  if (persistent) {
    next.resume_iteration = obs.persisted;
    next.resume_hosts = members.members();
  } else if (this_epoch) {
    next.resume_iteration = obs.complete;
    next.resume_hosts = members.members();
  } else {
    next.resume_iteration = current.resume_iteration;
    next.resume_hosts = current_resume;
  }
  next.source = next.resume_iteration < 0 ? "fresh" : persistent ? "persistent" : "local";
  next.epoch = current.epoch + 1;
  next.state = "preparing";
  if (config.max_restarts >= 0 && next.epoch - 1 > config.max_restarts) {
    next.state = "failed";  // Every host stops its trainers; nothing restarts.
    next.reason +=
        "; giving up: " + std::to_string(config.max_restarts) + " restart(s) used (--max-restarts)";
  }
  next.detected_at = obs.now;
  next.master_port = static_cast<uint16_t>(29500 + next.epoch % 500);
  return next;
}

}  // namespace gemini
