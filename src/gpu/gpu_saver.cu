#include <algorithm>
#include <cstring>
#include <thread>

#include "common/crc32c.h"
#include "gpu/chunk_crc.h"
#include "gpu/cuda_status.h"
#include "gpu/gpu_saver.h"

namespace gemini {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Zeroes the bytes of [0, data_bytes) that no entry covers (alignment
// padding), so that the CRCs over the whole region are deterministic.
void ZeroPadding(uint8_t* region, const Manifest& m) {
  uint64_t pos = 0;
  for (const auto& e : m.entries) {
    if (e.offset > pos) std::memset(region + pos, 0, e.offset - pos);
    pos = std::max(pos, e.offset + e.length);
  }
  if (m.data_bytes > pos) std::memset(region + pos, 0, m.data_bytes - pos);
}

// Whether the copy engine must read p: device (or managed) memory. Host
// memory, pageable or page-locked, is copied by the CPU.
bool IsDevicePointer(const void* p) {
  cudaPointerAttributes a{};
  if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
    (void)cudaGetLastError();  // Unknown to CUDA: plain host memory.
    return false;
  }
  return a.type == cudaMemoryTypeDevice || a.type == cudaMemoryTypeManaged;
}

}  // namespace

Result<std::unique_ptr<GpuSaver>> GpuSaver::Create(const std::string& socket_path, int device) {
  if (device < 0) GEMINI_CUDA_RETURN_IF_ERROR(cudaGetDevice(&device));
  GEMINI_ASSIGN_OR_RETURN(std::unique_ptr<AgentClient> client, AgentClient::Connect(socket_path));
  std::unique_ptr<GpuSaver> s(new GpuSaver(std::move(client), device));
  GEMINI_RETURN_IF_ERROR(s->Init());
  return Result<std::unique_ptr<GpuSaver>>(std::move(s));
}

GpuSaver::GpuSaver(std::unique_ptr<AgentClient> client, int device)
    : client_(std::move(client)), device_(device) {}

Status GpuSaver::Init() {
  GEMINI_CUDA_RETURN_IF_ERROR(cudaSetDevice(device_));
  GEMINI_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  GEMINI_CUDA_RETURN_IF_ERROR(cudaEventCreateWithFlags(&ready_, cudaEventDisableTiming));
  GEMINI_CUDA_RETURN_IF_ERROR(
      cudaEventCreateWithFlags(&done_, cudaEventDisableTiming | cudaEventBlockingSync));
  GEMINI_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&crc_stream_, cudaStreamNonBlocking));
  GEMINI_CUDA_RETURN_IF_ERROR(cudaEventCreateWithFlags(&crc_done_, cudaEventDisableTiming));
  client_->SetUnmapHook([this](uint8_t* data, size_t) { pinned_.Forget(data); });
  worker_ = std::thread([this] { Run(); });
  return Status::Ok();
}

GpuSaver::~GpuSaver() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
  if (stream_ != nullptr) (void)cudaStreamSynchronize(stream_);
  if (crc_stream_ != nullptr) (void)cudaStreamSynchronize(crc_stream_);
  client_->SetUnmapHook(nullptr);
  pinned_.Clear();
  for (cudaEvent_t e : events_) (void)cudaEventDestroy(e);
  if (ready_ != nullptr) (void)cudaEventDestroy(ready_);
  if (done_ != nullptr) (void)cudaEventDestroy(done_);
  if (stream_ != nullptr) (void)cudaStreamDestroy(stream_);
  if (crc_done_ != nullptr) (void)cudaEventDestroy(crc_done_);
  if (crc_stream_ != nullptr) (void)cudaStreamDestroy(crc_stream_);
  (void)cudaFreeHost(spans_host_);
  (void)cudaFreeHost(raw_host_);
  (void)cudaFree(spans_dev_);
  (void)cudaFree(raw_dev_);
}

Status GpuSaver::Submit(GpuSaveRequest request) {
  Status prev = Wait();
  // The copies must see the step that produced these tensors: mark where the
  // compute stream is now. Nothing else uses ready_ while no save is in flight.
  GEMINI_CUDA_RETURN_IF_ERROR(cudaSetDevice(device_));
  GEMINI_CUDA_RETURN_IF_ERROR(cudaEventRecord(ready_, request.ready_stream));
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_ = std::move(request);
    busy_ = true;
    enqueued_ = false;
    submitted_at_ = Clock::now();
  }
  cv_.notify_all();
  return prev;
}

