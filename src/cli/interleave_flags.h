// Command-line flags of traffic interleaving (agent/interleave/interleaver.h), shared by
// `gemini agent` and `gemini launch`.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "agent/interleave/interleaver.h"
#include "common/units.h"

namespace gemini::cli {

struct InterleaveFlags {
  std::string mode = "interleave";
  std::string buffer = "128MiB";
  uint32_t sub_buffers = 4;
  double mu = 0.9;
  int warmup = 20;
  int replication_nice = 10;
};

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

inline Result<InterleaveOptions> ToInterleaveOptions(const InterleaveFlags& f) {
  InterleaveOptions o;
  GEMINI_ASSIGN_OR_RETURN(o.mode, ParseInterleaveMode(f.mode));
  GEMINI_ASSIGN_OR_RETURN(o.buffer_bytes, ParseBytes(f.buffer));
  o.sub_buffers = f.sub_buffers;
  o.mu = f.mu;
  o.warmup_iterations = f.warmup;
  o.replication_nice = f.replication_nice;
  GEMINI_RETURN_IF_ERROR(ValidateInterleaveOptions(o));
  return o;
}

}  // namespace gemini::cli
