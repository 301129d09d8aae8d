// `gemini agent`: runs this machine's checkpoint store until SIGTERM/SIGINT
// (agent/run.h: AgentArgs, RunAgent). The checkpoint memory belongs to the
// agent: stopping or restarting the agent frees it (trainers' crashes do
// not). With --etcd it joins a multi-machine job: registers in etcd,
// replicates every committed shard to the peers the placement names, and
// serves their replicas and fetches.
#include <memory>

#include "agent/run.h"
#include "cli/command.h"
#include "cli/interleave_flags.h"
#include "cli/job_flags.h"
#include "cli/redundancy_flags.h"

namespace gemini::cli {
namespace {

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
