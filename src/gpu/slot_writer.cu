#include "store/chunks.h"
#include "gpu/cuda_status.h"
#include "gpu/slot_writer.h"

namespace gemini {

Result<std::unique_ptr<SlotWriter>> SlotWriter::Create(const std::string& socket_path) {
  GEMINI_ASSIGN_OR_RETURN(std::unique_ptr<AgentClient> client, AgentClient::Connect(socket_path));
  std::unique_ptr<SlotWriter> w(new SlotWriter(std::move(client)));
  SlotWriter* self = w.get();
  w->client_->SetUnmapHook([self](uint8_t* data, size_t) { self->pinned_.Forget(data); });
  return Result<std::unique_ptr<SlotWriter>>(std::move(w));
}

SlotWriter::~SlotWriter() {
  client_->SetUnmapHook(nullptr);
  pinned_.Clear();
}

Result<Manifest> SlotWriter::Begin(const std::string& job, uint32_t rank, uint32_t world_size,
                                   int64_t iteration, const std::vector<TensorSource>& tensors,
                                   const SaveOptions& options) {
  grant_.reset();
  GEMINI_ASSIGN_OR_RETURN(SaveGrant g,
                          client_->BeginSave(job, rank, world_size, iteration, tensors, options));
  pinned_ok_ = pinned_.EnsureOrPageable(g.region, g.region_size);
  Manifest m = g.manifest;
  grant_ = std::move(g);
  return m;
}

Status SlotWriter::CopyIn(uint64_t region_offset, const void* src, uint64_t n,
                          cudaStream_t stream) {
  if (!grant_) return FailedPrecondition("CopyIn before Begin");
  const uint64_t size = grant_->manifest.data_bytes;
  if (region_offset > size || n > size - region_offset)
    return InvalidArgument("copy outside the slot's data");
  if (n == 0) return Status::Ok();
  return CudaStatus(
      cudaMemcpyAsync(grant_->region + region_offset, src, n, cudaMemcpyDeviceToHost, stream),
      "cudaMemcpyAsync(slot)");
}

Result<std::vector<uint32_t>> SlotWriter::Crcs(uint64_t region_offset, uint64_t n,
                                                int threads) const {
  if (!grant_) return FailedPrecondition("Crcs before Begin");
  const uint64_t size = grant_->manifest.data_bytes;
  const uint64_t chunk = grant_->manifest.chunk_size;
  if (region_offset > size || n > size - region_offset || region_offset % chunk != 0)
    return InvalidArgument("CRC range outside the slot's data or not chunk-aligned");
  return ChunkCrcs(grant_->region + region_offset, n, chunk, threads);
}

Status SlotWriter::Commit(const std::vector<uint32_t>& crcs) {
  if (!grant_) return FailedPrecondition("Commit before Begin");
  if (crcs.size() != grant_->manifest.NumChunks())
    return InvalidArgument("commit: " + std::to_string(crcs.size()) + " CRCs for " +
                           std::to_string(grant_->manifest.NumChunks()) + " chunks");
  Status s = client_->CommitSave(*grant_, crcs);
  grant_.reset();
  return s;
}

}  // namespace gemini
