// The per-node launcher: what `gemini launch --rdzv-endpoint ...` runs on
// every machine of a job, like torchrun.
//
//   gemini launch --nnodes N|MIN:MAX --nproc-per-node P --rdzv-endpoint HOST:PORT
//       --rdzv-id JOB [--standby] [--redundancy copies:2] [--etcd-cacert F --etcd-cert F
//       --etcd-key F] [--secret-file F] SCRIPT ARGS...
//
// It checks that /dev/shm can hold the checkpoint budget, joins the job's
// rendezvous in etcd (launch/rendezvous.h) for a host id (the node that
// closes the round writes the job's config and first plan from its own
// flags; the others check that their flags agree), then runs this machine's
// agent in launch mode with the trainer command from its own command line
// (nothing executed is read from etcd). The agent runs the trainers with
// torchrun's environment and recovers them as the job's plan says. The
// launcher prints the job's timeline and exits with the job's status: 0 when
// every trainer finished, 1 when the job failed, kFencedExit (agent/run.h)
// when this node was declared lost while it ran (stalled past its lease: a
// replacement serves its host id). SIGTERM or SIGINT stop the agent and its
// trainers.
//
// The flags are src/cli/launch_cmd.cc's; RunNode takes their values.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "launch/job.h"

namespace gemini {

struct NodeOptions {
  JobFlags job;
  std::string nnodes = "1";   // N or MIN:MAX.
  std::string rdzv_endpoint;  // etcd endpoints, comma-separated.
  double rdzv_timeout = 600;
  double last_call = 3;
  bool standby = false;
  int64_t replace_host = -1;  // Machine providers: take over this host id.
  std::string advertise;      // Default: this machine's address toward etcd.
  std::string secret_file;    // Default: $GEMINI_SECRET.
  std::string socket;         // Default: the agent's default.
  std::string shm_prefix;     // Default: "gemini-<job>".
  std::string log_dir;        // Default: ./gemini-logs/<job>.
  int metrics_port = -1;
  std::vector<std::string> command;
};

// Runs this node until the job ends; returns the exit status above (2: options
// that make no job here, e.g. no command or too little /dev/shm; 128+N:
// stopped by signal N).
int RunNode(const NodeOptions& o);

// "N" or "MIN:MAX".
Result<std::pair<uint32_t, uint32_t>> ParseNnodes(const std::string& text);

}  // namespace gemini
