// The flags of `gemini launch` that describe the job (what goes into its
// config in etcd) and how each node's agent runs, shared by the per-node
// launcher (node_launch.h) and the namespace harness (launch_cmd.cc), which
// hands them on to every node's launcher (JobFlagArgs).
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "agent/cluster/plan.h"
#include "cli/interleave_flags.h"
#include "cli/redundancy_flags.h"
#include "coord/etcd_kv_store.h"

namespace gemini::cli {

struct JobFlags {
  std::string job = "job";  // --rdzv-id (alias --job): the job's etcd prefix.
  int nproc = 1;
  RedundancyFlags redundancy;
  int64_t max_restarts = 10;
  double prepare_timeout = 300;
  std::string persist_dir;
  int64_t persist_every = 0;
  int64_t lease_ttl = 3;
  std::string budget = "8GiB";
  TlsFiles etcd_tls;
  InterleaveFlags interleave;
};

void AddJobFlags(CLI::App* cmd, JobFlags* f);
// --etcd-cacert, --etcd-cert, --etcd-key (every command that talks to an
// https etcd with a client certificate).
void AddEtcdTlsFlags(CLI::App* cmd, TlsFiles* tls);

// The job's config for `num_hosts` machines (the node that closes the
// rendezvous writes it).
Result<JobConfig> MakeJobConfig(const JobFlags& f, uint32_t num_hosts);

// The command-line flags that give another `gemini launch` these settings.
std::vector<std::string> JobFlagArgs(const JobFlags& f);

}  // namespace gemini::cli
