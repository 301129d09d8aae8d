// Entry point of the `gemini` command; see command.h for how subcommands join.
#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

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
  // `gemini launch` takes everything from the training script on as the
  // script's (prefix_command); a "--" before the script is optional there,
  // but CLI11 would hand what follows one to the top-level app. Drop it.
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && args[0] == "launch")
    if (auto dash = std::find(args.begin(), args.end(), "--"); dash != args.end()) args.erase(dash);
  std::reverse(args.begin(), args.end());
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return ExitCode();
}
