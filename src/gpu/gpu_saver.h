// GpuSaver: checkpoints device tensors into the agent's shared memory.
//
// The trainer's GPU data path. Submit() records an event on the caller's
// (compute) stream and returns; a worker thread then asks the agent for the
// in-progress slot (AgentClient::BeginSave), page-locks the slot's mapping
// once (PinnedRegistry, cached per mapping), enqueues one cudaMemcpyAsync per
// tensor on a dedicated copy stream (after the compute stream's event), waits
// for the copies and commits with one CRC32C per chunk. The CRCs come from one
// of two places:
// - GPU (default): a kernel on a second stream checksums the tensors where
//   they are, in spans cut at chunk and entry boundaries
//   (store/chunk_spans.h), beside the copies; the host folds the span
//   registers into chunk CRCs and never reads the copied bytes back (at
//   ~50 GiB/s of DMA, rereading them competed for host memory bandwidth).
// - host: an event (blocking sync) is recorded after every `kSegment` bytes
//   of the region, and `copy_threads` CRC threads, alive for the whole save,
//   checksum each segment's chunks of the host copy as soon as its event
//   completes, while the next segment is still in flight.
// The manifest and CRCs are the CPU path's, so a shard captured from the GPU
// loads, replicates and recovers like any other.
//
// BeforeStep(stream) is called before the next optimizer step: it returns at
// once if the copies have finished; otherwise it waits (on the host) only
// until they are enqueued and then makes `stream` wait for them on the GPU
// (cudaStreamWaitEvent), so the host never blocks on the copy itself.
// The source tensors must stay allocated until Wait() returns or the next
// Submit() (which first waits for the previous save).
//
// Restore() loads a committed shard back into device memory: it verifies
// every chunk's CRC32C on the host, copies with cudaMemcpyAsync, and once the
// copies are done verifies the slot again: the agent may reuse a slot for a
// newer save while an old one is read, and the bytes the copies took then
// pass only if the slot held the checked bytes before and after them.
// Thread-safe; the worker is joined by the destructor.
#pragma once

#include <cuda_runtime.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "gpu/chunk_crc_kernel.h"
#include "gpu/pinned.h"
#include "store/async_saver.h"
#include "store/chunk_spans.h"
#include "store/client.h"

namespace gemini {

struct GpuSaveRequest {
  // tensors[i].data: device pointers, or host pointers (copied by the worker
  // with memcpy when the save starts; they must not change before Wait()).
  SaveRequest save;
  cudaStream_t ready_stream = nullptr;  // Copies start after this stream's work so far.
  bool gpu_crc = true;                  // CRC32C on the GPU (else on host threads).
};

struct GpuSaveStats {
  int64_t iteration = -1;
  uint64_t bytes = 0;
  bool pinned = false;   // The slot was page-locked (false: pageable fallback).
  double begin_s = 0;    // Agent Begin round trip (+ first-time pinning).
  double pin_s = 0;      // Of which page-locking the slot (0: it already was, once per slot).
  double enqueue_s = 0;  // Enqueuing the copies.
  double copy_s = 0;     // Submit() to the copies' completion and last CRC.
  double crc_s = 0;      // Host CRC work: busiest thread (host CRCs), or folding (GPU CRCs).
  bool gpu_crc = false;  // The CRCs were computed on the GPU.
  double total_s = 0;    // Submit() to commit acknowledged.
  int host_waits = 0;    // BeforeStep() calls that waited for the enqueue.
  int gpu_waits = 0;     // BeforeStep() calls that made a stream wait.
};

// A piece of a shard to restore: `length` bytes at `region_offset` of the
// shard's data region go to `dst` (device or host memory).
struct RestorePiece {
  uint64_t region_offset = 0;
  void* dst = nullptr;
  uint64_t length = 0;
};

struct RestoreStats {
  double verify_s = 0;   // CRC32C of every chunk.
  double pin_s = 0;      // Page-locking the slot (0 when already pinned or not asked).
  double copy_s = 0;     // Host-to-device copies.
  double recheck_s = 0;  // CRC32C of every chunk again, after the copies.
  bool pinned = false;
  uint64_t bytes = 0;
};

class GpuSaver {
 public:
  static constexpr uint64_t kSegment = 64ull << 20;  // Bytes between CRC events.

