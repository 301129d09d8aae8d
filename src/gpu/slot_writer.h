// SlotWriter: fills one rank's slot in an agent's shared memory straight from
// GPU memory, for a caller that computes the CRCs itself.
//
// The replicated GPU path (python/gemini/gpu_replica.py) writes two slots per
// iteration: its own rank's (the local checkpoint) and the rank it holds a
// replica of, each through a SlotWriter of its own (its own agent connection,
// so one writer per rank). Begin() asks the agent for the in-progress slot
// (AgentClient::BeginSave: same manifest layout as every other path) and
// page-locks the slot's mapping the first time; CopyIn() enqueues a
// device-to-host cudaMemcpyAsync into the region on the caller's stream;
// Crcs() checksums what the copies wrote, on host threads; Commit() hands the
// agent one CRC32C per manifest chunk (from Crcs(), or from LaunchChunkCrcs
// over the same bytes on the GPU). Not thread-safe, except that CopyIn() and
// Crcs() (which only read the begun slot) may run on two threads at once.
#pragma once

#include <cuda_runtime.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gpu/pinned.h"
#include "store/client.h"

namespace gemini {

class SlotWriter {
 public:
  static Result<std::unique_ptr<SlotWriter>> Create(const std::string& socket_path);
  ~SlotWriter();
  SlotWriter(const SlotWriter&) = delete;
  SlotWriter& operator=(const SlotWriter&) = delete;

  // Reserves the in-progress slot for `tensors` (their data pointers are not
  // read); returns the manifest (entry offsets, data_bytes, chunk size).
  // A slot already begun and not committed is abandoned.
  Result<Manifest> Begin(const std::string& job, uint32_t rank, uint32_t world_size,
                         int64_t iteration, const std::vector<TensorSource>& tensors,
                         const SaveOptions& options);
  // Enqueues a copy of n bytes at device address src into the region at
  // region_offset (within data_bytes) on `stream`.
  Status CopyIn(uint64_t region_offset, const void* src, uint64_t n, cudaStream_t stream);
  // CRC32C of every manifest chunk in region bytes [region_offset,
  // region_offset + n) (region_offset a multiple of the chunk size), on
  // `threads` host threads; the copies into that range must be complete.
  Result<std::vector<uint32_t>> Crcs(uint64_t region_offset, uint64_t n, int threads) const;
  // Commits the begun slot with one CRC per chunk; the copies must be complete.
  Status Commit(const std::vector<uint32_t>& crcs);
  bool pinned() const { return pinned_ok_; }
  bool begun() const { return grant_.has_value(); }
  AgentClient* client() { return client_.get(); }

 private:
  explicit SlotWriter(std::unique_ptr<AgentClient> client) : client_(std::move(client)) {}

  std::unique_ptr<AgentClient> client_;
  PinnedRegistry pinned_;
  std::optional<SaveGrant> grant_;
  bool pinned_ok_ = false;
};

}  // namespace gemini
