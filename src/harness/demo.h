// `gemini demo`: the first promise, end to end on one machine.
//
// Starts an agent, trains a small GPT-style model (python/gemini/demo_train.py,
// PyTorch DDP over gloo) checkpointing every iteration, SIGKILLs every trainer
// mid-run, restarts them, and shows that they resume from the agent's memory
// and continue exactly as an uninterrupted reference run does.
//
// With --hosts N > 1 (root) the same story on N namespace hosts through the
// harness (cluster_demo.h). The flags are src/cli/demo_cmd.cc's; RunDemo
// takes their values, prints the account (or with --json a JSON summary on
// stdout, the progress on stderr) and returns the exit status: 0 when the
// resumed run matches the uninterrupted one, 1 when not or on failure, 2 for
// arguments that make no demo.
#pragma once

#include <string>

#include "common/paths.h"
#include "common/status.h"
#include "launch/job.h"

namespace gemini::harness {

struct DemoArgs {
  int iterations = 50;
  int kill_at = -1;  // Default: 60% into the run.
  int nproc = 2;     // Trainers on one machine (--hosts 1).
  int hosts = 4;     // Namespace hosts, one trainer and agent each (needs root); 1: one machine.
  RedundancyFlags redundancy;
  std::string inject;  // --hosts > 1: the fault (default: kill host 1 mid-run).
  std::string report;
  std::string python = DefaultPython();
  std::string budget = "2GiB";
  bool json_out = false;
};

int RunDemo(DemoArgs a);

// The single-machine demo's --kill-at: as given, or 60% into the run;
// InvalidArgument outside [1, iterations) or with hosts < 1.
Result<int> KillAt(const DemoArgs& a);

}  // namespace gemini::harness
