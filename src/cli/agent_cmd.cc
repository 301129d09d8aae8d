// `gemini agent`: runs this machine's checkpoint store until SIGTERM/SIGINT.
// The checkpoint memory belongs to the agent: stopping or restarting the
// agent frees it (trainers' crashes do not).
#include <signal.h>
#include <sys/stat.h>

#include <iostream>

#include "agent/agent_server.h"
#include "cli/command.h"
#include "common/log.h"
#include "common/paths.h"
#include "common/units.h"
#include "store/store.h"

namespace gemini::cli {
namespace {

struct AgentArgs {
  std::string socket = DefaultSocketPath();
  std::string budget = "8GiB";
  std::string shm_prefix = "gemini";
};

int RunAgent(const AgentArgs& args) {
  auto budget = ParseBytes(args.budget);
  if (!budget.ok()) {
    std::cerr << "gemini agent: --budget: " << budget.status().message() << "\n";
    return 2;
  }
  // Block the stop signals in every thread; the main thread waits for them.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  std::string dir = args.socket.substr(0, args.socket.rfind('/'));
  if (!dir.empty()) mkdir(dir.c_str(), 0700);
  Store store(StoreOptions{*budget, args.shm_prefix});
  AgentServer server(&store, args.socket);
  Status st = server.Start();
  if (!st.ok()) {
    std::cerr << "gemini agent: " << st.ToString() << "\n";
    return 1;
  }
  std::cerr << "gemini agent: serving on " << args.socket << " (budget " << FormatBytes(*budget)
            << ", pid " << getpid() << ")" << std::endl;
  int sig = 0;
  sigwait(&stop, &sig);
  std::cerr << "gemini agent: signal " << sig << ", shutting down (checkpoint memory freed)"
            << std::endl;
  server.Stop();
  return 0;
}

void AddAgent(CLI::App& app) {
  auto args = std::make_shared<AgentArgs>();
  auto* cmd = app.add_subcommand("agent", "Run this machine's checkpoint store (one per machine)");
  cmd->add_option("--socket", args->socket, "Unix socket trainers connect to ($GEMINI_SOCKET)")
      ->capture_default_str();
  cmd->add_option("--budget", args->budget, "Shared memory the store may use, e.g. 16GiB")
      ->capture_default_str();
  cmd->add_option("--shm-prefix", args->shm_prefix, "Name prefix of /dev/shm objects")
      ->capture_default_str();
  cmd->callback([args] { SetExitCode(RunAgent(*args)); });
}

}  // namespace
}  // namespace gemini::cli

GEMINI_REGISTER_COMMAND(agent, gemini::cli::AddAgent);
