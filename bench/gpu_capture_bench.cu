// `gemini bench capture --device cuda` (built with -DGEMINI_CUDA=ON).
//
// Capture of device tensors into the agent's shared memory through GpuSaver
// (Begin, pinned slot, cudaMemcpyAsync D2H on the copy stream, CRC32C per
// chunk, Commit) vs the baseline: a plain cudaMemcpyAsync of the same tensors
// into a pinned (cudaMallocHost) buffer. The CRCs are computed on the GPU
// (the default; `ratio`) and, for comparison, by --threads host threads from
// the copy (`host_crc_ratio`). All are timed on the host clock, end to end,
// over --repeats rounds after warm-up (which also pins both slots); medians
// are compared. Runs a store and agent server in this process on a private
// socket, on GPU 0 (or $GEMINI_BENCH_GPU). The last capture (GPU CRCs) is read
// back through the client (every chunk's CRC checked) and compared with the
// device bytes.
#include <cuda_runtime.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>

#include "agent/agent_server.h"
#include "capture_device.h"
#include "common/units.h"
#include "gpu/cuda_status.h"
#include "gpu/gpu_saver.h"

namespace gemini::cli {
namespace {

using Clock = std::chrono::steady_clock;

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double Since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct DeviceBuffers {
  std::vector<void*> ptrs;
  std::vector<uint64_t> sizes;
  ~DeviceBuffers() {
    for (void* p : ptrs) (void)cudaFree(p);
  }
};

// `count` device tensors of total bytes, filled with random bytes.
Status MakeTensors(uint64_t total, int count, DeviceBuffers* out) {
  std::mt19937_64 rng(42);
  uint64_t largest = total / count + 1;
  std::vector<uint64_t> host((largest + 7) / 8);
  for (auto& w : host) w = rng();
  for (int i = 0; i < count; ++i) {
    uint64_t n = total / count + (i < static_cast<int>(total % count) ? 1 : 0);
    void* p = nullptr;
    GEMINI_CUDA_RETURN_IF_ERROR(cudaMalloc(&p, n));
    out->ptrs.push_back(p);
    out->sizes.push_back(n);
    host[0] ^= rng();  // Every tensor differs.
    GEMINI_CUDA_RETURN_IF_ERROR(cudaMemcpy(p, host.data(), n, cudaMemcpyHostToDevice));
  }
  return Status::Ok();
}

Status RunCuda(const DeviceCaptureArgs& a, nlohmann::json* out) {
  auto total = ParseBytes(a.bytes);
  if (!total.ok() || *total == 0 || a.tensors < 1 || a.repeats < 1)
    return InvalidArgument("bad --bytes/--tensors/--repeats");
  int gpu = std::getenv("GEMINI_BENCH_GPU") ? std::atoi(std::getenv("GEMINI_BENCH_GPU")) : 0;
  GEMINI_CUDA_RETURN_IF_ERROR(cudaSetDevice(gpu));
  cudaDeviceProp prop{};
  GEMINI_CUDA_RETURN_IF_ERROR(cudaGetDeviceProperties(&prop, gpu));

  std::string socket = "/tmp/gemini-gpubench-" + std::to_string(getpid()) + ".sock";
  Store store(StoreOptions{.budget_bytes = 3 * *total + (1ull << 30),
                           .shm_prefix = "gemini-gpubench-" + std::to_string(getpid())});
  AgentServer server(&store, socket);
  GEMINI_RETURN_IF_ERROR(server.Start());
  GEMINI_ASSIGN_OR_RETURN(std::unique_ptr<GpuSaver> saver, GpuSaver::Create(socket, gpu));

  DeviceBuffers dev;
  GEMINI_RETURN_IF_ERROR(MakeTensors(*total, a.tensors, &dev));
  std::vector<TensorSource> sources;
  for (size_t i = 0; i < dev.ptrs.size(); ++i)
    sources.push_back({"t" + std::to_string(i),
                       Dtype::kUint8,
                       {static_cast<int64_t>(dev.sizes[i])},
                       dev.ptrs[i],
                       dev.sizes[i],
                       0});
  uint8_t* pinned = nullptr;
  GEMINI_CUDA_RETURN_IF_ERROR(cudaMallocHost(reinterpret_cast<void**>(&pinned), *total));
  std::unique_ptr<uint8_t, decltype(&cudaFreeHost)> pinned_owner(pinned, &cudaFreeHost);
  cudaStream_t stream;
  GEMINI_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));

