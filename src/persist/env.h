// PersistEnv: the thin filesystem interface under the persistent tier.
//
// Everything the persistent tier does to a disk (create, append, fsync,
// rename, list, remove) goes through a PersistEnv, in the style of LevelDB's
// Env, so that tests can put a fault-injecting wrapper (fault_env.h) between
// the tier and the real filesystem and prove that a crash, a full disk or a
// failing fsync never leaves a half-written file where a shard is expected.
//
// PersistEnv::Posix() is the real implementation: a process-wide object that is
// never destroyed. PersistEnvWrapper forwards every call to another env, so a
// wrapper overrides only what it changes.
//
// Errors: OS failures come back as ErrnoStatus (ENOSPC -> ResourceExhausted,
// ENOENT -> NotFound, EIO -> Internal, ...), each message naming the path.
//
// Privacy: the tier's files hold model state, so the POSIX env creates files
// 0600 and directories 0700, whatever the process umask (it sets the mode
// explicitly after creating). Directories that already exist are left as
// they are.
//
// Shared mounts: several hosts may write into one directory. Files are only
// ever created new (O_EXCL), under temp names unique across hosts and
// processes (TempPathFor), and renamed into place; a writer never truncates or
// writes into a file another writer created.
//
// Ownership and threads: files returned by New*File are owned by the caller
// (std::unique_ptr) and are used by one thread at a time. Env objects are
// thread-safe: any method may be called from any thread concurrently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace gemini {

// A file being written from its start. Destroying it closes it (errors lost).
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  // Appends all n bytes (retrying partial writes and EINTR) or fails.
  virtual Status Append(const void* data, size_t n) = 0;
  // Makes the bytes appended so far durable (fsync).
  virtual Status Sync() = 0;
  virtual Status Close() = 0;
};

// A file read at explicit offsets.
class ReadableFile {
 public:
  virtual ~ReadableFile() = default;
  // Reads up to n bytes at `offset` into dst; returns how many were read,
  // fewer than n only at the end of the file.
  virtual Result<size_t> ReadAt(uint64_t offset, void* dst, size_t n) = 0;
  virtual Result<uint64_t> Size() = 0;
};

class PersistEnv {
 public:
  virtual ~PersistEnv() = default;

  // The real POSIX filesystem. Never destroyed; thread-safe.
  static PersistEnv* Posix();

  // Creates a NEW file `path` for writing, mode 0600. Aborted if something
  // is already there (O_EXCL): it is never truncated or written.
  virtual Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) = 0;
  virtual Result<std::unique_ptr<ReadableFile>> NewReadableFile(const std::string& path) = 0;
  // Creates one directory level (mode 0700). Returns true if it was created,
  // false if a directory was already there.
  virtual Result<bool> CreateDir(const std::string& path) = 0;
  // fsyncs a directory so that entries created or renamed in it are durable.
  virtual Status SyncDir(const std::string& path) = 0;
  // Atomically replaces `to` with `from` (rename(2)); both in one filesystem.
  virtual Status RenameFile(const std::string& from, const std::string& to) = 0;
  virtual Status RemoveFile(const std::string& path) = 0;
  // Removes an empty directory.
  virtual Status RemoveDir(const std::string& path) = 0;
  // Names in a directory, without "." and "..", in no particular order.
  virtual Result<std::vector<std::string>> ListDir(const std::string& path) = 0;
  virtual Result<uint64_t> FileSize(const std::string& path) = 0;
  virtual bool FileExists(const std::string& path) = 0;
};

// Forwards every call to `target` (not owned; must outlive the wrapper).
class PersistEnvWrapper : public PersistEnv {
 public:
  explicit PersistEnvWrapper(PersistEnv* target) : target_(target) {}
  PersistEnv* target() const { return target_; }

  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override {
    return target_->NewWritableFile(path);
  }
  Result<std::unique_ptr<ReadableFile>> NewReadableFile(const std::string& path) override {
    return target_->NewReadableFile(path);
  }
  Result<bool> CreateDir(const std::string& path) override { return target_->CreateDir(path); }
  Status SyncDir(const std::string& path) override { return target_->SyncDir(path); }
  Status RenameFile(const std::string& from, const std::string& to) override {
    return target_->RenameFile(from, to);
  }
  Status RemoveFile(const std::string& path) override { return target_->RemoveFile(path); }
  Status RemoveDir(const std::string& path) override { return target_->RemoveDir(path); }
  Result<std::vector<std::string>> ListDir(const std::string& path) override {
    return target_->ListDir(path);
  }
  Result<uint64_t> FileSize(const std::string& path) override { return target_->FileSize(path); }
  bool FileExists(const std::string& path) override { return target_->FileExists(path); }

 private:
  PersistEnv* target_;
};

// Writes `contents` to `path` atomically: a temp file beside it, fsync,
// rename, fsync of the directory. On failure the temp file is removed (best
// effort) and `path` is unchanged.
Status WriteFileAtomically(PersistEnv* env, const std::string& path, const std::string& contents);

// A new temp file beside `path` (TempPathFor), created with NewWritableFile.
// Should the name be taken already (another host drew the same one), it draws
// another, a few times, and never touches the other writer's file.
struct TempFile {
  std::string path;
  std::unique_ptr<WritableFile> file;
};
Result<TempFile> NewTempFileFor(PersistEnv* env, const std::string& path);

// Reads a whole (small) file.
Result<std::string> ReadSmallFile(PersistEnv* env, const std::string& path,
                                  uint64_t max_bytes = 1 << 20);

// A temp-file name beside `path`, unique across hosts and processes sharing
// a mount: "<path>.tmp-<host>-<pid>-<16 hex digits from getrandom>", where
// <host> is this machine's host name (letters, digits, '.', '_', '-' kept,
// anything else '_', at most 64 bytes). Never a name readers look for.
std::string TempPathFor(const std::string& path);

// The directory part of a path ("a/b/c" -> "a/b", "c" -> ".").
std::string DirName(const std::string& path);

}  // namespace gemini
