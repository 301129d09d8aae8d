// Subcommand registry for the `gemini` CLI.
//
// Each subcommand file defines a function that adds a CLI11 subcommand (with
// its options and callback) to the app, and registers it at static-init time:
//
//   static void AddStatus(CLI::App& app) { auto* c = app.add_subcommand(...); ... }
//   GEMINI_REGISTER_COMMAND(status, AddStatus);
//
// Benchmarks register with GEMINI_REGISTER_BENCH(name, fn): fn receives the
// `bench` subcommand to add theirs under. The callbacks set the process exit
// code through SetExitCode(); they never call exit() themselves.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace gemini::cli {

using AddFn = std::function<void(CLI::App&)>;

struct Registration {
  std::string name;
  AddFn add;
  bool bench;
};

std::vector<Registration>& Registry();

struct Registrar {
  Registrar(std::string name, AddFn add, bool bench) {
    Registry().push_back({std::move(name), std::move(add), bench});
  }
};

// Exit code of the process once the chosen subcommand's callback returns.
void SetExitCode(int code);
int ExitCode();

}  // namespace gemini::cli

#define GEMINI_REGISTER_COMMAND(name, fn) \
  static ::gemini::cli::Registrar gemini_cmd_##name(#name, fn, false)
#define GEMINI_REGISTER_BENCH(name, fn) \
  static ::gemini::cli::Registrar gemini_bench_##name(#name, fn, true)