  // Connects its own client to the agent at socket_path; copies run on
  // `device` (the caller's current device when -1).
  static Result<std::unique_ptr<GpuSaver>> Create(const std::string& socket_path, int device = -1);
  ~GpuSaver();
  GpuSaver(const GpuSaver&) = delete;
  GpuSaver& operator=(const GpuSaver&) = delete;

  Status Submit(GpuSaveRequest request);
  Status BeforeStep(cudaStream_t stream);
  Status Wait(std::chrono::milliseconds timeout = std::chrono::minutes(10));
  bool InFlight();
  GpuSaveStats LastStats();

  AgentClient* client() { return client_.get(); }
  cudaStream_t copy_stream() const { return stream_; }
  // Verifies shard (threads CRC threads), then copies pieces to their
  // destinations on `stream` and synchronizes it. pin: page-lock the slot
  // first (cached) instead of copying from pageable memory.
  Result<RestoreStats> Restore(const OpenShard& shard, const std::vector<RestorePiece>& pieces,
                               cudaStream_t stream, int threads, bool pin);

 private:
  GpuSaver(std::unique_ptr<AgentClient> client, int device);
  Status Init();
  void Run();
  struct Mark {  // Once `event` completes, bytes [0, end) of the region are copied.
    cudaEvent_t event;
    uint64_t end;
  };
  // Begin, pin, enqueue: everything up to the copies being on the stream.
  Result<SaveGrant> Enqueue(const SaveRequest& r, bool gpu_crc, GpuSaveStats* stats);
  // GPU CRCs: cuts the region into spans and enqueues their checksums on
  // crc_stream_ (device sources) or computes them now (padding, host sources).
  Status EnqueueSpanCrcs(const SaveRequest& r, const SaveGrant& g,
                         const std::vector<bool>& on_device);
  // After done_: the chunk CRCs from the span registers.
  Result<std::vector<uint32_t>> FoldSpanCrcs(const SaveGrant& g, GpuSaveStats* stats);
  Status Reserve(size_t spans);
  Status RecordMark(uint64_t end);
  // Waits for each mark and checksums the chunks it completes.
  Result<std::vector<uint32_t>> ChecksumAsCopied(const SaveGrant& g, int threads,
                                                 GpuSaveStats* stats);

  std::unique_ptr<AgentClient> client_;
  int device_;
  PinnedRegistry pinned_;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t ready_ = nullptr;      // Recorded on the compute stream by Submit().
  cudaEvent_t done_ = nullptr;       // Recorded on stream_ after the copies.
  std::vector<cudaEvent_t> events_;  // Pool for marks (worker only).
  std::vector<Mark> marks_;          // This save's marks (worker only).
  // GPU CRCs (worker only): this save's spans, each one's register (host
  // spans filled at once, device ones from raw_host_ via device_index_).
  cudaStream_t crc_stream_ = nullptr;
  cudaEvent_t crc_done_ = nullptr;
  std::vector<ChunkSpan> spans_;
  std::vector<uint32_t> span_raw_;
  std::vector<int64_t> device_index_;  // Span -> its slot in the device arrays, or -1.
  size_t capacity_ = 0;                // Of the four arrays below, in spans.
  DeviceSpan* spans_host_ = nullptr;   // Page-locked staging of the span list.
  DeviceSpan* spans_dev_ = nullptr;
  uint32_t* raw_dev_ = nullptr;
  uint32_t* raw_host_ = nullptr;  // Page-locked.

  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<GpuSaveRequest> pending_;
  bool busy_ = false;      // A save is pending or running.
  bool enqueued_ = false;  // Its copies are on the stream (or it failed before).
  bool stop_ = false;
  std::chrono::steady_clock::time_point submitted_at_;
  Status last_;
  GpuSaveStats stats_;
  std::thread worker_;
};

}  // namespace gemini
