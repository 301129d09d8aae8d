// Device variants of `gemini bench capture` (`--device <name>`).
//
// Code built only with an accelerator registers its benchmark here at static
// initialization (bench/gpu_capture_bench.cu: "cuda", with -DGEMINI_CUDA=ON);
// capture_bench.cc dispatches to it, so the CPU-only build has no device code.
#pragma once

#include <functional>
#include <map>
#include <string>

namespace gemini::cli {

struct DeviceCaptureArgs {
  std::string bytes;
  int tensors = 64;
  int threads = 1;
  int repeats = 5;
  bool json = false;
};

using DeviceCaptureFn = std::function<int(const DeviceCaptureArgs&)>;

// device name -> benchmark (returns the exit code).
std::map<std::string, DeviceCaptureFn>& DeviceCaptureBenches();

}  // namespace gemini::cli
