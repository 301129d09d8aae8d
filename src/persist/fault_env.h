// FaultInjectionEnv: a PersistEnv wrapper that makes the disk misbehave.
//
// Tests (and chaos runs) put it between the persistent tier and a real env to
// prove that no fault leaves a half-written file where a shard is expected:
//   - no space left: Appends may write a budget of bytes in total; the Append
//     that overflows it writes what fits and fails with ENOSPC
//     (ResourceExhausted), as a full disk does;
//   - short writes: every Append writes only the first half of its bytes and
//     still reports success, as a lying disk or a lost page would;
//   - fsync failure: Sync on a file fails with EIO;
//   - crash: after a given number of mutating calls, the env "crashes": that
//     call and every later one (reads included) fail with Aborted and nothing
//     more reaches the disk, so the disk holds what a process killed at that
//     point would have left. A new env over the same directory plays the
//     restarted process;
//   - slow disk: while writes are held, every Append waits (at most 30 s)
//     until they are released.
// It also logs every mutating call that reached the disk, in order, so tests
// can check the order of write, fsync, rename and directory fsync.
//
// The crash model is a process crash: whatever reached the target env stays
// there (no page-cache loss is simulated; the log shows fsync ordering).
// The space budget is not given back by unlink.
//
// Thread-safe: faults may be set from any thread while others use the env.
// The target is not owned and must outlive this env and its files.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "persist/env.h"

namespace gemini {

class FaultInjectionEnv : public PersistEnvWrapper {
 public:
  explicit FaultInjectionEnv(PersistEnv* target) : PersistEnvWrapper(target) {}

  // Bytes Appends may still write, over all files; nullopt = unlimited (default).
  void SetSpaceLimit(std::optional<uint64_t> bytes);
  void SetShortWrites(bool on);
  void SetSyncFailure(bool on);
  // Lets `ops` more mutating calls through, then crashes; nullopt = never.
  void CrashAfter(std::optional<uint64_t> ops);
  bool crashed() const;
  // While held, Appends wait for ReleaseWrites() (or 30 s).
  void HoldWrites();
  void ReleaseWrites();
  // True once some Append is waiting on the hold; false after `timeout`.
  bool WaitUntilHeld(std::chrono::milliseconds timeout);

  // Mutating calls that reached the target, in order: "create P", "append P",
  // "sync P", "close P", "mkdir P", "syncdir P", "rename A B", "unlink P",
  // "rmdir P".
  std::vector<std::string> Log() const;
  uint64_t MutatingOps() const;

  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override;
  Result<std::unique_ptr<ReadableFile>> NewReadableFile(const std::string& path) override;
  Result<bool> CreateDir(const std::string& path) override;
  Status SyncDir(const std::string& path) override;
  Status RenameFile(const std::string& from, const std::string& to) override;
  Status RemoveFile(const std::string& path) override;
  Status RemoveDir(const std::string& path) override;
  Result<std::vector<std::string>> ListDir(const std::string& path) override;
  Result<uint64_t> FileSize(const std::string& path) override;
  bool FileExists(const std::string& path) override;

  // Used by this env's files; not for callers.
  Status Admit(const std::string& op);  // Counts one mutating call or crashes.
  Status CheckAlive() const;            // Aborted once crashed.
  void WaitWhileHeld();
  // How many of n bytes an Append may write now, and whether it must then
  // fail with ENOSPC.
  size_t TakeSpace(size_t n, bool* no_space);
  bool short_writes() const;
  bool sync_failure() const;

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::optional<uint64_t> space_left_;
  bool short_writes_ = false;
  bool sync_failure_ = false;
  std::optional<uint64_t> crash_after_;  // Mutating calls still allowed.
  bool crashed_ = false;
  bool hold_ = false;
  int held_ = 0;  // Appends waiting on the hold now.
  uint64_t ops_ = 0;
  std::vector<std::string> log_;
};

}  // namespace gemini
