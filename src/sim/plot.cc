#include "sim/plot.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "common/paths.h"
#include "common/subprocess.h"

namespace gemini::sim {
namespace {

std::string FindPlotScript(const std::string& given) {
  if (!given.empty()) return given;
  if (const char* env = std::getenv("GEMINI_PLOT_SCRIPT")) return env;
  auto found = SupportFile("plot_figures.py");
  return found.ok() ? *found : "";
}

Result<std::string> WriteData(const nlohmann::json& data, const std::string& given) {
  std::string path = given;
  if (path.empty()) {
    char tmpl[] = "/tmp/gemini-figure-XXXXXX.json";
    int fd = mkstemps(tmpl, 5);
    if (fd < 0) return ErrnoStatus("mkstemps", errno);
    close(fd);
    path = tmpl;
  }
  std::ofstream out(path);
  out << data.dump(1) << "\n";
  if (!out) return Internal("cannot write " + path);
  return path;
}

Status RunScript(const PlotOptions& opt, const std::string& data_path) {
  std::string script = FindPlotScript(opt.script);
  if (script.empty())
    return NotFound("plot_figures.py not found (reinstall Gemini or pass --plot-script)");
  // The script's output and errors go where this process's go.
  GEMINI_ASSIGN_OR_RETURN(
      auto proc,
      Subprocess::Start({opt.python, script, "--data", data_path, "--out", opt.png}, {}, false));
  GEMINI_ASSIGN_OR_RETURN(int code, proc->Wait(std::chrono::minutes(10)));
  if (code != 0)
    return Internal("plot script " + script + " failed (exit " + std::to_string(code) + ")");
  return Status::Ok();
}

}  // namespace

Status PlotFigure(const nlohmann::json& data, const PlotOptions& opt) {
  GEMINI_ASSIGN_OR_RETURN(std::string path, WriteData(data, opt.data_path));
  Status st = opt.png.empty() ? Status::Ok() : RunScript(opt, path);
  if (opt.data_path.empty()) std::remove(path.c_str());
  return st;
}

}  // namespace gemini::sim
