#include "agent/planner.h"

#include <algorithm>

namespace gemini {
namespace {

std::vector<uint32_t> LostHosts(const JobConfig& config, const Plan& current,
                                const Observations& obs) {
  std::vector<uint32_t> lost;
  for (uint32_t h = 0; h < config.num_hosts; ++h) {
    // While the job starts, hosts are still joining; while a recovery
    // prepares, its replacements are.
    bool expected_missing = current.state == "preparing" &&
                            (current.kind == "start" || std::count(current.failed_hosts.begin(),
                                                                   current.failed_hosts.end(), h));
    if (!obs.live_hosts.count(h) && !expected_missing) lost.push_back(h);
  }
  return lost;
}

bool LosesAShard(const Placement& placement, const std::vector<uint32_t>& lost) {
  std::vector<int> failed(lost.begin(), lost.end());
  auto shards = LostShards(placement, failed);
  return !shards.ok() || !shards->empty();
}

}  // namespace

std::optional<Plan> PlanRecovery(const JobConfig& config, const Placement& placement,
                                 const Plan& current, const Observations& observed) {
  if (current.state == "done" || current.state == "failed") return std::nullopt;
  Observations obs = observed;
  // A plan preparing past its deadline: never wait silently forever.
  if (current.state == "preparing" && current.kind != "start" && config.prepare_timeout_s > 0 &&
      current.detected_at > 0 && obs.now - current.detected_at > config.prepare_timeout_s) {
    std::string missing;
    for (uint32_t h = 0; h < config.num_hosts; ++h) {
      if (obs.ready.count(h) || obs.not_ready.count(h)) continue;
      if (!obs.live_hosts.count(h))
        missing += (missing.empty() ? "" : ", ") + std::to_string(h);
      else
        obs.not_ready[h] = "did not report ready within " +
                           std::to_string(static_cast<int64_t>(config.prepare_timeout_s)) + " s";
    }
    if (!missing.empty()) {
      Plan failed = current;
      failed.epoch = current.epoch + 1;
      failed.state = "failed";
      failed.detected_at = obs.now;
      failed.reason = "no machine took the place of host(s) " + missing + " within " +
                      std::to_string(static_cast<int64_t>(config.prepare_timeout_s)) +
                      " s (no idle standby, and the machine provider did not deliver one)";
      return failed;
    }
  }
  std::vector<uint32_t> lost = LostHosts(config, current, obs);
  Plan next;
  if (!lost.empty()) {
    // Hosts still being replaced hold nothing yet: their memory counts as lost too.
    std::vector<uint32_t> gone = lost;
    if (current.state == "preparing")
      for (uint32_t h : current.failed_hosts)
        if (!std::count(gone.begin(), gone.end(), h)) gone.push_back(h);
    bool group_lost = LosesAShard(placement, gone) || !obs.not_ready.empty();
    next.kind = group_lost ? "group_lost" : "hardware";
    next.failed_at = obs.now - obs.lease_ttl_s;
    next.reason = std::to_string(lost.size()) + " host(s) lost";
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
  } else {
    return std::nullopt;
  }
  // Hosts still being replaced by the current plan stay replacements.
  next.failed_hosts = lost;
  if (current.state == "preparing")
    for (uint32_t h : current.failed_hosts)
      if (!std::count(lost.begin(), lost.end(), h)) next.failed_hosts.push_back(h);
  std::sort(next.failed_hosts.begin(), next.failed_hosts.end());
  bool persistent = next.kind == "group_lost";
  next.resume_iteration = persistent ? obs.persisted : obs.complete;
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
