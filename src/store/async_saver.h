// AsyncSaver: captures shards off the training thread.
//
// Submit() hands a save to a worker thread and returns at once; at most one
// save is in flight, so Submit() first waits for the previous one (the
// training loop calls Wait() before its next optimizer step, so in steady
// state nothing is pending by then). The tensors' memory must stay unchanged
// until Wait() returns: the caller keeps the sources alive and unmodified.
//
// Errors are sticky per save: Wait() returns the status of the last save,
// and Submit() returns the status of a save it had to wait for (OK when
// nothing was in flight: that save's status was Wait()'s to report).
// Thread-safe; the worker thread is owned and joined by the destructor.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

#include "store/client.h"

namespace gemini {

struct SaveRequest {
  std::string job;
  uint32_t rank = 0;
  uint32_t world_size = 1;
  int64_t iteration = 0;
  std::vector<TensorSource> tensors;
  SaveOptions options;
};

struct SaveStats {
  int64_t iteration = -1;
  double copy_seconds = 0;  // Begin to commit acknowledged, on the worker.
  uint64_t bytes = 0;
};

class AsyncSaver {
 public:
  explicit AsyncSaver(AgentClient* client);
  ~AsyncSaver();
  AsyncSaver(const AsyncSaver&) = delete;
  AsyncSaver& operator=(const AsyncSaver&) = delete;

  Status Submit(SaveRequest request);
  // Waits until no save is in flight; DeadlineExceeded if it takes longer.
  Status Wait(std::chrono::milliseconds timeout = std::chrono::minutes(10));
  bool InFlight();
  SaveStats LastStats();

 private:
  void Run();

  AgentClient* client_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<SaveRequest> pending_;
  bool busy_ = false;
  bool stop_ = false;
  Status last_;
  SaveStats stats_;
  std::thread worker_;
};

}  // namespace gemini
