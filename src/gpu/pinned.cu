#include <cuda_runtime.h>

#include "common/log.h"
#include "gpu/cuda_status.h"
#include "gpu/pinned.h"

namespace gemini {

PinnedRegistry::~PinnedRegistry() { Clear(); }

bool PinnedRegistry::CoversLocked(const uint8_t* data, size_t size) const {
  auto it = ranges_.upper_bound(const_cast<uint8_t*>(data));
  if (it == ranges_.begin()) return false;
  --it;
  return data + size <= it->first + it->second;
}

bool PinnedRegistry::Covers(const uint8_t* data, size_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  return CoversLocked(data, size);
}

Status PinnedRegistry::Ensure(uint8_t* data, size_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  if (CoversLocked(data, size)) return Status::Ok();
  auto it = ranges_.find(data);
  if (it != ranges_.end()) {
    (void)cudaHostUnregister(it->first);
    ranges_.erase(it);
  }
  // Slots opened for reading are mapped read-only (the agent hands readers
  // read-only fds): those register read-only.
  if (cudaHostRegister(data, size, cudaHostRegisterDefault) != cudaSuccess) {
    (void)cudaGetLastError();
    GEMINI_CUDA_RETURN_IF_ERROR(cudaHostRegister(data, size, cudaHostRegisterReadOnly));
  }
  ranges_[data] = size;
  return Status::Ok();
}

bool PinnedRegistry::EnsureOrPageable(uint8_t* data, size_t size) {
  Status pin = Ensure(data, size);
  if (pin.ok()) return true;
  (void)cudaGetLastError();
  std::lock_guard<std::mutex> lock(mu_);
  if (!warned_)
    GEMINI_LOG(WARN) << "[gpu] cannot pin the slot, copying to pageable memory: " << pin.ToString();
  warned_ = true;
  return false;
}

void PinnedRegistry::Forget(uint8_t* data) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = ranges_.find(data);
  if (it == ranges_.end()) return;
  Status st = CudaStatus(cudaHostUnregister(it->first), "cudaHostUnregister");
  if (!st.ok()) GEMINI_LOG(WARN) << "[gpu] " << st.ToString();
  ranges_.erase(it);
}

void PinnedRegistry::Clear() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [data, size] : ranges_) (void)cudaHostUnregister(data);
  ranges_.clear();
}

}  // namespace gemini
