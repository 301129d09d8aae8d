// Default locations, overridable from the environment (declared here, in one place):
//   GEMINI_SOCKET   the agent's Unix socket (default /run/gemini/agent.sock)
//   GEMINI_PYTHON   the Python that runs trainers and helper scripts
//
// Where the rest of an installation lies is found from the running `gemini`
// binary. Two layouts exist:
//   installed (pip):  <prefix>/bin/gemini, <prefix>/bin/python3 (a venv),
//                     <prefix>/share/gemini/{cluster, plot_*.py}
//   source build:     <repo>/build/gemini, <repo>/.venv/bin/python3,
//                     <repo>/scripts/{cluster, plot_*.py}
#pragma once

#include <string>

#include "common/status.h"

namespace gemini {

std::string DefaultSocketPath();

// The Python that has the `gemini` package and torch: $GEMINI_PYTHON, else the
// python3 beside this binary (a venv's bin/), else <repo>/.venv/bin/python3 for
// a source build, else `python3` (searched on PATH).
std::string DefaultPython();

// The executable `name` in the directories of `path` (a PATH value; null:
// $PATH, else /usr/local/bin:/usr/bin:/bin), as execvp would find it.
// NotFound naming it when no directory has it.
Result<std::string> FindOnPath(const std::string& name, const char* path = nullptr);

// A support file shipped with Gemini (`cluster`, `plot_figures.py`, ...):
// <prefix>/share/gemini/NAME when installed, <repo>/scripts/NAME in a source tree.
Result<std::string> SupportFile(const std::string& name);

}  // namespace gemini
