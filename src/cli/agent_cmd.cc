// `gemini agent`: runs this machine's checkpoint store until SIGTERM/SIGINT.
// The checkpoint memory belongs to the agent: stopping or restarting the
// agent frees it (trainers' crashes do not). With --etcd it joins a
// multi-machine job: registers in etcd, replicates every committed shard to
// the peers the placement names, and serves their replicas and fetches.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <iostream>
#include <sstream>
#include <thread>

#include "agent/agent.h"
#include "agent/cluster/coord_records.h"
#include "cli/command.h"
#include "cli/interleave_flags.h"
#include "cli/job_flags.h"
#include "cli/redundancy_flags.h"
#include "common/log.h"
#include "common/paths.h"
#include "common/stop_signals.h"
#include "common/units.h"
#include "coord/etcd_grpc_kv_store.h"
#include "coord/etcd_kv_store.h"
#include "coord/lease_keeper.h"
#include "coord/prefix_kv_store.h"
#include "launch/node.h"

namespace gemini::cli {
namespace {

struct AgentArgs {
  std::string socket = DefaultSocketPath();
  std::string budget = "8GiB";
  std::string shm_prefix = "gemini";
  // Cluster mode.
  std::string etcd;
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

// A standby machine: registered idle under a lease until the root assigns it
// the host id of a failed machine; returns that id.
Result<uint32_t> WaitForAssignment(const AgentArgs& a) {
  EtcdOptions eo;
  eo.endpoints = ParseEndpoints(a.etcd);
  eo.tls = a.etcd_tls;
  auto kv = std::make_shared<PrefixKvStore>(NewEtcdKvStore(eo), "/gemini/" + a.job + "/");
  const auto call = [] { return DeadlineAfter(std::chrono::seconds(3)); };
  std::unique_ptr<LeaseKeeper> keeper;
  std::cerr << "gemini agent: standby at " << a.advertise << ", waiting for an assignment"
            << std::endl;
  for (;;) {
    // (Re-)announce under a fresh lease: a standby outlives etcd hiccups
    // (a keepalive that timed out under load) instead of exiting.
    if (!keeper || !keeper->status().ok()) {
      if (keeper) {
        GEMINI_LOG(WARN) << "[standby] lease lost (" << keeper->status().ToString()
                         << "); announcing again";
        keeper->Stop();
        keeper.reset();
      }
      auto lease = kv->LeaseGrant(a.lease_ttl, call());
      if (lease.ok() && kv->Put("standby/" + a.advertise, "idle", call(), lease->id).ok())
        keeper = std::make_unique<LeaseKeeper>(kv, *lease);
      else
        GEMINI_LOG_EVERY_N_SEC(WARN, 10) << "[standby] cannot announce in etcd; retrying";
    }
    auto got = kv->Get("assign/" + a.advertise, call());
    if (got.ok()) {
      auto host = DecodeId(got->value);
      if (host.ok()) {
        if (keeper) {
          keeper->Stop();
          (void)kv->LeaseRevoke(keeper->id(), call());
        }
        return *host;
      }
      GEMINI_LOG_EVERY_N_SEC(WARN, 10)
          << "[standby] ignoring assign/" << a.advertise << ": " << host.status().ToString();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

Result<AgentOptions> MakeOptions(const AgentArgs& a) {
  GEMINI_ASSIGN_OR_RETURN(uint64_t budget, ParseBytes(a.budget));
  AgentOptions o;
  o.socket = a.socket;
  o.store.budget_bytes = budget;
  o.store.shm_prefix = a.shm_prefix;
  o.metrics_port = a.metrics_port;
  o.metrics_addr = a.metrics_addr;
  if (a.etcd.empty()) return o;
  if (a.advertise.empty()) return InvalidArgument("--advertise ADDR is required with --etcd");
  ClusterOptions c;
  c.job = a.job;
  c.host = a.host;
  c.num_hosts = a.hosts;
  GEMINI_ASSIGN_OR_RETURN(c.redundancy, ToRedundancy(a.redundancy));
  c.etcd = ParseEndpoints(a.etcd);
  c.etcd_tls = a.etcd_tls;
  c.advertise_addr = a.advertise;
  c.listen_addr = a.listen;
  c.port = a.port;
  c.secret_file = a.secret_file;
  c.lease_ttl_s = a.lease_ttl;
  c.launch = a.launch || a.standby;
  c.log_dir = a.log_dir;
  // What trainers run comes from this command line only, never from etcd:
  // whoever can write the job's keys must not be able to run code here.
  c.command = a.command;
  if (c.launch && c.command.empty())
    return InvalidArgument(
        "--launch and --standby need the trainer command after --, e.g. "
        "gemini agent --launch ... -- python3 train.py (nothing executed is read from etcd)");
  for (const std::string& kv : a.env) {
    size_t eq = kv.find('=');
    if (eq == 0 || eq == std::string::npos)
      return InvalidArgument("--env '" + kv + "': expected NAME=VALUE");
    c.env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  GEMINI_ASSIGN_OR_RETURN(c.interleave, ToInterleaveOptions(a.interleave));
  o.cluster = c;
  return o;
}

int RunAgent(AgentArgs args) {
  // Before any thread exists (gRPC starts its own): the main thread waits for
  // the stop signals below, and none may land in another thread.
  const sigset_t stop = BlockStopSignals();
  if (args.standby) {
    if (args.etcd.empty() || args.advertise.empty()) {
      std::cerr << "gemini agent: --standby needs --etcd and --advertise\n";
      return 2;
    }
    ExitOnStopSignal exit_on_stop("gemini agent: standby");  // Nothing to stop yet.
    auto host = WaitForAssignment(args);
    if (!host.ok()) {
      std::cerr << "gemini agent: standby: " << host.status().ToString() << "\n";
      return 1;
    }
    args.host = *host;
    std::cerr << "gemini agent: standby assigned host " << *host << std::endl;
  }
  auto options = MakeOptions(args);
  if (!options.ok()) {
    std::cerr << "gemini agent: " << options.status().message() << "\n";
    return 2;
  }
  std::string dir = args.socket.substr(0, args.socket.rfind('/'));
  if (!dir.empty()) mkdir(dir.c_str(), 0700);
  Agent agent(*options);
  Status st = agent.Start();
  if (!st.ok()) {
    std::cerr << "gemini agent: " << st.ToString() << "\n";
    return 1;
  }
  std::cerr << "gemini agent: serving on " << args.socket << " (budget " << args.budget << ", pid "
            << getpid() << ")";
  if (options->cluster)
    std::cerr << "; host " << args.host << " of " << args.hosts << " in job " << args.job
              << ", peers at " << agent.peer_address() << ", redundancy "
              << options->cluster->redundancy.ToString();
  if (agent.metrics_port() >= 0)
    std::cerr << "; metrics at http://" << args.metrics_addr << ":" << agent.metrics_port()
              << "/metrics";
  std::cerr << std::endl;
  // Until a stop signal, or until this host is fenced (declared lost while
  // this agent ran: a replacement serves its host id, so this one must not
  // keep serving its shards or answering for it).
  const timespec tick{0, 200'000'000};
  int sig = -1;
  while (sig < 0 && !agent.fenced()) sig = sigtimedwait(&stop, nullptr, &tick);
  if (sig < 0) {
    std::cerr << "gemini agent: fenced (host " << args.host
              << " was declared lost while this agent ran); exiting. Restart it as a standby to "
                 "rejoin."
              << std::endl;
    agent.Stop();
    return kFencedExit;
  }
  std::cerr << "gemini agent: signal " << sig << ", shutting down (checkpoint memory freed)"
            << std::endl;
  agent.Stop();
  return 0;
}

void AddAgent(CLI::App& app) {
  auto a = std::make_shared<AgentArgs>();
  auto* cmd = app.add_subcommand("agent", "Run this machine's checkpoint store (one per machine)");
  cmd->add_option("--socket", a->socket, "Unix socket trainers connect to ($GEMINI_SOCKET)")
      ->capture_default_str();
  cmd->add_option("--budget", a->budget, "Shared memory the store may use, e.g. 16GiB")
      ->capture_default_str();
  cmd->add_option("--shm-prefix", a->shm_prefix, "Name prefix of /dev/shm objects")
      ->capture_default_str();
  cmd->add_option("--metrics-port", a->metrics_port,
                  "Serve Prometheus metrics over HTTP on this port (0: any; default off)");
  cmd->add_option("--metrics-addr", a->metrics_addr, "Address of the metrics port")
      ->capture_default_str();
  auto* g = cmd->add_option_group("cluster", "Multi-machine mode (replication through etcd)");
  g->add_option("--etcd", a->etcd, "etcd endpoints, comma-separated (enables cluster mode)");
  AddEtcdTlsFlags(g, &a->etcd_tls);
  g->add_option("--job", a->job, "Job name");
  g->add_option("--host-id", a->host, "This machine's id, 0..hosts-1");
  g->add_option("--hosts", a->hosts, "Machines in the job")->capture_default_str();
  AddRedundancyFlags(g, &a->redundancy, "Copies in CPU memory, own included");
  g->add_option("--advertise", a->advertise, "Address peers reach this agent at");
  g->add_option("--listen", a->listen, "Address to bind for peers (default: all)");
  g->add_option("--port", a->port, "Peer port (default: any free)");
  g->add_option("--secret-file", a->secret_file, "Job secret (mode 0600); default $GEMINI_SECRET");
  g->add_option("--lease-ttl", a->lease_ttl, "Heartbeat lease TTL, seconds")->capture_default_str();
  g->add_flag("--launch", a->launch,
              "Run this host's trainers as the job's plan says (gemini launch)");
  g->add_flag("--standby", a->standby,
              "Wait idle until assigned a failed host's id, then --launch");
  AddInterleaveFlags(g, &a->interleave);
  g->add_option("--log-dir", a->log_dir, "Where trainer logs go (--launch)")->capture_default_str();
  // One value per --env, so that a following -- still starts the command
  // (CLI11 would otherwise take that -- as the end of --env's values).
  g->add_option("--env", a->env, "NAME=VALUE set for the trainers (--launch; repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("command", a->command,
                  "Trainer command, after -- (--launch, --standby): taken from this command line "
                  "only, never from etcd");
  cmd->callback([a] { SetExitCode(RunAgent(*a)); });
}

}  // namespace
}  // namespace gemini::cli

GEMINI_REGISTER_COMMAND(agent, gemini::cli::AddAgent);
