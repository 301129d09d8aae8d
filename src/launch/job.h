// A job's settings as the command lines of `gemini launch` give them (and the
// agent's share of them, `gemini agent --redundancy/--interleave`): the
// values as typed, unparsed, so that a launcher hands them on verbatim to the
// agents and node launchers it starts. The flags themselves (CLI11) are
// src/cli's (job_flags.h, redundancy_flags.h, interleave_flags.h).
//
//   RedundancyFlags  --replicas M | --redundancy SPEC  -> ToRedundancy
//   InterleaveFlags  --interleave, --buffer, ...        -> ToInterleaveOptions
//   JobFlags         every setting of a job            -> MakeJobConfig (the
//                    job's config in etcd), JobFlagArgs (the flags again)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "agent/cluster/plan.h"
#include "agent/interleave/interleaver.h"
#include "common/status.h"
#include "coord/etcd_kv_store.h"
#include "gemini/placement.h"

namespace gemini {

// copies:M (full copies, --replicas M) or rs:K+F (Reed–Solomon fragments,
// include/gemini/placement.h); the two flags exclude each other.
struct RedundancyFlags {
  int replicas = 0;        // 0: not given.
  std::string redundancy;  // "": not given.
};

// What the flags ask for; `fallback` when neither was given.
Result<Redundancy> ToRedundancy(const RedundancyFlags& f,
                                Redundancy fallback = Redundancy::Copies(2));

// Traffic interleaving (agent/interleave/interleaver.h).
struct InterleaveFlags {
  std::string mode = "interleave";
  std::string buffer = "128MiB";
  uint32_t sub_buffers = 4;
  double mu = 0.9;
  int warmup = 20;
  int replication_nice = 10;
};

Result<InterleaveOptions> ToInterleaveOptions(const InterleaveFlags& f);

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
