#include <mutex>

#include "common/crc32c_pieces.h"
#include "gpu/chunk_crc_kernel.h"
#include "gpu/cuda_status.h"

namespace gemini {
namespace {

namespace cp = crc32c_pieces;
constexpr int kThreads = 1024;  // 4 KiB pieces of a 4 MiB chunk: enough warps to hide load latency.

// Copies the slicing tables into the block's shared memory.
__device__ void LoadSlice(uint32_t (*slice)[256], const cp::Tables* tables) {
  for (int i = threadIdx.x; i < 4 * 256; i += blockDim.x)
    slice[i / 256][i % 256] = tables->slice[i / 256][i % 256];
  __syncthreads();
}

// g(0, p[lo..hi)): the unaligned head bytewise, 16-byte words, the tail bytewise.
__device__ uint32_t PieceRegister(const uint32_t (*slice)[256], const uint8_t* p, uint64_t lo,
                                  uint64_t hi) {
  uint32_t s = 0;
  uint64_t i = lo;
  uint64_t head = (16 - (reinterpret_cast<uintptr_t>(p + i) & 15)) & 15;
  if (head > hi - i) head = hi - i;
  s = cp::Feed(slice, s, p + i, head);
  i += head;
  for (; i + 16 <= hi; i += 16) {
    uint4 v = *reinterpret_cast<const uint4*>(p + i);
    s = cp::FeedWord(slice, s, v.x);
    s = cp::FeedWord(slice, s, v.y);
    s = cp::FeedWord(slice, s, v.z);
    s = cp::FeedWord(slice, s, v.w);
  }
  return cp::Feed(slice, s, p + i, hi - i);
}

__global__ void __launch_bounds__(kThreads)
    ChunkCrcKernel(const uint8_t* data, uint64_t n, uint64_t chunk, uint32_t* out,
                   const cp::Tables* tables) {
  __shared__ uint32_t slice[4][256];
  __shared__ uint32_t raw[kThreads];
  LoadSlice(slice, tables);
  uint64_t base = blockIdx.x * chunk;
  uint64_t len = n - base < chunk ? n - base : chunk;
  uint64_t piece = ((len + kThreads - 1) / kThreads + 15) / 16 * 16;
  uint64_t lo = threadIdx.x * piece, hi = lo + piece < len ? lo + piece : len;
  uint32_t s = lo < hi ? PieceRegister(slice, data + base, lo, hi) : 0;
  raw[threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.x == 0) {
    cp::Folder f;
    for (int t = 0; t < kThreads; ++t) {
      uint64_t a = t * piece;
      if (a >= len) break;
      uint64_t b = a + piece < len ? a + piece : len;
      f.Add(tables->shift, raw[t], b - a);
    }
    out[blockIdx.x] = f.Crc();
  }
}

// One block per span: each thread takes a contiguous piece (a multiple of 16
// bytes, its unaligned head and the span's tail bytewise), then the pieces'
// registers are folded pairwise in log2(kThreads) rounds.
__global__ void __launch_bounds__(kThreads)
    SpanCrcKernel(const DeviceSpan* spans, uint32_t* raw_out, const cp::Tables* tables) {
  __shared__ uint32_t slice[4][256];
  __shared__ uint32_t raw[kThreads];
  __shared__ uint64_t len[kThreads];
  LoadSlice(slice, tables);
  const DeviceSpan span = spans[blockIdx.x];
  uint64_t piece = ((span.length + kThreads - 1) / kThreads + 15) / 16 * 16;
  uint64_t lo = threadIdx.x * piece < span.length ? threadIdx.x * piece : span.length;
  uint64_t hi = lo + piece < span.length ? lo + piece : span.length;
  uint32_t s = PieceRegister(slice, static_cast<const uint8_t*>(span.data), lo, hi);
  raw[threadIdx.x] = s;
  len[threadIdx.x] = hi - lo;
  __syncthreads();
  // g(0, A || B) = g(0, B) ^ Z_|B|(g(0, A)).
  for (unsigned stride = 1; stride < kThreads; stride <<= 1) {
    unsigned t = threadIdx.x;
    if (t % (2 * stride) == 0) {
      raw[t] = raw[t + stride] ^ cp::Shift(tables->shift, raw[t], len[t + stride]);
      len[t] += len[t + stride];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) raw_out[blockIdx.x] = raw[0];
}

// The tables, in device memory of the current device (one copy per device).
Result<const cp::Tables*> DeviceTables() {
  static std::mutex mu;
  static const cp::Tables* tables[64] = {};
  int dev = 0;
  GEMINI_CUDA_RETURN_IF_ERROR(cudaGetDevice(&dev));
  if (dev < 0 || dev >= 64) return InvalidArgument("device index out of range");
  std::lock_guard<std::mutex> lock(mu);
  if (tables[dev] == nullptr) {
    cp::Tables host;
    host.Fill();
    cp::Tables* d = nullptr;
    GEMINI_CUDA_RETURN_IF_ERROR(cudaMalloc(&d, sizeof(cp::Tables)));
    GEMINI_CUDA_RETURN_IF_ERROR(cudaMemcpy(d, &host, sizeof(host), cudaMemcpyHostToDevice));
    tables[dev] = d;
  }
  return tables[dev];
}

}  // namespace

Status LaunchChunkCrcs(const void* data, uint64_t n, uint64_t chunk, uint32_t* out,
                       cudaStream_t stream) {
  if (n == 0) return Status::Ok();
  if (chunk == 0 || chunk % 16 != 0) return InvalidArgument("CRC chunk must be a multiple of 16");
  if (reinterpret_cast<uintptr_t>(data) % 16 != 0)
    return InvalidArgument("CRC data must be 16-byte aligned");
  GEMINI_ASSIGN_OR_RETURN(const cp::Tables* tables, DeviceTables());
  uint64_t blocks = (n + chunk - 1) / chunk;
  if (blocks > 0x7fffffffull) return InvalidArgument("too many CRC chunks");
  ChunkCrcKernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
      static_cast<const uint8_t*>(data), n, chunk, out, tables);
  return CudaStatus(cudaGetLastError(), "ChunkCrcKernel launch");
}

Status LaunchSpanCrcs(const DeviceSpan* spans, uint32_t count, uint32_t* raw,
                      cudaStream_t stream) {
  if (count == 0) return Status::Ok();
  if (count > 0x7fffffffu) return InvalidArgument("too many CRC spans");
  GEMINI_ASSIGN_OR_RETURN(const cp::Tables* tables, DeviceTables());
  SpanCrcKernel<<<count, kThreads, 0, stream>>>(spans, raw, tables);
  return CudaStatus(cudaGetLastError(), "SpanCrcKernel launch");
}

}  // namespace gemini
