// WatchQueue: the state every streaming Watch shares between the thread that
// reads its stream and the thread that polls it: the events not yet polled,
// whether the server confirmed the watch, and the first error (sticky).
// Used by the etcd clients' watches (gRPC and JSON gateway).
//
// Thread-safe: the stream thread calls Push/Fail, pollers call Poll, and
// Start-up waits in WaitCreated.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <vector>

#include "coord/kv_store.h"

namespace gemini {

class WatchQueue {
 public:
  // Queues events (and, with `created`, records that the server confirmed
  // the watch), waking pollers.
  void Push(std::vector<WatchEvent> events, bool created) {
    std::lock_guard<std::mutex> lock(mu_);
    created_ = created_ || created;
    for (auto& ev : events) queue_.push_back(std::move(ev));
    cv_.notify_all();
  }
  // Records the first error; later ones are dropped.
  void Fail(Status st) {
    std::lock_guard<std::mutex> lock(mu_);
    if (error_.ok()) error_ = std::move(st);
    cv_.notify_all();
  }
  // Waits until the server confirmed the watch, an error, or the deadline:
  // OK, the error, or kDeadlineExceeded saying `what`.
  Status WaitCreated(Deadline deadline, const std::string& what) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_until(lock, deadline, [&] { return created_ || !error_.ok(); });
    if (created_) return Status::Ok();
    if (!error_.ok()) return error_;
    return DeadlineExceeded(what);
  }
  // Watch::Poll's contract: queued events first, then the error.
  Result<std::vector<WatchEvent>> Poll(Deadline deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_until(lock, deadline, [&] { return !queue_.empty() || !error_.ok(); });
    if (queue_.empty() && !error_.ok()) return error_;
    std::vector<WatchEvent> out(std::make_move_iterator(queue_.begin()),
                                std::make_move_iterator(queue_.end()));
    queue_.clear();
    return out;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool created_ = false;
  std::deque<WatchEvent> queue_;
  Status error_;
};

}  // namespace gemini