  auto baseline = [&]() -> Status {
    uint64_t off = 0;
    for (size_t i = 0; i < dev.ptrs.size(); ++i) {
      GEMINI_CUDA_RETURN_IF_ERROR(
          cudaMemcpyAsync(pinned + off, dev.ptrs[i], dev.sizes[i], cudaMemcpyDeviceToHost, stream));
      off += dev.sizes[i];
    }
    return CudaStatus(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  };
  int64_t it = 0;
  std::vector<double> submit_ms;
  auto capture = [&](bool gpu_crc) -> Status {
    SaveRequest r{"bench", 0, 1, ++it, sources, {}};
    r.options.copy_threads = a.threads;
    auto t0 = Clock::now();
    GEMINI_RETURN_IF_ERROR(saver->Submit({std::move(r), nullptr, gpu_crc}));
    submit_ms.push_back(1e3 * Since(t0));
    return saver->Wait();
  };
  for (int w = 0; w < 2; ++w) {  // Warm-up: pins both slots, faults the pinned buffer.
    GEMINI_RETURN_IF_ERROR(baseline());
    GEMINI_RETURN_IF_ERROR(capture(w == 0));
  }
  submit_ms.clear();
  // Per repeat: the baseline, a capture with host CRCs, one with GPU CRCs
  // (the default; measured last, so it is the one read back below).
  std::vector<double> base_s, cap_s, host_s, crc_s, host_crc_s;
  bool pinned_slot = true;
  for (int r = 0; r < a.repeats; ++r) {
    auto t0 = Clock::now();
    GEMINI_RETURN_IF_ERROR(baseline());
    base_s.push_back(Since(t0));
    for (bool gpu_crc : {false, true}) {
      t0 = Clock::now();
      GEMINI_RETURN_IF_ERROR(capture(gpu_crc));
      (gpu_crc ? cap_s : host_s).push_back(Since(t0));
      GpuSaveStats st = saver->LastStats();
      (gpu_crc ? crc_s : host_crc_s).push_back(st.crc_s);
      pinned_slot = pinned_slot && st.pinned;
    }
  }
  // Read the last capture back (CRC-checked against the GPU's CRCs) and
  // compare with the device bytes.
  GEMINI_ASSIGN_OR_RETURN(OpenShard shard, saver->client()->Open("bench", 0, it));
  std::vector<uint8_t> loaded(shard.manifest.data_bytes);
  GEMINI_RETURN_IF_ERROR(AgentClient::ReadInto(shard, loaded.data(), a.threads));
  bool same = true;
  for (size_t i = 0; i < dev.ptrs.size() && same; ++i) {
    GEMINI_CUDA_RETURN_IF_ERROR(
        cudaMemcpy(pinned, dev.ptrs[i], dev.sizes[i], cudaMemcpyDeviceToHost));
    same = std::memcmp(pinned, loaded.data() + shard.manifest.entries[i].offset, dev.sizes[i]) == 0;
  }
  (void)cudaStreamDestroy(stream);
  if (!same) return DataLoss("captured bytes differ from the device tensors");

  double gib = static_cast<double>(*total) / (1ull << 30);
  double base = gib / Median(base_s), cap = gib / Median(cap_s), host = gib / Median(host_s);
  *out = {{"device", std::string("cuda:") + std::to_string(gpu)},
          {"gpu", prop.name},
          {"bytes", *total},
          {"tensors", a.tensors},
          {"crc_threads", a.threads},
          {"repeats", a.repeats},
          {"slot_pinned", pinned_slot},
          {"pinned_memcpy_gib_per_s", base},
          {"capture_gib_per_s", cap},
          {"ratio", cap / base},
          {"capture_median_s", Median(cap_s)},
          {"baseline_median_s", Median(base_s)},
          {"crc_on", "gpu"},
          {"fold_median_s", Median(crc_s)},
          {"host_crc_capture_gib_per_s", host},
          {"host_crc_ratio", host / base},
          {"host_crc_capture_median_s", Median(host_s)},
          {"crc_busy_median_s", Median(host_crc_s)},
          {"submit_blocking_ms", Median(submit_ms)},
          {"verified", same}};
  return Status::Ok();
}

int RunCudaCapture(const DeviceCaptureArgs& a) {
  nlohmann::json out;
  Status st = RunCuda(a, &out);
  if (!st.ok()) {
    std::cerr << "gemini bench capture --device cuda: " << st.ToString() << "\n";
    return 1;
  }
  if (a.json) {
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::printf("capture of %s from %s in %d tensors (CRC32C per chunk on the GPU; host: %d thread(s)):\n",
              FormatBytes(out["bytes"].get<uint64_t>()).c_str(),
              out["gpu"].get<std::string>().c_str(), a.tensors, a.threads);
  std::printf(
      "  pinned cudaMemcpyAsync  %6.2f GiB/s\n  gemini capture          %6.2f GiB/s%s\n"
      "  ratio                   %6.3f\n  with host CRCs          %6.2f GiB/s (ratio %.3f)\n"
      "  save() blocks           %6.3f ms\n",
      out["pinned_memcpy_gib_per_s"].get<double>(), out["capture_gib_per_s"].get<double>(),
      out["slot_pinned"].get<bool>() ? "" : " (slot NOT pinned)", out["ratio"].get<double>(),
      out["host_crc_capture_gib_per_s"].get<double>(), out["host_crc_ratio"].get<double>(),
      out["submit_blocking_ms"].get<double>());
  return 0;
}

const bool kRegistered = [] {
  DeviceCaptureBenches()["cuda"] = RunCudaCapture;
  return true;
}();

}  // namespace
}  // namespace gemini::cli
