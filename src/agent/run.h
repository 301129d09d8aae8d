// The agent process: what `gemini agent` runs until SIGTERM/SIGINT. The
// checkpoint memory belongs to the agent: stopping or restarting it frees
// that memory (trainers' crashes do not). With an etcd endpoint it joins a
// multi-machine job: registers in etcd, replicates every committed shard to
// the peers the placement names, and serves their replicas and fetches. As a
// standby it first waits idle, registered in etcd, until the root assigns it
// a failed machine's host id, then runs as that host in launch mode.
//
// The flags are src/cli/agent_cmd.cc's; AgentArgs holds their values as
// typed (the job's share, redundancy and interleaving, as agent/settings.h's
// RedundancyFlags and InterleaveFlags), MakeAgentOptions turns them into the
// Agent's options and RunAgent runs it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "agent/agent.h"
#include "agent/settings.h"
#include "common/paths.h"
#include "common/status.h"
#include "coord/etcd_kv_store.h"

namespace gemini {

// Exit code of an agent (and its node launcher, launch/node.h) that stood
// down because its host was declared lost while it ran.
inline constexpr int kFencedExit = 3;

struct AgentArgs {
  std::string socket = DefaultSocketPath();
  std::string budget = "8GiB";
  std::string shm_prefix = "gemini";
  // Cluster mode.
  std::string etcd;   // Endpoints, comma-separated; "": one machine.
  TlsFiles etcd_tls;  // --etcd-cacert, --etcd-cert, --etcd-key
  std::string job;
  uint32_t host = 0;
  uint32_t hosts = 1;
  RedundancyFlags redundancy;
  std::string advertise;
  std::string listen;
  uint16_t port = 0;
  std::string secret_file;
  int64_t lease_ttl = 3;
  bool launch = false;
  bool standby = false;
  int metrics_port = -1;
  std::string metrics_addr = "127.0.0.1";
  std::string log_dir = "/tmp";
  InterleaveFlags interleave;
  std::vector<std::string> env;      // NAME=VALUE for the trainers (--launch).
  std::vector<std::string> command;  // The trainer command (--launch), after --.
};

// The Agent's options for `a` (cluster options only with an etcd endpoint);
// InvalidArgument, naming the flag, for values that make no agent.
Result<AgentOptions> MakeAgentOptions(const AgentArgs& a);

// Runs the agent until a stop signal (0) or until its host is fenced
// (kFencedExit); 1: it could not start; 2: arguments that make no agent.
// Says what it does on stderr. Call it before any thread is started: it
// blocks the stop signals (common/stop_signals.h).
int RunAgent(AgentArgs args);

}  // namespace gemini
