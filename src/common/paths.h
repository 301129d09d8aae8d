// Default locations, overridable from the environment (declared here, in one place):
//   GEMINI_SOCKET   the agent's Unix socket (default /run/gemini/agent.sock)
#pragma once

#include <string>

namespace gemini {

std::string DefaultSocketPath();

}  // namespace gemini