Status GpuSaver::BeforeStep(cudaStream_t stream) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!busy_) return Status::Ok();
  if (!enqueued_) {
    ++stats_.host_waits;
    cv_.wait(lock, [this] { return enqueued_ || !busy_; });
    if (!busy_) return Status::Ok();
  }
  if (!last_.ok()) return Status::Ok();  // Failed before copying: nothing to wait for.
  cudaError_t q = cudaEventQuery(done_);
  if (q == cudaSuccess) return Status::Ok();
  if (q != cudaErrorNotReady) return CudaStatus(q, "cudaEventQuery");
  ++stats_.gpu_waits;
  return CudaStatus(cudaStreamWaitEvent(stream, done_, 0), "cudaStreamWaitEvent");
}

Status GpuSaver::Wait(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!cv_.wait_for(lock, timeout, [this] { return !busy_; }))
    return DeadlineExceeded("GPU capture still in flight");
  return last_;
}

bool GpuSaver::InFlight() {
  std::lock_guard<std::mutex> lock(mu_);
  return busy_;
}

GpuSaveStats GpuSaver::LastStats() {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

Result<SaveGrant> GpuSaver::Enqueue(const SaveRequest& r, bool gpu_crc, GpuSaveStats* stats) {
  auto t0 = Clock::now();
  GEMINI_ASSIGN_OR_RETURN(SaveGrant g, client_->BeginSave(r.job, r.rank, r.world_size, r.iteration,
                                                          r.tensors, r.options));
  auto pin0 = Clock::now();
  bool was_pinned = pinned_.Covers(g.region, g.region_size);
  stats->pinned = pinned_.EnsureOrPageable(g.region, g.region_size);
  stats->pin_s = was_pinned ? 0.0 : Since(pin0);
  stats->begin_s = Since(t0);
  t0 = Clock::now();
  ZeroPadding(g.region, g.manifest);
  // Host sources (small CPU state) are copied here, at once: through the copy
  // stream a pageable copy would wait for the device copies queued before it.
  std::vector<bool> on_device(r.tensors.size(), true);
  for (size_t i = 0; i < r.tensors.size(); ++i) {
    const auto& e = g.manifest.entries[i];
    on_device[i] = IsDevicePointer(r.tensors[i].data);
    if (!on_device[i] && e.length > 0)
      std::memcpy(g.region + e.offset, r.tensors[i].data, e.length);
  }
  stats->gpu_crc = gpu_crc;
  if (gpu_crc) GEMINI_RETURN_IF_ERROR(EnqueueSpanCrcs(r, g, on_device));
  GEMINI_CUDA_RETURN_IF_ERROR(cudaStreamWaitEvent(stream_, ready_, 0));
  marks_.clear();
  uint64_t next_mark = kSegment;
  for (size_t i = 0; i < r.tensors.size(); ++i) {
    if (!on_device[i]) continue;
    const auto& e = g.manifest.entries[i];
    const auto* src = static_cast<const uint8_t*>(r.tensors[i].data);
    for (uint64_t done = 0; done < e.length;) {  // Split at segment boundaries.
      uint64_t pos = e.offset + done;
      if (pos >= next_mark) next_mark = pos / kSegment * kSegment + kSegment;
      uint64_t n = std::min(e.length - done, next_mark - pos);
      GEMINI_CUDA_RETURN_IF_ERROR(
          cudaMemcpyAsync(g.region + pos, src + done, n, cudaMemcpyDefault, stream_));
      done += n;
      if (!gpu_crc && pos + n >= next_mark) {
        GEMINI_RETURN_IF_ERROR(RecordMark(pos + n));
        next_mark = (pos + n) / kSegment * kSegment + kSegment;
      }
    }
  }
  if (gpu_crc)  // done_ also covers the kernel's reads of the tensors.
    GEMINI_CUDA_RETURN_IF_ERROR(cudaStreamWaitEvent(stream_, crc_done_, 0));
  else
    GEMINI_RETURN_IF_ERROR(RecordMark(g.manifest.data_bytes));
  GEMINI_CUDA_RETURN_IF_ERROR(cudaEventRecord(done_, stream_));
  stats->enqueue_s = Since(t0);
  stats->bytes = g.manifest.data_bytes;
  return g;
}

Status GpuSaver::Reserve(size_t spans) {
  if (spans <= capacity_) return Status::Ok();
  size_t n = std::max(spans, capacity_ * 2);
  (void)cudaFreeHost(spans_host_);
  (void)cudaFreeHost(raw_host_);
  (void)cudaFree(spans_dev_);
  (void)cudaFree(raw_dev_);
  spans_host_ = spans_dev_ = nullptr;
  raw_host_ = raw_dev_ = nullptr;
  capacity_ = 0;
  GEMINI_CUDA_RETURN_IF_ERROR(cudaMallocHost(&spans_host_, n * sizeof(DeviceSpan)));
  GEMINI_CUDA_RETURN_IF_ERROR(cudaMallocHost(&raw_host_, n * sizeof(uint32_t)));
  GEMINI_CUDA_RETURN_IF_ERROR(cudaMalloc(&spans_dev_, n * sizeof(DeviceSpan)));
  GEMINI_CUDA_RETURN_IF_ERROR(cudaMalloc(&raw_dev_, n * sizeof(uint32_t)));
  capacity_ = n;
  return Status::Ok();
}

Status GpuSaver::EnqueueSpanCrcs(const SaveRequest& r, const SaveGrant& g,
                                 const std::vector<bool>& on_device) {
  GEMINI_ASSIGN_OR_RETURN(spans_, CutChunkSpans(g.manifest));
  span_raw_.assign(spans_.size(), 0);
  device_index_.assign(spans_.size(), -1);
  size_t n = 0;
  for (size_t i = 0; i < spans_.size(); ++i)
    if (spans_[i].entry >= 0 && on_device[spans_[i].entry]) ++n;
  GEMINI_RETURN_IF_ERROR(Reserve(n));
  n = 0;
  for (size_t i = 0; i < spans_.size(); ++i) {
    const ChunkSpan& s = spans_[i];
    if (s.entry >= 0 && on_device[s.entry]) {
      const auto* src = static_cast<const uint8_t*>(r.tensors[s.entry].data);
      spans_host_[n] = {src + s.entry_offset, s.length};
      device_index_[i] = static_cast<int64_t>(n++);
    } else {  // Padding (zeroed) or a host source (copied): already in the slot.
      span_raw_[i] = RawCrc(g.region + s.offset, s.length);
    }
  }
  if (n == 0) return CudaStatus(cudaEventRecord(crc_done_, crc_stream_), "cudaEventRecord");
  GEMINI_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(spans_dev_, spans_host_, n * sizeof(DeviceSpan),
                                              cudaMemcpyHostToDevice, crc_stream_));
  GEMINI_CUDA_RETURN_IF_ERROR(cudaStreamWaitEvent(crc_stream_, ready_, 0));
  GEMINI_RETURN_IF_ERROR(
      LaunchSpanCrcs(spans_dev_, static_cast<uint32_t>(n), raw_dev_, crc_stream_));
  GEMINI_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(raw_host_, raw_dev_, n * sizeof(uint32_t),
                                              cudaMemcpyDeviceToHost, crc_stream_));
  return CudaStatus(cudaEventRecord(crc_done_, crc_stream_), "cudaEventRecord");
}

