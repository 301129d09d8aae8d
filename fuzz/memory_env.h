// MemoryEnv: a read-only persist::PersistEnv whose every path holds the same
// in-memory bytes, for the fuzz targets. Reading a shard or marker "from
// disk" then reads the fuzzer's input; every mutating call fails.
#pragma once

#include <algorithm>
#include <cstring>
#include <string>

#include "persist/env.h"

namespace gemini::fuzz {

class MemoryEnv : public PersistEnv {
 public:
  explicit MemoryEnv(std::string contents) : contents_(std::move(contents)) {}

  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override {
    return ReadOnly(path);
  }
  Result<std::unique_ptr<ReadableFile>> NewReadableFile(const std::string&) override {
    return std::unique_ptr<ReadableFile>(new File(contents_));
  }
  Result<bool> CreateDir(const std::string& path) override { return ReadOnly(path); }
  Status SyncDir(const std::string& path) override { return ReadOnly(path); }
  Status RenameFile(const std::string& from, const std::string&) override { return ReadOnly(from); }
  Status RemoveFile(const std::string& path) override { return ReadOnly(path); }
  Status RemoveDir(const std::string& path) override { return ReadOnly(path); }
  Result<std::vector<std::string>> ListDir(const std::string& path) override {
    return ReadOnly(path);
  }
  Result<uint64_t> FileSize(const std::string&) override { return contents_.size(); }
  bool FileExists(const std::string&) override { return true; }

 private:
  class File : public ReadableFile {
   public:
    explicit File(const std::string& bytes) : bytes_(bytes) {}
    Result<size_t> ReadAt(uint64_t offset, void* dst, size_t n) override {
      if (offset >= bytes_.size()) return size_t{0};
      size_t got = std::min<uint64_t>(n, bytes_.size() - offset);
      std::memcpy(dst, bytes_.data() + offset, got);
      return got;
    }
    Result<uint64_t> Size() override { return bytes_.size(); }

   private:
    const std::string& bytes_;
  };
  static Status ReadOnly(const std::string& path) {
    return FailedPrecondition("fuzz env is read-only: " + path);
  }

  const std::string contents_;
};

}  // namespace gemini::fuzz
