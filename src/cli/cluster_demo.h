// `gemini demo --hosts N` (N > 1): the recovery demo on namespace hosts,
// run through `gemini launch` twice: once uninterrupted (the reference), once
// with a fault (default: kill a whole host mid-run, replaced by a standby),
// then the final states are compared.
#pragma once

#include <string>

#include "common/paths.h"

namespace gemini::cli {

struct ClusterDemoArgs {
  int hosts = 4;
  int iterations = 30;
  std::string redundancy = "copies:2";  // As --redundancy of gemini launch.
  std::string inject;                   // Default: kill-host:1@<iterations/2>.
  std::string report;
  std::string python = DefaultPython();
  bool json = false;
};

int RunClusterDemo(const ClusterDemoArgs& a);

}  // namespace gemini::cli
