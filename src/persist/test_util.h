// Helpers for the persist tests only: a temp directory that removes itself,
// a deterministic test shard, and file byte helpers. Not part of the library
// (header-only, included by *_test.cc). Not thread-safe.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "common/crc32c.h"
#include "persist/env.h"
#include "store/manifest.h"

namespace gemini::persist_test {

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

}  // namespace gemini::persist_test
