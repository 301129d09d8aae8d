// `gemini fetch --rank R [--iteration T] [--from HOST]`: asks this machine's
// agent (multi-machine mode) to fetch a shard from a peer holder into its
// memory, CRC-verified; a replacement machine does this for its ranks.
#include <iostream>

#include "cli/command.h"
#include "common/paths.h"
#include "store/client.h"

namespace gemini::cli {
namespace {

struct FetchArgs {
  std::string socket = DefaultSocketPath();
  std::string job;
  uint32_t rank = 0;
  int64_t iteration = -1;
  int64_t from = -1;
};

int RunFetch(const FetchArgs& a) {
  auto client = AgentClient::Connect(a.socket);
  auto got = client.ok() ? (*client)->Fetch(a.job, a.rank, a.iteration, a.from)
                         : Result<int64_t>(client.status());
  if (!got.ok()) {
    std::cerr << "gemini fetch: " << got.status().ToString() << "\n";
    return 1;
  }
  std::cout << "fetched rank " << a.rank << " iteration " << *got << "\n";
  return 0;
}

void AddFetch(CLI::App& app) {
  auto a = std::make_shared<FetchArgs>();
  auto* cmd = app.add_subcommand("fetch", "Fetch a rank's shard from a peer into this agent");
  cmd->add_option("--socket", a->socket, "The agent's Unix socket")->capture_default_str();
  cmd->add_option("--job", a->job, "Job name")->required();
  cmd->add_option("--rank", a->rank, "Owner rank")->required();
  cmd->add_option("--iteration", a->iteration, "Iteration (default: the holder's newest)");
  cmd->add_option("--from", a->from, "Holder host id (default: any live holder)");
  cmd->callback([a] { SetExitCode(RunFetch(*a)); });
}

}  // namespace
}  // namespace gemini::cli

GEMINI_REGISTER_COMMAND(fetch, gemini::cli::AddFetch);