Result<std::vector<uint32_t>> GpuSaver::FoldSpanCrcs(const SaveGrant& g, GpuSaveStats* stats) {
  GEMINI_CUDA_RETURN_IF_ERROR(cudaEventSynchronize(done_));
  auto t0 = Clock::now();
  for (size_t i = 0; i < spans_.size(); ++i)
    if (device_index_[i] >= 0) span_raw_[i] = raw_host_[device_index_[i]];
  std::vector<uint32_t> crcs = FoldChunkCrcs(g.manifest, spans_, span_raw_);
  stats->crc_s = Since(t0);
  return crcs;
}

Status GpuSaver::RecordMark(uint64_t end) {
  if (marks_.size() == events_.size()) {
    cudaEvent_t e;
    // Blocking sync: the CRC threads sleep, not spin, while the copies run.
    GEMINI_CUDA_RETURN_IF_ERROR(
        cudaEventCreateWithFlags(&e, cudaEventDisableTiming | cudaEventBlockingSync));
    events_.push_back(e);
  }
  cudaEvent_t e = events_[marks_.size()];
  GEMINI_CUDA_RETURN_IF_ERROR(cudaEventRecord(e, stream_));
  marks_.push_back({e, end});
  return Status::Ok();
}

Result<std::vector<uint32_t>> GpuSaver::ChecksumAsCopied(const SaveGrant& g, int threads,
                                                         GpuSaveStats* stats) {
  // `threads` threads live for the whole save; at each mark every thread
  // checksums its contiguous share of the chunks the mark completes.
  const Manifest& m = g.manifest;
  std::vector<uint32_t> crcs(m.NumChunks());
  int n = std::max(1, threads);
  std::vector<Status> errors(n);
  std::vector<double> busy(n, 0.0);
  auto work = [&](int t) {
    uint64_t first = 0;  // First chunk not yet checksummed (by anyone).
    for (const Mark& mark : marks_) {
      uint64_t last = mark.end >= m.data_bytes ? m.NumChunks() : mark.end / m.chunk_size;
      if (last <= first) continue;
      errors[t] = CudaStatus(cudaEventSynchronize(mark.event), "cudaEventSynchronize");
      if (!errors[t].ok()) return;
      uint64_t a = first + (last - first) * t / n, b = first + (last - first) * (t + 1) / n;
      auto t0 = Clock::now();
      for (uint64_t c = a; c < b; ++c) {
        uint64_t pos = c * m.chunk_size;
        crcs[c] = Crc32c(g.region + pos, std::min(m.chunk_size, m.data_bytes - pos));
      }
      busy[t] += Since(t0);
      first = last;
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < n; ++t) pool.emplace_back(work, t);
  work(0);
  for (auto& th : pool) th.join();
  stats->crc_s = *std::max_element(busy.begin(), busy.end());
  for (const Status& e : errors) GEMINI_RETURN_IF_ERROR(e);
  return crcs;
}

void GpuSaver::Run() {
  (void)cudaSetDevice(device_);
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stop_ || pending_.has_value(); });
    if (!pending_) return;
    SaveRequest r = std::move(pending_->save);
    bool gpu_crc = pending_->gpu_crc;
    pending_.reset();
    auto submitted = submitted_at_;
    lock.unlock();

    GpuSaveStats st;
    st.iteration = r.iteration;
    Result<SaveGrant> g = Enqueue(r, gpu_crc, &st);
    Status status = g.status();
    {
      std::lock_guard<std::mutex> l(mu_);
      last_ = status;  // BeforeStep reads it: OK means the copies are enqueued.
      enqueued_ = true;
      st.host_waits = stats_.host_waits;
      st.gpu_waits = stats_.gpu_waits;
    }
    cv_.notify_all();
    if (g.ok()) {
      Result<std::vector<uint32_t>> crcs = gpu_crc
                                               ? FoldSpanCrcs(*g, &st)
                                               : ChecksumAsCopied(*g, r.options.copy_threads, &st);
      st.copy_s = Since(submitted);
      status = crcs.ok() ? client_->CommitSave(*g, *crcs) : crcs.status();
    }
    st.total_s = Since(submitted);

    lock.lock();
    st.host_waits = stats_.host_waits;
    st.gpu_waits = stats_.gpu_waits;
    stats_ = st;
    last_ = status;
    busy_ = false;
    cv_.notify_all();
  }
}

