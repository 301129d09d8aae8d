#include "common/paths.h"

#include <cstdlib>

namespace gemini {

std::string DefaultSocketPath() {
  const char* env = std::getenv("GEMINI_SOCKET");
  return env != nullptr && *env != '\0' ? env : "/run/gemini/agent.sock";
}

}  // namespace gemini
