// The --replicas / --redundancy pair shared by `gemini agent`, `launch`,
// `demo` and `placement`: copies:M (full copies, --replicas M) or rs:K+F
// (Reed–Solomon fragments, include/gemini/placement.h). The two exclude each other.
// Their values (RedundancyFlags, ToRedundancy) are agent/settings.h's.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "agent/settings.h"

namespace gemini::cli {

inline void AddRedundancyFlags(CLI::App* cmd, RedundancyFlags* f,
                               const std::string& replicas_help) {
  auto* replicas = cmd->add_option("--replicas", f->replicas, replicas_help + " (= copies:M)");
  auto* redundancy = cmd->add_option(
      "--redundancy", f->redundancy,
      "copies:M (full copies) or rs:K+F (Reed-Solomon: K data and F parity fragments on the "
      "K+F machines of a group; default copies:2)");
  replicas->excludes(redundancy);
  redundancy->excludes(replicas);
}

}  // namespace gemini::cli
