// `gemini launch`: a training job with Gemini's failure recovery, like
// torchrun plus a fault tolerance layer. The flags, then one of two forms:
//
// On every machine of a job (the real one; launch/node.h, RunNode):
//   gemini launch --nnodes N|MIN:MAX --nproc-per-node P --rdzv-endpoint HOST:PORT
//       --rdzv-id JOB [--standby] [--redundancy ...] [--etcd-cacert F ...] SCRIPT ARGS...
//
// The namespace harness (tests, `gemini demo`; root; harness/launcher.h,
// harness::Run): without --rdzv-endpoint,
//   gemini launch --hosts 4 --nproc-per-node 1 [--replicas 2 | --redundancy rs:4+2]
//       [--standby-hosts 1] [--etcd URL] [--persist-every 10] [--inject SPEC] [--report FILE]
//       -- python3 train.py ...
// makes namespace hosts and runs the per-node `gemini launch` in every one.
#include <memory>

#include "cli/command.h"
#include "cli/job_flags.h"
#include "harness/launcher.h"
#include "launch/node.h"

namespace gemini::cli {
namespace {

struct LaunchArgs {
  NodeOptions node;          // Job settings and, with --rdzv-endpoint, this node's.
  harness::Options harness;  // Without --rdzv-endpoint: the namespace harness.
};

void AddLaunch(CLI::App& app) {
  auto a = std::make_shared<LaunchArgs>();
  NodeOptions& n = a->node;
  auto* cmd = app.add_subcommand(
      "launch",
      "Run a training job with failure recovery: on every node with --rdzv-endpoint "
      "(like torchrun; see docs/deploy.md), or on namespace hosts it makes (root; tests and "
      "the demo)");
  AddJobFlags(cmd, &n.job);
  auto* node =
      cmd->add_option_group("node", "Every machine of a job runs gemini launch with these");
  node->add_option("--rdzv-endpoint", n.rdzv_endpoint,
                   "etcd endpoint(s) of the rendezvous, comma-separated (https:// with the "
                   "--etcd-* certificates)");
  node->add_option("--nnodes", n.nnodes, "Machines: N, or MIN:MAX to start with what joined")
      ->capture_default_str();
  node->add_option("--rdzv-timeout", n.rdzv_timeout, "Seconds to wait for the nodes to join")
      ->capture_default_str();
  node->add_option("--rdzv-last-call", n.last_call,
                   "With MIN:MAX: seconds without a new node before starting with fewer than MAX")
      ->capture_default_str();
  node->add_flag("--standby", n.standby,
                 "Join as a spare: idle until it replaces a failed machine");
  node->add_option("--replace-host", n.replace_host,
                   "For machine providers: take over this failed host id (no rendezvous)");
  node->add_option("--advertise", n.advertise,
                   "Address peers reach this node at (default: its address toward etcd)");
  node->add_option("--secret-file", n.secret_file,
                   "Job secret shared by the nodes (mode 0600); default $GEMINI_SECRET");
  node->add_option("--socket", n.socket, "The agent's Unix socket for its trainers");
  node->add_option("--shm-prefix", n.shm_prefix, "Name prefix of /dev/shm objects");
  node->add_option("--metrics-port", n.metrics_port, "Serve the agent's Prometheus metrics here");
  cmd->add_option("--log-dir", n.log_dir,
                  "Agent and trainer logs (default ./gemini-logs/JOB on a node; the cluster's "
                  "folder in the harness)");
  harness::Options* h = &a->harness;
  auto* lab = cmd->add_option_group("harness", "Namespace hosts on this machine (needs root)");
  lab->add_option("--hosts", h->hosts, "Machines (network-namespace hosts)")->capture_default_str();
  lab->add_option("--min-hosts", h->min_hosts,
                  "Fewest hosts the job may go on with after losing some (the nodes run with "
                  "--nnodes MIN:HOSTS); default: --hosts")
      ->check(CLI::Range(1, 4096));
  lab->add_option("--standby-hosts", h->standby_hosts, "Idle standby hosts for replacements")
      ->capture_default_str();
  lab->add_option("--etcd", h->etcd, "etcd endpoint (default: start one over TLS)");
  lab->add_option("--etcd-members", h->etcd_members,
                  "Members of the etcd it starts (3: survives one member's death)")
      ->capture_default_str()
      ->check(CLI::Range(1, 7));
  lab->add_option(
      "--inject", h->inject,
      "Faults: kill-trainer:R@I,kill-host:H@I,kill-root@I,"
      "stop-etcd:S@I,kill-etcd-member:M@I,freeze-host:H:S@I,forge-etcd@I,add-standby@I");
  lab->add_option("--report", h->report, "Write the timeline and final state CRC here (JSON)");
  lab->add_flag("--show-placement", h->show_placement,
                "Print where each shard lives before the first injected fault");
  lab->add_option("--timeout", h->timeout_s, "Give up after this many seconds (default: no limit)");
  lab->add_option("--rate", h->rate, "Link rate of every host, e.g. 1gbit (tc tbf)");
  lab->add_option("--mtu", h->mtu, "Link MTU of every host (default 1500; 9000: jumbo frames)");
  // Everything from the script on is the script's (torchrun's rule): its own
  // options are not gemini launch's. A "--" before it is optional.
  cmd->prefix_command();
  cmd->footer("\nThen: SCRIPT ARGS... (or -- COMMAND ARGS...), the training program.");
  cmd->callback([a, cmd] {
    a->node.command = cmd->remaining();
    if (!a->node.rdzv_endpoint.empty()) {
      SetExitCode(RunNode(a->node));
    } else {  // The flags both forms take: the job's, --log-dir and the command.
      a->harness.job = a->node.job;
      a->harness.log_dir = a->node.log_dir;
      a->harness.command = a->node.command;
      SetExitCode(harness::Run(a->harness));
    }
  });
}

}  // namespace
}  // namespace gemini::cli

GEMINI_REGISTER_COMMAND(launch, gemini::cli::AddLaunch);
