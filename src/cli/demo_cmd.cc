// `gemini demo`: the first promise, end to end on one machine (harness/demo.h,
// RunDemo): an agent, a small GPT-style model trained with DDP over gloo and
// checkpointed every iteration, every trainer SIGKILLed mid-run and
// restarted, the losses compared with an uninterrupted run. With --hosts N
// (root) the same on namespace hosts (harness/cluster_demo.h).
#include <memory>

#include "cli/command.h"
#include "cli/redundancy_flags.h"
#include "harness/demo.h"

namespace gemini::cli {
namespace {

using harness::DemoArgs;

void AddDemo(CLI::App& app) {
  auto a = std::make_shared<DemoArgs>();
  auto* cmd = app.add_subcommand(
      "demo", "Train a small GPT on CPU, kill it mid-run, resume from memory, compare losses");
  cmd->add_option("--iterations", a->iterations, "Training iterations")->capture_default_str();
  cmd->add_option("--kill-at", a->kill_at, "Kill the trainers after this iteration (default 60%)");
  cmd->add_option("--nproc", a->nproc, "Trainer processes on one machine (DDP ranks)")
      ->capture_default_str();
  cmd->add_option("--hosts", a->hosts, "Namespace hosts, one trainer and agent each (root)")
      ->capture_default_str();
  AddRedundancyFlags(cmd, &a->redundancy, "Copies in CPU memory (multi-host)");
  cmd->add_option("--inject", a->inject,
                  "Multi-host: faults, as gemini launch --inject "
                  "(default kill-host:1@<iterations/2>)");
  cmd->add_option("--report", a->report, "Multi-host: write the failure run's report here");
  cmd->add_option("--python", a->python, "Python with torch and the gemini package")
      ->capture_default_str();
  cmd->add_option("--budget", a->budget, "Agent memory budget")->capture_default_str();
  cmd->add_flag("--json", a->json_out, "Print a JSON summary instead of the account");
  cmd->callback([a] { SetExitCode(harness::RunDemo(*a)); });
}

}  // namespace
}  // namespace gemini::cli

GEMINI_REGISTER_COMMAND(demo, gemini::cli::AddDemo);