Result<RestoreStats> GpuSaver::Restore(const OpenShard& shard,
                                       const std::vector<RestorePiece>& pieces, cudaStream_t stream,
                                       int threads, bool pin) {
  const Manifest& m = shard.manifest;
  RestoreStats st;
  auto t0 = Clock::now();
  GEMINI_RETURN_IF_ERROR(
      VerifyChunksParallel(shard.data, m.data_bytes, m.chunk_size, shard.crcs, threads));
  st.verify_s = Since(t0);
  auto* data = const_cast<uint8_t*>(shard.data);
  if (pin && !pinned_.Covers(data, m.data_bytes)) {
    t0 = Clock::now();
    size_t page = 4096;
    GEMINI_RETURN_IF_ERROR(pinned_.Ensure(data, (m.data_bytes + page - 1) / page * page));
    st.pin_s = Since(t0);
  }
  st.pinned = pinned_.Covers(data, m.data_bytes);
  t0 = Clock::now();
  GEMINI_CUDA_RETURN_IF_ERROR(cudaSetDevice(device_));
  for (const auto& p : pieces) {
    if (p.length == 0) continue;
    if (p.region_offset > m.data_bytes || p.length > m.data_bytes - p.region_offset)
      return InvalidArgument("restore piece outside the shard's data");
    GEMINI_CUDA_RETURN_IF_ERROR(
        cudaMemcpyAsync(p.dst, data + p.region_offset, p.length, cudaMemcpyDefault, stream));
    st.bytes += p.length;
  }
  GEMINI_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
  st.copy_s = Since(t0);
  t0 = Clock::now();
  Status again = VerifyChunksParallel(shard.data, m.data_bytes, m.chunk_size, shard.crcs, threads);
  if (!again.ok())
    return DataLoss("the slot changed while it was copied to the GPU (a newer save reused it?): " +
                    again.message() + "; the restored tensors must be discarded");
  st.recheck_s = Since(t0);
  return st;
}

}  // namespace gemini
