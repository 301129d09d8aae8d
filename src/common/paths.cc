#include "common/paths.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "common/subprocess.h"

namespace gemini {
namespace fs = std::filesystem;

namespace {

fs::path BinDir() { return fs::path(SelfExe()).parent_path(); }

bool IsExecutable(const fs::path& p) { return access(p.c_str(), X_OK) == 0; }

}  // namespace

std::string DefaultSocketPath() {
  const char* env = std::getenv("GEMINI_SOCKET");
  return env != nullptr && *env != '\0' ? env : "/run/gemini/agent.sock";
}

std::string DefaultPython() {
  if (const char* env = std::getenv("GEMINI_PYTHON"); env != nullptr && *env != '\0') return env;
  for (const fs::path& p : {BinDir() / "python3", BinDir().parent_path() / ".venv/bin/python3"}) {
    if (IsExecutable(p)) return p.string();
  }
  return "python3";
}

Result<std::string> FindOnPath(const std::string& name, const char* path) {
  if (path == nullptr) path = std::getenv("PATH");
  const std::string dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  for (size_t start = 0; start <= dirs.size();) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    const std::string dir = dirs.substr(start, end - start);
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return NotFound("command not found on PATH: " + name);
}

Result<std::string> SupportFile(const std::string& name) {
  std::error_code ec;
  for (const fs::path& p : {BinDir().parent_path() / "share/gemini" / name,
                            BinDir().parent_path() / "scripts" / name}) {
    if (fs::exists(p, ec)) return p.string();
  }
  return NotFound("support file '" + name + "' not found in " +
                  (BinDir().parent_path() / "share/gemini").string() + " (installed) or " +
                  (BinDir().parent_path() / "scripts").string() +
                  " (source build); reinstall Gemini");
}

}  // namespace gemini
