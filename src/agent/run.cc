#include "agent/run.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <iostream>
#include <thread>

#include "agent/cluster/coord_records.h"
#include "common/log.h"
#include "common/stop_signals.h"
#include "common/units.h"
#include "coord/etcd_grpc_kv_store.h"
#include "coord/lease_keeper.h"
#include "coord/prefix_kv_store.h"

namespace gemini {
namespace {

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

}  // namespace

Result<AgentOptions> MakeAgentOptions(const AgentArgs& a) {
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
  auto options = MakeAgentOptions(args);
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

}  // namespace gemini
