// `gemini provider`: a job's machine provider on real machines.
//
//   gemini provider --rdzv-endpoint HOST:PORT --rdzv-id JOB --command CMD
//       [--etcd-cacert F --etcd-cert F --etcd-key F] [--command-timeout 300]
//
// When the job loses a host and no standby is left, its root asks for a new
// machine (provider/requests/<host>). This process serves those requests by
// running CMD (launch/provider.h: CommandProvider) with GEMINI_REPLACE_HOST
// and GEMINI_JOB set; CMD starts, somewhere, a node launcher that takes the
// host over:
//   gemini launch <the job's flags> --replace-host "$GEMINI_REPLACE_HOST" SCRIPT ARGS
// and returns. Only hosts the job's current plan replaces are served. Runs
// until the job is done (exit 0) or failed (exit 1), or SIGTERM / SIGINT.
#include <signal.h>

#include <iostream>

#include "agent/cluster/plan.h"
#include "cli/command.h"
#include "cli/job_flags.h"
#include "common/stop_signals.h"
#include "coord/etcd_grpc_kv_store.h"
#include "coord/mirror.h"
#include "coord/prefix_kv_store.h"
#include "launch/provider.h"

namespace gemini::cli {
namespace {

struct ProviderArgs {
  std::string endpoint;
  std::string job;
  std::string command;
  double command_timeout = 300;
  TlsFiles tls;
};

void Say(const std::string& line) {
  std::printf("[%.3f] %s\n", WallNow(), line.c_str());
  std::fflush(stdout);
}

int RunProvider(const ProviderArgs& a) {
  auto endpoints = ParseEndpoints(a.endpoint);
  if (endpoints.empty() || a.job.empty() || a.command.empty()) {
    std::cerr << "gemini provider: --rdzv-endpoint, --rdzv-id and --command are required\n";
    return 2;
  }
  // Before the etcd client starts threads: stop signals are taken here only.
  sigset_t stop = BlockStopSignals();
  EtcdOptions eo;
  eo.endpoints = endpoints;
  eo.tls = a.tls;
  auto kv = std::make_shared<PrefixKvStore>(NewEtcdKvStore(eo), "/gemini/" + a.job + "/");
  CommandProvider machines(
      a.command, a.job, std::chrono::milliseconds(static_cast<int64_t>(a.command_timeout * 1e3)));
  ProviderService service(kv, &machines, Say);
  // Watched: the requests and the plan are read once, then followed.
  Mirror requests(kv, "provider/requests/", true), plan(kv, "plan", false);
  requests.Start();
  plan.Start();
  Say("serving machine requests of job " + a.job + " (command: " + a.command + ")");
  std::pair<uint64_t, uint64_t> seen{0, 0};  // versions of the requests and the plan served
  for (;;) {
    timespec tick{0, 200'000'000};
    if (int sig = sigtimedwait(&stop, nullptr, &tick); sig > 0) {
      Say("signal " + std::to_string(sig) + ": stopping");
      return 128 + sig;
    }
    if (auto p = plan.Get(); p.ok()) {
      auto decoded = DecodePlan(p->value);
      if (decoded.ok() && (decoded->state == "done" || decoded->state == "failed")) {
        Say("the job " + std::string(decoded->state == "done" ? "finished" : "failed"));
        return decoded->state == "done" ? 0 : 1;
      }
    }
    // A request is judged by the plan: looked at again when either changes.
    const std::pair<uint64_t, uint64_t> now{requests.version(), plan.version()};
    auto all = requests.All();
    if ((now == seen && !service.RetryDue()) || !all.ok() || all->empty()) continue;
    seen = now;
    service.ServeOnce();
  }
}

void AddProvider(CLI::App& app) {
  auto a = std::make_shared<ProviderArgs>();
  auto* cmd = app.add_subcommand(
      "provider",
      "A job's machine provider: runs --command for every lost host no standby replaces");
  cmd->add_option("--rdzv-endpoint", a->endpoint, "etcd endpoints (HOST:PORT,...)")->required();
  cmd->add_option("--rdzv-id,--job", a->job, "The job")->required();
  cmd->add_option("--command", a->command,
                  "Shell command that starts a replacement machine and returns; it gets "
                  "GEMINI_REPLACE_HOST and GEMINI_JOB")
      ->required();
  cmd->add_option("--command-timeout", a->command_timeout, "Seconds the command may take")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 1e6));
  AddEtcdTlsFlags(cmd, &a->tls);
  cmd->callback([a] { SetExitCode(RunProvider(*a)); });
}

}  // namespace
}  // namespace gemini::cli

GEMINI_REGISTER_COMMAND(provider, gemini::cli::AddProvider);
