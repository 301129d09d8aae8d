// Helpers for the persist tests only: a temp directory that removes itself,
// a deterministic test shard, file byte helpers, an env that serves one file
// from memory and one that logs where appended bytes came from. Not part of
// the library (header-only, included by *_test.cc). Not thread-safe, except
// AppendLogEnv.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <ostream>
#include <string>
#include <vector>

#include "common/crc32c.h"
#include "persist/env.h"
#include "persist/layout.h"
#include "store/manifest.h"

namespace gemini {

// gtest prints keys readably.
inline void PrintTo(const IterationKey& key, std::ostream* os) { *os << key.ToString(); }

namespace persist_test {

inline IterationKey At(int64_t iteration, int64_t epoch = 0) { return {iteration, epoch}; }

// The iterations of keys, in order (for tests that use one epoch).
inline std::vector<int64_t> IterationsOf(const std::vector<IterationKey>& keys) {
  std::vector<int64_t> out;
  for (const auto& k : keys) out.push_back(k.iteration);
  return out;
}

// A fresh directory under /tmp, removed with everything in it at scope exit.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/gemini-persist-test-XXXXXX";
    const char* made = ::mkdtemp(tmpl);
    EXPECT_NE(made, nullptr);
    path_ = made != nullptr ? made : "/tmp/gemini-persist-test-failed";
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct TestShard {
  Manifest manifest;
  std::vector<uint8_t> data;
  std::vector<uint32_t> crcs;
};

// A shard of `bytes` data bytes in 4 KiB chunks (the last one short by
// default), filled with bytes that depend on (iteration, rank, seed).
inline TestShard MakeShard(const std::string& job, int64_t iteration, uint32_t rank,
                           uint32_t world_size, uint64_t bytes = 3 * 4096 + 1000,
                           uint32_t seed = 0) {
  TestShard s;
  Manifest& m = s.manifest;
  m.job = job;
  m.iteration = iteration;
  m.rank = rank;
  m.world_size = world_size;
  m.chunk_size = 4096;
  m.entries.push_back({"w", Dtype::kUint8, {static_cast<int64_t>(bytes)}, 0, bytes, 0});
  m.AssignOffsets();
  s.data.resize(m.data_bytes);
  uint64_t x =
      0x9E3779B97F4A7C15ull * (static_cast<uint64_t>(iteration) * 1000003 + rank + 1) + seed;
  for (auto& b : s.data) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    b = static_cast<uint8_t>(x);
  }
  for (uint64_t pos = 0; pos < m.data_bytes; pos += m.chunk_size)
    s.crcs.push_back(Crc32c(s.data.data() + pos, std::min(m.chunk_size, m.data_bytes - pos)));
  return s;
}

inline std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Names in a directory (empty if it does not exist).
inline std::vector<std::string> Names(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec))
    out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

// Serves reads of one path from bytes in memory (everything else from the
// target), so tests can try thousands of damaged versions of a file without
// rewriting it on disk.
class BytesEnv : public PersistEnvWrapper {
 public:
  BytesEnv(PersistEnv* target, std::string path) : PersistEnvWrapper(target), path_(path) {}
  void Set(std::string bytes) { bytes_ = std::move(bytes); }

  Result<std::unique_ptr<ReadableFile>> NewReadableFile(const std::string& path) override {
    if (path != path_) return target()->NewReadableFile(path);
    return std::unique_ptr<ReadableFile>(new File(&bytes_));
  }

 private:
  class File : public ReadableFile {
   public:
    explicit File(const std::string* bytes) : bytes_(bytes) {}
    Result<size_t> ReadAt(uint64_t offset, void* dst, size_t n) override {
      if (offset >= bytes_->size()) return size_t{0};
      n = std::min<uint64_t>(n, bytes_->size() - offset);
      std::memcpy(dst, bytes_->data() + offset, n);
      return n;
    }
    Result<uint64_t> Size() override { return uint64_t{bytes_->size()}; }

   private:
    const std::string* bytes_;
  };
  std::string path_, bytes_;
};

// Records where the bytes of every Append (of files it creates) came from.
class AppendLogEnv : public PersistEnvWrapper {
 public:
  using PersistEnvWrapper::PersistEnvWrapper;
  struct Call {
    const uint8_t* p;
    size_t n;
  };
  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override {
    GEMINI_ASSIGN_OR_RETURN(auto base, target()->NewWritableFile(path));
    return std::unique_ptr<WritableFile>(new File(this, std::move(base)));
  }
  std::vector<Call> calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }

 private:
  class File : public WritableFile {
   public:
    File(AppendLogEnv* env, std::unique_ptr<WritableFile> base)
        : env_(env), base_(std::move(base)) {}
    Status Append(const void* data, size_t n) override {
      {
        std::lock_guard<std::mutex> lock(env_->mu_);
        env_->calls_.push_back({static_cast<const uint8_t*>(data), n});
      }
      return base_->Append(data, n);
    }
    Status Sync() override { return base_->Sync(); }
    Status Close() override { return base_->Close(); }

   private:
    AppendLogEnv* env_;
    std::unique_ptr<WritableFile> base_;
  };
  std::mutex mu_;
  std::vector<Call> calls_;
};

}  // namespace persist_test
}  // namespace gemini
