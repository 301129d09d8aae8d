// `gemini demo --hosts N` (N > 1): the recovery demo on namespace hosts,
// run through `gemini launch` twice: once uninterrupted (the reference), once
// with a fault (default: kill a whole host mid-run, replaced by a standby),
// then the final states are compared. Part of `gemini demo` (demo.h).
#pragma once

#include <string>
#include <vector>

#include "common/paths.h"

namespace gemini::harness {

struct ClusterDemoArgs {
  int hosts = 4;
  int iterations = 30;
  std::string redundancy = "copies:2";  // As --redundancy of gemini launch.
  std::string inject;                   // Default: kill-host:1@<iterations/2>.
  std::string report;
  std::string python = DefaultPython();
  bool json = false;
};

// Runs both and prints the account (or, with `json`, the JSON summary on
// stdout and the rest on stderr); 0 when the final states are identical.
int RunClusterDemo(const ClusterDemoArgs& a);

// The `gemini launch` command line of one run: with `inject`, the failure
// run (one standby host, the placement shown).
std::vector<std::string> ClusterDemoLaunchArgs(const ClusterDemoArgs& a, const std::string& inject,
                                               const std::string& report);

}  // namespace gemini::harness
