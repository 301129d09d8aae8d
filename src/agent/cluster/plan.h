// The job's configuration and recovery plan, as stored in etcd (JSON).
//
// Keys under the job prefix (see job_coordinator.h for hosts/, ranks/,
// epochs/, complete):
//   config                     JobConfig, written once by the launcher
//   plan                       Plan: the current epoch, written by the root
//   ready/<epoch>/<host>       {"ok","error"}: the host prepared its shards
//   exits/<epoch>/<rank>       {"code","at"}: a trainer exited (not cleanly)
//   resumed/<epoch>/<host>     wall time of the host's first commit after resume
//   done/<epoch>/<host>        the host's trainers all finished
//   root                       the root agent's host id, under its lease
//   standby/<name>             an idle standby agent, under its lease
//   assign/<name>              host id a standby must take over
//   provider/requests/<host>   a replacement machine requested for <host>
//   pids/<rank>                the trainer's pid (fault injection, tooling)
// Times are wall-clock seconds (system_clock), comparable across hosts of
// one machine and across machines with synchronized clocks.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"
#include "gemini/placement.h"

namespace gemini {

// Limits on what a job config or plan read from etcd may claim.
inline constexpr int64_t kMaxHosts = 65536;
inline constexpr int64_t kMaxProcsPerHost = 1024;

struct JobConfig {
  uint32_t num_hosts = 1;
  // Fewest hosts the job may go on with (`--nnodes MIN:MAX`): a lost host no
  // machine replaces leaves the job ("shrink") while this many remain.
  // Default (0 in JSON, or absent): num_hosts, never shrink.
  uint32_t min_hosts = 0;
  uint32_t nproc_per_host = 1;
  Redundancy redundancy = Redundancy::Copies(2);  // copies:M or rs:K+F
  // Recoveries (new epochs after the start) before the job is declared
  // failed; -1: no limit.
  int64_t max_restarts = 10;
  // How long a plan may stay preparing (replacements arriving, shards being
  // fetched) before the root gives up on the hosts that are not ready: a
  // missing machine fails the job with a clear reason, a live host that
  // never reported ready counts as unable to prepare. 0: no deadline.
  double prepare_timeout_s = 300;
  // The trainer command line and environment: the agent's own (its command
  // line), never read from etcd (not in the encoded config).
  std::vector<std::string> command;
  std::map<std::string, std::string> env;
  std::string persist_dir;    // Persistent tier root ("" = none).
  int64_t persist_every = 0;  // Persist iterations that are multiples of this.
  // Traffic interleaving (agent/interleave/interleaver.h): mode and R, p, mu, W.
  std::string interleave_mode = "interleave";
  uint64_t buffer_bytes = 128ull << 20;
  uint32_t sub_buffers = 4;
  double mu = 0.9;
  int warmup_iterations = 20;
  int replication_nice = 10;
  uint32_t world_size() const { return num_hosts * nproc_per_host; }
  uint32_t fewest_hosts() const { return min_hosts == 0 ? num_hosts : min_hosts; }
};

// Where every host's shard lives: the one placement of a job (mixed
// strategy: groups of M or K+F consecutive hosts, the last one wider).
Result<Placement> JobPlacement(uint32_t num_hosts, const Redundancy& redundancy);

struct Plan {
  int64_t epoch = 0;
  std::string state;              // "preparing", "running", "done", "failed" (restarts used up)
  int64_t resume_iteration = -1;  // -1: start from scratch
  std::string source;             // "fresh", "local", "persistent" (replacements: "peer")
  // "start", "software", "hardware", "group_lost", "shrink" (lost hosts leave the job)
  std::string kind;
  std::vector<uint32_t> failed_hosts;
  // The epoch's members (agent/cluster/layout.h): sorted host ids; empty = all hosts.
  std::vector<uint32_t> hosts;
  // The members of the world that saved resume_iteration (empty = `hosts`):
  // after a shrink, the shards to reshard from.
  std::vector<uint32_t> resume_hosts;
  double failed_at = 0;    // Earliest evidence of the failure (wall clock).
  double detected_at = 0;  // When the root noticed it.
  uint16_t master_port = 0;
  std::string reason;
  // Source "persistent": the epoch (timeline) whose persisted files of
  // resume_iteration every host loads (-1: none named).
  int64_t persisted_epoch = -1;
  // Recoveries so far (what --max-restarts limits and TORCHELASTIC_RESTART_COUNT
  // says): every new epoch but the first and those that grow a shrunk job back.
  int64_t restarts = 0;
  // The source of `host`'s shards: replacements of failed hosts fetch from peers.
  std::string SourceFor(uint32_t host) const;
  // Whether this plan waits for a machine (a standby or the provider's) to
  // take host id `host`: a failed host of a preparing plan that does not
  // leave the job (every kind but "shrink").
  bool Replaces(uint32_t host) const;
};

std::string EncodeJobConfig(const JobConfig& c);
Result<JobConfig> DecodeJobConfig(const std::string& json);
std::string EncodePlan(const Plan& p);
Result<Plan> DecodePlan(const std::string& json);

// Wall-clock seconds.
double WallNow();

}  // namespace gemini
