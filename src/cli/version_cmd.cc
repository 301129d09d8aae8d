// `gemini version` (and `gemini --version`, set in main.cc): prints the version.
#include <iostream>

#include "cli/command.h"

namespace {
void AddVersion(CLI::App& app) {
  app.add_subcommand("version", "Print the version")->callback([] {
    std::cout << "gemini " GEMINI_VERSION "\n";
  });
}
}  // namespace
GEMINI_REGISTER_COMMAND(version, AddVersion);
