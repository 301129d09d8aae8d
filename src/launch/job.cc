#include "launch/job.h"

#include <sstream>

#include "common/units.h"

namespace gemini {
namespace {

std::string Str(double v) {
  std::ostringstream s;
  s.precision(17);
  s << v;
  return s.str();
}

}  // namespace

Result<JobConfig> MakeJobConfig(const JobFlags& f, uint32_t num_hosts) {
  JobConfig config;
  config.num_hosts = num_hosts;
  config.nproc_per_host = static_cast<uint32_t>(f.nproc);
  GEMINI_ASSIGN_OR_RETURN(config.redundancy, ToRedundancy(f.redundancy));
  GEMINI_RETURN_IF_ERROR(JobPlacement(num_hosts, config.redundancy).status());
  config.max_restarts = f.max_restarts;
  config.prepare_timeout_s = f.prepare_timeout;
  config.persist_dir = f.persist_dir;
  config.persist_every = f.persist_every;
  GEMINI_ASSIGN_OR_RETURN(InterleaveOptions io, ToInterleaveOptions(f.interleave));
  config.interleave_mode = InterleaveModeName(io.mode);
  config.buffer_bytes = io.buffer_bytes;
  config.sub_buffers = io.sub_buffers;
  config.mu = io.mu;
  config.warmup_iterations = io.warmup_iterations;
  config.replication_nice = io.replication_nice;
  return config;
}

std::vector<std::string> JobFlagArgs(const JobFlags& f) {
  std::vector<std::string> a{"--rdzv-id",
                             f.job,
                             "--nproc-per-node",
                             std::to_string(f.nproc),
                             "--max-restarts",
                             std::to_string(f.max_restarts),
                             "--prepare-timeout",
                             Str(f.prepare_timeout),
                             "--persist-every",
                             std::to_string(f.persist_every),
                             "--lease-ttl",
                             std::to_string(f.lease_ttl),
                             "--budget",
                             f.budget,
                             "--interleave",
                             f.interleave.mode,
                             "--buffer",
                             f.interleave.buffer,
                             "--sub-buffers",
                             std::to_string(f.interleave.sub_buffers),
                             "--mu",
                             Str(f.interleave.mu),
                             "--warmup",
                             std::to_string(f.interleave.warmup),
                             "--replication-nice",
                             std::to_string(f.interleave.replication_nice)};
  if (!f.redundancy.redundancy.empty())
    a.insert(a.end(), {"--redundancy", f.redundancy.redundancy});
  if (f.redundancy.replicas != 0)
    a.insert(a.end(), {"--replicas", std::to_string(f.redundancy.replicas)});
  if (!f.persist_dir.empty()) a.insert(a.end(), {"--persist-dir", f.persist_dir});
  const std::pair<const char*, std::string> tls[] = {{"--etcd-cacert", f.etcd_tls.ca_file},
                                                     {"--etcd-cert", f.etcd_tls.cert_file},
                                                     {"--etcd-key", f.etcd_tls.key_file}};
  for (const auto& [flag, file] : tls)
    if (!file.empty()) a.insert(a.end(), {flag, file});
  return a;
}

}  // namespace gemini
