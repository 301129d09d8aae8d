// `gemini version`: prints the version.
#include <iostream>

#include "cli/command.h"

namespace {
void AddVersion(CLI::App& app) {
  app.add_subcommand("version", "Print the version")->callback([] {
    std::cout << "gemini 0.1.0\n";
  });
}
}  // namespace
GEMINI_REGISTER_COMMAND(version, AddVersion);
