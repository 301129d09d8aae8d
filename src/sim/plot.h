// Drawing a figure's data (figures.h) with scripts/plot_figures.py, the
// Python script installed beside `gemini` (share/gemini/; it needs
// matplotlib): the data goes to a JSON file (`data_path`, or a temporary file
// removed afterwards) and the script draws it into a PNG.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "common/status.h"

namespace gemini::sim {

struct PlotOptions {
  std::string python;     // The Python with matplotlib.
  std::string script;     // Empty: $GEMINI_PLOT_SCRIPT, else the installed plot_figures.py.
  std::string png;        // Where the figure goes; empty: only the data file is written.
  std::string data_path;  // Keep the data here; empty: a temporary file.
};

// Writes the data file and, when opt.png is set, runs the script on it.
// NotFound when no script is found, Internal when it fails (its stderr is
// the caller's).
Status PlotFigure(const nlohmann::json& data, const PlotOptions& opt);

}  // namespace gemini::sim
