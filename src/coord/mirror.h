// Mirror: a local copy of one key, or of every key under a prefix, kept
// current by a watch. Reading it sends nothing to etcd: an agent that used to
// poll a key every few tens of milliseconds now costs etcd one read and one
// watch, plus the changes themselves.
//
// A thread the mirror owns reads the range once, then watches it from the
// revision after that read. When the watch breaks (etcd unreachable, the
// member died, history compacted) it reads the range afresh and watches
// again, retrying every 100 ms to 1 s. Meanwhile the copy stays as it was
// last seen (stale, never invented), and synced() says false.
//
// on_change (optional) runs on the mirror's thread after every change of the
// copy, holding no lock; it must not call Stop().
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "coord/kv_store.h"

namespace gemini {

class Mirror {
 public:
  Mirror(std::shared_ptr<KvStore> kv, std::string key, bool prefix,
         std::function<void()> on_change = nullptr);
  ~Mirror();
  Mirror(const Mirror&) = delete;
  Mirror& operator=(const Mirror&) = delete;

  // Starts the thread and waits up to `wait` for the first read.
  void Start(std::chrono::milliseconds wait = std::chrono::milliseconds(3000));
  void Stop();

  // The mirrored key (a single-key mirror): kNotFound when absent,
  // kUnavailable before the first read succeeded.
  Result<KeyValue> Get() const;
  // Every key under the prefix, by key; kUnavailable before the first read.
  Result<std::map<std::string, KeyValue>> All() const;
  // Whether the copy is current: read once and the watch is up.
  bool synced() const { return synced_.load(); }
  // Waits until the copy changes after `seen` (a value of version()) or the
  // deadline passes; returns version().
  uint64_t WaitChange(uint64_t seen, Deadline deadline) const;
  uint64_t version() const;
  // Requests this mirror sent to etcd (reads and watch creations).
  int64_t requests() const { return requests_.load(); }

 private:
  void Run();
  // One read and one watch, until the watch breaks or Stop(). False when the
  // read or the watch could not be set up.
  bool SyncAndFollow();
  void Changed();

  const std::shared_ptr<KvStore> kv_;
  const std::string key_;
  const bool prefix_;
  const std::function<void()> on_change_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::map<std::string, KeyValue> copy_;  // guarded by mu_
  bool loaded_ = false;                   // guarded by mu_
  uint64_t version_ = 0;                  // guarded by mu_
  bool stop_ = false;                     // guarded by mu_
  Watch* watch_ = nullptr;                // guarded by mu_; the live watch, to cancel
  std::atomic<bool> synced_{false};
  std::atomic<int64_t> requests_{0};
  std::thread thread_;
};

}  // namespace gemini
