// The --replicas / --redundancy pair shared by `gemini agent`, `launch`,
// `demo` and `placement`: copies:M (full copies, --replicas M) or rs:K+F
// (Reed–Solomon fragments, include/gemini/placement.h). The two exclude each other.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "gemini/placement.h"

namespace gemini::cli {

struct RedundancyFlags {
  int replicas = 0;        // 0: not given.
  std::string redundancy;  // "": not given.
};

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

// What the flags ask for; `fallback` when neither was given.
inline Result<Redundancy> ToRedundancy(const RedundancyFlags& f,
                                       Redundancy fallback = Redundancy::Copies(2)) {
  if (!f.redundancy.empty()) return ParseRedundancy(f.redundancy);
  if (f.replicas != 0) {
    if (f.replicas < 1) return InvalidArgument("--replicas must be at least 1");
    return Redundancy::Copies(f.replicas);
  }
  return fallback;
}

}  // namespace gemini::cli
