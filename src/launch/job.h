// A job's settings as the command lines of `gemini launch` give them (and the
// agent's share of them, `gemini agent --redundancy/--interleave`): the
// values as typed, unparsed, so that a launcher hands them on verbatim to the
// agents and node launchers it starts. The flags themselves (CLI11) are
// src/cli's (job_flags.h, redundancy_flags.h, interleave_flags.h).
//
//   JobFlags   every setting of a job -> MakeJobConfig (the job's config in
//              etcd), JobFlagArgs (the flags again); its redundancy and
//              interleaving are the agent's own settings (agent/settings.h)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "agent/cluster/plan.h"
#include "agent/settings.h"
#include "common/status.h"
#include "coord/etcd_kv_store.h"
#include "gemini/placement.h"

namespace gemini {

// The job (what goes into its config in etcd) and how each node's agent runs.
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

// The job's config for `num_hosts` machines (the node that closes the
// rendezvous writes it).
Result<JobConfig> MakeJobConfig(const JobFlags& f, uint32_t num_hosts);

// The command-line flags that give another `gemini launch` these settings.
std::vector<std::string> JobFlagArgs(const JobFlags& f);

}  // namespace gemini
