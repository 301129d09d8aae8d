// `gemini bench capture`: capture throughput into the store vs plain memcpy.
//
// Runs a store and agent server in this process on a private socket. The
// capture path is the trainer's: Begin over the socket, copy every tensor into
// the shared-memory slot with CRC32C per chunk, Commit. The baseline copies
// the same tensors into an ordinary (pre-faulted) buffer with memcpy. Both are
// timed over --repeats rounds after warm-up; medians are compared.
// Also measures how long a save blocks its caller for a 256 MiB state: the
// native AsyncSaver::Submit, and Python's gemini.torch.Checkpointer.save()
// when the Python beside `gemini` has torch.
// --device cuda runs the GPU variant (bench/gpu_capture_bench.cu, built with
// -DGEMINI_CUDA=ON): capture from device memory vs pinned cudaMemcpyAsync.
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "agent/agent_server.h"
#include "capture_device.h"
#include "cli/command.h"
#include "common/paths.h"
#include "common/subprocess.h"
#include "common/units.h"
#include "store/async_saver.h"
#include "store/client.h"
#include "timing.h"

namespace gemini::cli {

std::map<std::string, DeviceCaptureFn>& DeviceCaptureBenches() {
  static std::map<std::string, DeviceCaptureFn> benches;
  return benches;
}

namespace {

using Clock = std::chrono::steady_clock;

struct CaptureArgs {
  std::string device = "cpu";
  std::string bytes = "1GiB";
  int tensors = 64;
  int threads = 1;
  int repeats = 5;
  bool json = false;
  bool python = true;
};

std::vector<TensorSource> MakeSources(std::vector<std::vector<uint8_t>>& bufs, uint64_t total,
                                      int count) {
  std::vector<TensorSource> out;
  for (int i = 0; i < count; ++i) {
    uint64_t n = total / count + (i < static_cast<int>(total % count) ? 1 : 0);
    bufs.emplace_back(n);
    for (uint64_t j = 0; j < n; j += 4096) bufs.back()[j] = static_cast<uint8_t>(i + j);
    out.push_back({"t" + std::to_string(i),
                   Dtype::kUint8,
                   {static_cast<int64_t>(n)},
                   bufs.back().data(),
                   n,
                   0});
  }
  return out;
}

// Median blocking time of Python's Checkpointer.save() for a 256 MiB state, or -1.
double PythonBlockingMs(const std::string& socket) {
  const char* script =
      "import torch,time,gemini.torch as gt\n"
      "t={f'p{i}':torch.ones(4<<20) for i in range(16)}\n"  // 16 x 16 MiB = 256 MiB
      "c=gt.Checkpointer(tensors=t,job='bench-py',rng=False,overhead_budget=0)\n"
      "b=[]\n"
      "for s in range(1,8):\n"
      "  c.wait(); t0=time.perf_counter(); c.save(s); b.append((time.perf_counter()-t0)*1e3)\n"
      "c.wait(); print(sorted(b[2:])[len(b[2:])//2])\n";
  auto p = Subprocess::Start({DefaultPython(), "-c", script}, {{"GEMINI_SOCKET", socket}}, true,
                             "/dev/null");
  if (!p.ok()) return -1;
  auto line = (*p)->ReadLine(std::chrono::minutes(2));
  auto code = (*p)->Wait(std::chrono::seconds(30));
  if (!line.ok() || !code.ok() || *code != 0) return -1;
  return std::atof(line->c_str());
}

int RunCapture(const CaptureArgs& a) {
  if (a.device != "cpu") {
    auto it = DeviceCaptureBenches().find(a.device);
    if (it == DeviceCaptureBenches().end()) {
      std::cerr << "gemini bench capture: no --device " << a.device
                << " in this build (GPU: configure with -DGEMINI_CUDA=ON)\n";
      return 2;
    }
    return it->second({a.bytes, a.tensors, a.threads, a.repeats, a.json});
  }
  auto total = ParseBytes(a.bytes);
  if (!total.ok() || *total == 0 || a.tensors < 1 || a.repeats < 1) {
    std::cerr << "gemini bench capture: bad --bytes/--tensors/--repeats\n";
    return 2;
  }
  std::string socket = "/tmp/gemini-bench-" + std::to_string(getpid()) + ".sock";
  Store store(StoreOptions{.budget_bytes = 3 * *total + (1ull << 30),
                           .shm_prefix = "gemini-bench-" + std::to_string(getpid())});
  AgentServer server(&store, socket);
  Status st = server.Start();
  auto client = st.ok() ? AgentClient::Connect(socket) : Result<std::unique_ptr<AgentClient>>(st);
  if (!client.ok()) {
    std::cerr << "gemini bench capture: " << client.status().ToString() << "\n";
    return 1;
  }
  std::vector<std::vector<uint8_t>> bufs;
  auto sources = MakeSources(bufs, *total, a.tensors);
  std::vector<uint8_t> dst(*total);
  std::memset(dst.data(), 1, dst.size());  // Pre-fault, as the slots are.
  SaveOptions opts;
  opts.copy_threads = a.threads;
  std::vector<double> memcpy_s, capture_s;
  int64_t it = 0;
  for (int w = 0; w < 2; ++w) st = (*client)->Save("bench", 0, 1, ++it, sources, opts);
  for (int r = 0; r < a.repeats && st.ok(); ++r) {
    memcpy_s.push_back(TimeIt([&] {
      uint64_t off = 0;
      for (const auto& s : sources) {
        std::memcpy(dst.data() + off, s.data, s.length);
        off += s.length;
      }
    }));
    capture_s.push_back(TimeIt([&] { st = (*client)->Save("bench", 0, 1, ++it, sources, opts); }));
  }
  if (!st.ok()) {
    std::cerr << "gemini bench capture: " << st.ToString() << "\n";
    return 1;
  }
  // Blocking time of an asynchronous save of 256 MiB (native submit).
  std::vector<std::vector<uint8_t>> small_bufs;
  auto small = MakeSources(small_bufs, 256ull << 20, 16);
  AsyncSaver saver(client->get());
  std::vector<double> submit_ms;
  for (int r = 0; r < 5; ++r) {
    (void)saver.Wait();
    submit_ms.push_back(1e3 * TimeIt([&] {
                          (void)saver.Submit(SaveRequest{"bench-async", 0, 1, r + 1, small, opts});
                        }));
  }
  st = saver.Wait();
  double py_ms = a.python ? PythonBlockingMs(socket) : -1;
  double gib = static_cast<double>(*total) / (1ull << 30);
  double memcpy_gbps = gib / Median(memcpy_s), capture_gbps = gib / Median(capture_s);
  nlohmann::json out{{"bytes", *total},
                     {"tensors", a.tensors},
                     {"copy_threads", a.threads},
                     {"repeats", a.repeats},
                     {"memcpy_gib_per_s", memcpy_gbps},
                     {"capture_gib_per_s", capture_gbps},
                     {"ratio", capture_gbps / memcpy_gbps},
                     {"native_submit_blocking_ms_256mib", Median(submit_ms)},
                     {"python_save_blocking_ms_256mib", py_ms},
                     {"blocking_ms_256mib", py_ms >= 0 ? py_ms : Median(submit_ms)}};
  if (a.json) {
    std::cout << out.dump(2) << "\n";
  } else {
    std::printf("capture of %s in %d tensors (CRC32C per chunk, %d copy thread(s)):\n",
                FormatBytes(*total).c_str(), a.tensors, a.threads);
    std::printf(
        "  plain memcpy       %6.2f GiB/s\n  gemini capture     %6.2f GiB/s\n"
        "  ratio              %6.3f\n",
        memcpy_gbps, capture_gbps, capture_gbps / memcpy_gbps);
    std::printf(
        "save() blocks the caller for a 256 MiB state: %.3f ms (Python), %.3f ms "
        "(native submit)\n",
        py_ms, Median(submit_ms));
  }
  return st.ok() ? 0 : 1;
}

void AddCapture(CLI::App& bench) {
  auto a = std::make_shared<CaptureArgs>();
  auto* cmd = bench.add_subcommand("capture", "Capture into the store vs plain memcpy");
  cmd->add_option("--device", a->device, "cpu, or cuda (GEMINI_CUDA builds)")
      ->capture_default_str();
  cmd->add_option("--bytes", a->bytes, "State size, e.g. 1GiB")->capture_default_str();
  cmd->add_option("--tensors", a->tensors, "Number of tensors")->capture_default_str();
  cmd->add_option("--threads", a->threads, "Copy threads")->capture_default_str();
  cmd->add_option("--repeats", a->repeats, "Timed rounds")->capture_default_str();
  cmd->add_flag("--json", a->json, "JSON output");
  cmd->add_flag("!--no-python", a->python, "Skip the Python save() measurement");
  cmd->callback([a] { SetExitCode(RunCapture(*a)); });
}

}  // namespace
}  // namespace gemini::cli

GEMINI_REGISTER_BENCH(capture, gemini::cli::AddCapture);
