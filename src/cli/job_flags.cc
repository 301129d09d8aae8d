#include "cli/job_flags.h"

namespace gemini::cli {

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

}  // namespace gemini::cli
