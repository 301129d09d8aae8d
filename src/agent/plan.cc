#include "agent/plan.h"

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>

namespace gemini {

using nlohmann::json;

std::string Plan::SourceFor(uint32_t host) const {
  bool failed = std::find(failed_hosts.begin(), failed_hosts.end(), host) != failed_hosts.end();
  return failed && source == "local" ? "peer" : source;
}

std::string EncodeJobConfig(const JobConfig& c) {
  return json{{"num_hosts", c.num_hosts},
              {"nproc_per_host", c.nproc_per_host},
              {"replicas", c.replicas},
              {"command", c.command},
              {"env", c.env},
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
  auto j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return InvalidArgument("job config is not JSON");
  try {
    JobConfig c;
    c.num_hosts = j.at("num_hosts");
    c.nproc_per_host = j.at("nproc_per_host");
    c.replicas = j.at("replicas");
    c.command = j.at("command").get<std::vector<std::string>>();
    c.env = j.at("env").get<std::map<std::string, std::string>>();
    c.persist_dir = j.at("persist_dir");
    c.persist_every = j.at("persist_every");
    if (j.contains("interleave")) {  // Absent in configs of older launchers.
      const auto& i = j["interleave"];
      c.interleave_mode = i.at("mode");
      c.buffer_bytes = i.at("buffer_bytes");
      c.sub_buffers = i.at("sub_buffers");
      c.mu = i.at("mu");
      c.warmup_iterations = i.at("warmup_iterations");
      c.replication_nice = i.value("replication_nice", 10);
    }
    if (c.num_hosts == 0 || c.nproc_per_host == 0 || c.command.empty())
      return InvalidArgument("job config needs hosts, processes and a command");
    return c;
  } catch (const json::exception& e) {
    return InvalidArgument(std::string("bad job config: ") + e.what());
  }
}

std::string EncodePlan(const Plan& p) {
  return json{{"epoch", p.epoch},
              {"state", p.state},
              {"resume_iteration", p.resume_iteration},
              {"source", p.source},
              {"kind", p.kind},
              {"failed_hosts", p.failed_hosts},
              {"failed_at", p.failed_at},
              {"detected_at", p.detected_at},
              {"master_port", p.master_port},
              {"reason", p.reason},
              {"persisted_epoch", p.persisted_epoch}}
      .dump();
}

Result<Plan> DecodePlan(const std::string& text) {
  auto j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return InvalidArgument("plan is not JSON");
  try {
    Plan p;
    p.epoch = j.at("epoch");
    p.state = j.at("state");
    p.resume_iteration = j.at("resume_iteration");
    p.source = j.at("source");
    p.kind = j.at("kind");
    p.failed_hosts = j.at("failed_hosts").get<std::vector<uint32_t>>();
    p.failed_at = j.at("failed_at");
    p.detected_at = j.at("detected_at");
    p.master_port = j.at("master_port");
    p.reason = j.value("reason", "");
    p.persisted_epoch = j.value("persisted_epoch", int64_t{-1});
    return p;
  } catch (const json::exception& e) {
    return InvalidArgument(std::string("bad plan: ") + e.what());
  }
}

double WallNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace gemini
