// Entry point of the `gemini` command; see command.h for how subcommands join.
#include <algorithm>
#include <iostream>

#include "cli/command.h"

namespace gemini::cli {

std::vector<Registration>& Registry() {
  static std::vector<Registration> registry;
  return registry;
}

namespace {
int g_exit_code = 0;
}  // namespace

void SetExitCode(int code) { g_exit_code = code; }
int ExitCode() { return g_exit_code; }

}  // namespace gemini::cli

int main(int argc, char** argv) {
  using namespace gemini::cli;
  CLI::App app{"gemini: in-memory checkpoints every iteration, fast failure recovery"};
  app.set_version_flag("--version", "gemini " GEMINI_VERSION);
  app.require_subcommand(1);
  auto& reg = Registry();
  std::sort(reg.begin(), reg.end(),
            [](const Registration& a, const Registration& b) { return a.name < b.name; });
  CLI::App* bench = app.add_subcommand("bench",
                                       "Benchmarks; each prints a ratio against a "
                                       "baseline measured in the same run");
  bench->require_subcommand(1);
  for (auto& r : reg) r.add(r.bench ? *bench : app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return ExitCode();
}
