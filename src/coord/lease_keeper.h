// LeaseKeeper: keeps one lease alive from a thread it owns (an agent's
// heartbeat: its registration key lives under this lease).
//
// Refreshes the lease every ttl/3 (at least every 100 ms apart), each refresh
// bounded by that interval. The lease is reported lost (kAborted) when the
// store says it no longer exists, or when no refresh succeeded for a whole
// TTL (the server may have expired it meanwhile). Once lost, the keeper stops
// and calls on_lost once, from its thread, holding no lock. It never revokes
// the lease: revoke it through the store when leaving cleanly.
//
// Ownership: shares the store. Thread safety: status() and Stop() may be
// called from any thread; Stop() must not be called from on_lost.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "coord/kv_store.h"

namespace gemini {

class LeaseKeeper {
 public:
  using LostCallback = std::function<void(const Status&)>;

  LeaseKeeper(std::shared_ptr<KvStore> store, LeaseInfo lease, LostCallback on_lost = nullptr);
  ~LeaseKeeper();
  LeaseKeeper(const LeaseKeeper&) = delete;
  LeaseKeeper& operator=(const LeaseKeeper&) = delete;

  LeaseId id() const { return lease_.id; }
  // OK while the lease is believed alive; kAborted once lost.
  Status status() const;
  // Stops refreshing and joins the thread. Idempotent.
  void Stop();

 private:
  void Run();

  const std::shared_ptr<KvStore> store_;
  const LeaseInfo lease_;
  const LostCallback on_lost_;
  const std::chrono::milliseconds interval_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  Status status_;          // guarded by mu_
  std::thread thread_;
};

}  // namespace gemini
