// Command-line flags of traffic interleaving (agent/interleave/interleaver.h), shared by
// `gemini agent` and `gemini launch`. Their values (InterleaveFlags,
// ToInterleaveOptions) are agent/settings.h's.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "agent/settings.h"

namespace gemini::cli {

inline void AddInterleaveFlags(CLI::App* cmd, InterleaveFlags* f) {
  cmd->add_option("--interleave", f->mode,
                  "Checkpoint traffic: interleave (in idle spans), naive (right after the "
                  "step, blocking), none (no replication)")
      ->capture_default_str();
  cmd->add_option("--buffer", f->buffer, "Receive buffer R per replica stream")
      ->capture_default_str();
  cmd->add_option("--sub-buffers", f->sub_buffers, "p: chunks of R/p, p in flight")
      ->capture_default_str();
  cmd->add_option("--mu", f->mu, "Usable part of each idle span")->capture_default_str();
  cmd->add_option("--warmup", f->warmup, "Iterations profiled before interleaving")
      ->capture_default_str();
  cmd->add_option("--replication-nice", f->replication_nice,
                  "CPU nice of the threads moving replicas (0: same as training)")
      ->capture_default_str();
}

}  // namespace gemini::cli
