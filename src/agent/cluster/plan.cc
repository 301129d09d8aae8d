#include "agent/cluster/plan.h"

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>

#include "common/json_fields.h"

namespace gemini {

using nlohmann::json;

Result<Placement> JobPlacement(uint32_t num_hosts, const Redundancy& redundancy) {
  return MakePlacement(static_cast<int>(num_hosts), redundancy, PlacementStrategy::kMixed);
}

std::string Plan::SourceFor(uint32_t host) const {
  bool failed = std::find(failed_hosts.begin(), failed_hosts.end(), host) != failed_hosts.end();
  return failed && source == "local" ? "peer" : source;
}

bool Plan::Replaces(uint32_t host) const {
  return state == "preparing" && kind != "shrink" &&
         std::find(failed_hosts.begin(), failed_hosts.end(), host) != failed_hosts.end();
}

std::string EncodeJobConfig(const JobConfig& c) {
  return json{{"num_hosts", c.num_hosts},
              {"min_hosts", c.fewest_hosts()},
              {"nproc_per_host", c.nproc_per_host},
              {"replicas", c.redundancy.copies},  // What launchers before rs:K+F read.
              {"redundancy", c.redundancy.ToString()},
              {"max_restarts", c.max_restarts},
              {"prepare_timeout_s", c.prepare_timeout_s},
              {"persist_dir", c.persist_dir},
              {"persist_every", c.persist_every},
              {"interleave",
               {{"mode", c.interleave_mode},
                {"buffer_bytes", c.buffer_bytes},
                {"sub_buffers", c.sub_buffers},
                {"mu", c.mu},
                {"warmup_iterations", c.warmup_iterations},
                {"replication_nice", c.replication_nice}}}}
      .dump();
}

Result<JobConfig> DecodeJobConfig(const std::string& text) {
  GEMINI_ASSIGN_OR_RETURN(json j, ParseJsonObject(text, "job config"));
  JsonFields f(j, "job config");
  JobConfig c;
  c.num_hosts = static_cast<uint32_t>(f.Int("num_hosts", 1, kMaxHosts));
  c.nproc_per_host = static_cast<uint32_t>(f.Int("nproc_per_host", 1, kMaxProcsPerHost));
  c.min_hosts = static_cast<uint32_t>(f.Int("min_hosts", 0, kMaxHosts, 0));
  int64_t replicas = f.Int("replicas", 1, kMaxHosts, 2);
  std::string redundancy = f.String("redundancy", "copies:" + std::to_string(replicas));
  c.max_restarts = f.Int("max_restarts", -1, INT32_MAX, 10);
  c.prepare_timeout_s = f.Number("prepare_timeout_s", 0, 1e7, 300);
  // "command" and "env" (written by older launchers) are ignored: each agent
  // runs the command of its own command line.
  c.persist_dir = f.String("persist_dir");
  c.persist_every = f.Int("persist_every", 0, INT64_MAX);
  json i = f.Object("interleave", /*optional=*/true);  // Absent in configs of older launchers.
  if (!i.empty()) {
    JsonFields g(i, "job config interleave");
    c.interleave_mode = g.String("mode");
    c.buffer_bytes = static_cast<uint64_t>(g.Int("buffer_bytes", 1, int64_t{1} << 40));
    c.sub_buffers = static_cast<uint32_t>(g.Int("sub_buffers", 1, 1024));
    c.mu = g.Number("mu", 0, 1);
    c.warmup_iterations = static_cast<int>(g.Int("warmup_iterations", 0, INT32_MAX));
    c.replication_nice = static_cast<int>(g.Int("replication_nice", -20, 19, 10));
    GEMINI_RETURN_IF_ERROR(g.status());
  }
  GEMINI_RETURN_IF_ERROR(f.status());
  if (c.min_hosts > c.num_hosts)
    return InvalidArgument("job config: min_hosts " + std::to_string(c.min_hosts) +
                           " is above num_hosts " + std::to_string(c.num_hosts));
  Result<Redundancy> r = ParseRedundancy(redundancy);
  if (!r.ok()) return InvalidArgument("job config: " + r.status().message());
  c.redundancy = *r;
  GEMINI_RETURN_IF_ERROR(JobPlacement(c.num_hosts, c.redundancy).status());
  if (uint64_t{c.num_hosts} * c.nproc_per_host > kMaxHosts * 64)
    return InvalidArgument("job config: too many ranks");
  return c;
}

std::string EncodePlan(const Plan& p) {
  return json{{"epoch", p.epoch},
              {"state", p.state},
              {"resume_iteration", p.resume_iteration},
              {"source", p.source},
              {"kind", p.kind},
              {"failed_hosts", p.failed_hosts},
              {"hosts", p.hosts},
              {"resume_hosts", p.resume_hosts},
              {"failed_at", p.failed_at},
              {"detected_at", p.detected_at},
              {"master_port", p.master_port},
              {"reason", p.reason},
              {"persisted_epoch", p.persisted_epoch},
              {"restarts", p.restarts}}
      .dump();
}

Result<Plan> DecodePlan(const std::string& text) {
  GEMINI_ASSIGN_OR_RETURN(json j, ParseJsonObject(text, "plan"));
  JsonFields f(j, "plan");
  Plan p;
  p.epoch = f.Int("epoch", 0, INT64_MAX);
  p.state = f.String("state", std::nullopt, 64);
  p.resume_iteration = f.Int("resume_iteration", -1, INT64_MAX);
  p.source = f.String("source", std::nullopt, 64);
  p.kind = f.String("kind", std::nullopt, 64);
  p.failed_hosts = f.Ids("failed_hosts", kMaxHosts, kMaxHosts);
  if (j.contains("hosts")) p.hosts = f.Ids("hosts", kMaxHosts, kMaxHosts);
  if (j.contains("resume_hosts")) p.resume_hosts = f.Ids("resume_hosts", kMaxHosts, kMaxHosts);
  p.failed_at = f.Number("failed_at", 0, 1e12);
  p.detected_at = f.Number("detected_at", 0, 1e12);
  p.master_port = static_cast<uint16_t>(f.Int("master_port", 0, 65535));
  p.reason = f.String("reason", "");
  p.persisted_epoch = f.Int("persisted_epoch", -1, INT64_MAX, -1);
  // Plans of older agents: every epoch after the first was a restart.
  p.restarts = f.Int("restarts", 0, INT64_MAX, std::max<int64_t>(0, p.epoch - 1));
  GEMINI_RETURN_IF_ERROR(f.status());
  return p;
}

double WallNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace gemini
