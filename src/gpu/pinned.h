// PinnedRegistry: page-locks (cudaHostRegister) host ranges once and keeps
// them registered until Forget() or destruction.
//
// The GPU path registers each shared-memory slot mapping the first time it
// copies into or out of it (pinning a few GiB takes a while, so it is done
// once per mapping, not per save) and forgets it when the client is about to
// unmap it (AgentClient::SetUnmapHook). Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>

#include "common/status.h"

namespace gemini {

class PinnedRegistry {
 public:
  PinnedRegistry() = default;
  ~PinnedRegistry();  // Unregisters everything still registered.
  PinnedRegistry(const PinnedRegistry&) = delete;
  PinnedRegistry& operator=(const PinnedRegistry&) = delete;

  // Registers [data, data+size) unless a registered range already covers it; a
  // smaller range registered at the same address is replaced.
  Status Ensure(uint8_t* data, size_t size);
  // Ensure(), or where pinning fails (e.g. the page-lock limit), false: the
  // caller copies to pageable memory instead. The first failure is logged.
  bool EnsureOrPageable(uint8_t* data, size_t size);
  // Whether a registered range covers [data, data+size).
  bool Covers(const uint8_t* data, size_t size);
  // Unregisters the range starting at data, if any.
  void Forget(uint8_t* data);
  // Unregisters everything.
  void Clear();

 private:
  bool CoversLocked(const uint8_t* data, size_t size) const;
  std::mutex mu_;
  std::map<uint8_t*, size_t> ranges_;  // start -> size
  bool warned_ = false;                // EnsureOrPageable logged a failure
};

}  // namespace gemini
