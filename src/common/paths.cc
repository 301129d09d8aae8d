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
