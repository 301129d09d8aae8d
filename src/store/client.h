// AgentClient: the trainer's side of the store.
//
// Connects to the machine's agent over its Unix socket. Save() asks the agent
// for the in-progress slot, copies each tensor piece straight into the shared
// memory (one copy, CRC32C computed on the way) and commits. Open() + ReadInto()
// load a committed shard: every chunk's CRC is checked while copying out, and
// a mismatch is a DataLoss error, never wrong bytes.
//
// Mapped segments are cached per (job, rank, slot) so that steady-state saves
// do not re-map memory. One request is in flight at a time (an internal lock
// serializes callers); the data copies run outside that lock.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "common/status.h"
#include "store/manifest.h"
#include "store/shm_segment.h"

namespace gemini {

// One tensor piece to save: `length` bytes at `data`, which are bytes
// [tensor_offset, tensor_offset + length) of a tensor of `dtype` and `shape`.
struct TensorSource {
  std::string name;
  Dtype dtype = Dtype::kUint8;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  uint64_t length = 0;
  uint64_t tensor_offset = 0;
};

struct SaveOptions {
  int copy_threads = 1;  // Threads copying into the slot.
  uint64_t chunk_size = Manifest::kDefaultChunkSize;
  // How long Begin may wait for slower ranks before failing.
  std::chrono::milliseconds wait{std::chrono::minutes(2)};
};

// A committed shard opened for reading. `data` stays mapped while the shard
// (or a copy) lives, even once the client maps the slot anew or is gone. The
// agent may reuse the slot for a newer iteration two saves later; reads then
// fail the CRC check (DataLoss).
struct OpenShard {
  Manifest manifest;
  std::vector<uint32_t> crcs;
  const uint8_t* data = nullptr;
  std::shared_ptr<const Mapping> mapping;  // Keeps `data` mapped.
};

// An in-progress slot granted by BeginSave(): the caller fills `region` (the
// manifest's entries at their offsets, zero padding) and passes one CRC32C per
// chunk to CommitSave(). Save() is BeginSave + CaptureInto + CommitSave; the
// GPU path (src/gpu/) fills the region with device-to-host copies instead.
struct SaveGrant {
  Manifest manifest;
  uint8_t* region = nullptr;
  uint64_t region_size = 0;  // The whole mapping (>= manifest.data_bytes).
};

class AgentClient {
 public:
  // `call_timeout`: how long a short call (commit, open, query) waits for
  // its reply.
  static Result<std::unique_ptr<AgentClient>> Connect(
      const std::string& socket_path,
      std::chrono::milliseconds call_timeout = std::chrono::seconds(30));
  ~AgentClient();
  AgentClient(const AgentClient&) = delete;
  AgentClient& operator=(const AgentClient&) = delete;

  Status Save(const std::string& job, uint32_t rank, uint32_t world_size, int64_t iteration,
              const std::vector<TensorSource>& tensors, const SaveOptions& options = {});
  Result<SaveGrant> BeginSave(const std::string& job, uint32_t rank, uint32_t world_size,
                              int64_t iteration, const std::vector<TensorSource>& tensors,
                              const SaveOptions& options = {});
  Status CommitSave(const SaveGrant& grant, const std::vector<uint32_t>& crcs);
  // Called with a cached mapping's (data, size) just before the client lets
  // go of it (e.g. to cudaHostUnregister it): unmapped then, or once the last
  // OpenShard that holds it goes. Set it before the first save.
  void SetUnmapHook(std::function<void(uint8_t*, size_t)> hook);
  // iteration -1: the rank's newest committed.
  Result<OpenShard> Open(const std::string& job, uint32_t rank, int64_t iteration);
  // Copies the shard's whole data region into dst (manifest.data_bytes bytes),
  // verifying every chunk.
  static Status ReadInto(const OpenShard& shard, uint8_t* dst, int threads = 1);
  // Newest iteration every rank of the job has committed, or -1.
  Result<int64_t> CompleteIteration(const std::string& job);
  Result<std::string> StatusJson();
  // Asks a multi-machine agent to fetch (job, rank, iteration) from a peer
  // holder (from_host, or any holder if -1) into its memory; returns the
  // iteration fetched.
  Result<int64_t> Fetch(const std::string& job, uint32_t rank, int64_t iteration,
                        int64_t from_host = -1);
  Status DropJob(const std::string& job);
  // Tells the agent how often this rank checkpoints and why (gemini status).
  Status SetCadence(const std::string& job, uint32_t rank, uint32_t every_k,
                    const std::string& reason);

 private:
  AgentClient(std::string socket_path, int fd, std::chrono::milliseconds call_timeout)
      : socket_path_(std::move(socket_path)), call_timeout_(call_timeout), fd_(fd) {}
  // Sends a request and waits for the reply; returns the body (and fd). A
  // call that fails in transport (timeout, closed socket) drops the
  // connection, so a late reply is never read as the next call's answer; the
  // next call connects again.
  Result<std::string> Call(uint32_t type, const std::string& payload, int* fd,
                           std::chrono::milliseconds timeout);
  // Mapping of a granted slot, from the cache or freshly mapped from fd.
  Result<std::shared_ptr<Mapping>> MapSlot(const std::string& job, uint32_t rank, uint32_t slot,
                                           const std::string& segment, uint64_t size, int fd,
                                           bool writable);

  struct CachedMap {
    std::string segment;
    std::shared_ptr<Mapping> mapping;
    bool writable = false;
  };

  const std::string socket_path_;
  const std::chrono::milliseconds call_timeout_;
  int fd_;  // -1 after a transport failure, until the next call.
  std::mutex call_mu_;
  std::mutex map_mu_;
  std::map<std::tuple<std::string, uint32_t, uint32_t>, CachedMap> maps_;
  std::function<void(uint8_t*, size_t)> unmap_hook_;
};

}  // namespace gemini
