// CRC32C of device memory computed on the GPU: of every `chunk` bytes of a
// buffer, or the raw register of each of a list of spans.
//
// The replicated GPU path (gemini.gpu_replica) checksums each packed chunk
// where it already is, in GPU memory, so the host never reads checkpoint
// bytes while training runs: the owner checksums what it sends (these are the
// CRCs its manifest commits), the holder checksums what it received (compared
// with the owner's before it commits the replica), and every load still
// checks the host copy against them. One block per chunk, 1024 threads each
// checksum a contiguous piece (slicing-by-4 from shared memory) and thread 0
// folds the pieces in order (common/crc32c_pieces.h, unit-tested on the CPU).
// The result equals Crc32c() of each chunk.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "common/status.h"

namespace gemini {

// out[i] = Crc32c(data + i*chunk, min(chunk, n - i*chunk)) for every chunk of
// [data, data+n); `out` is device memory of ceil(n/chunk) words. `data` must
// be 16-byte aligned and `chunk` a multiple of 16. Asynchronous on `stream`.
Status LaunchChunkCrcs(const void* data, uint64_t n, uint64_t chunk, uint32_t* out,
                       cudaStream_t stream);

// A span of device memory to checksum: any alignment, any length.
struct DeviceSpan {
  const void* data;
  uint64_t length;
};

// raw[i] = the raw CRC register g(0, bytes of spans[i]) (common/crc32c_pieces.h;
// store/chunk_spans.h folds these into chunk CRC32Cs). One block per span;
// `spans` and `raw` are device memory of `count` elements. Asynchronous on
// `stream`. This is how a GPU capture checksums tensors where they are.
Status LaunchSpanCrcs(const DeviceSpan* spans, uint32_t count, uint32_t* raw, cudaStream_t stream);

}  // namespace gemini
