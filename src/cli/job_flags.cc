#include "cli/job_flags.h"

#include <sstream>

namespace gemini::cli {
namespace {

std::string Str(double v) {
  std::ostringstream s;
  s.precision(17);
  s << v;
  return s.str();
}

}  // namespace

void AddJobFlags(CLI::App* cmd, JobFlags* f) {
  cmd->add_option("--rdzv-id,--job", f->job, "Job id: every node of one job gives the same")
      ->capture_default_str();
  cmd->add_option("--nproc-per-node,--nproc-per-host", f->nproc, "Trainer processes per node")
      ->capture_default_str()
      ->check(CLI::Range(1, static_cast<int>(kMaxProcsPerHost)));
  AddRedundancyFlags(cmd, &f->redundancy, "Copies in CPU memory");
  cmd->add_option("--max-restarts", f->max_restarts,
                  "Recoveries before the job is declared failed (-1: no limit)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{-1}, int64_t{INT32_MAX}));
  cmd->add_option("--prepare-timeout", f->prepare_timeout,
                  "Seconds a recovery may wait for replacement machines and shards before the "
                  "job fails with the reason (0: wait forever)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1e7));
  cmd->add_option("--persist-every", f->persist_every, "Persist every N iterations (0: never)")
      ->capture_default_str();
  cmd->add_option("--persist-dir", f->persist_dir, "Persistent tier directory (shared)");
  cmd->add_option("--lease-ttl", f->lease_ttl, "Heartbeat TTL, seconds")->capture_default_str();
  cmd->add_option("--budget", f->budget, "Checkpoint memory of each node's agent (/dev/shm)")
      ->capture_default_str();
  AddEtcdTlsFlags(cmd, &f->etcd_tls);
  AddInterleaveFlags(cmd, &f->interleave);
}

void AddEtcdTlsFlags(CLI::App* cmd, TlsFiles* tls) {
  cmd->add_option("--etcd-cacert", tls->ca_file,
                  "PEM file of the CA that signed etcd's certificate (https:// endpoints)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--etcd-cert", tls->cert_file,
                  "PEM file of this machine's client certificate (etcd --client-cert-auth)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--etcd-key", tls->key_file, "PEM file of that certificate's key")
      ->check(CLI::ExistingFile);
}

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

}  // namespace gemini::cli
