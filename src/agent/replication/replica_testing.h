// Test helpers shared by the replica protocol and channel tests: a committed
// shard in an owner's store, and a maker that makes a piece as it is sent.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <random>

#include "agent/replication/chunked_replica.h"
#include "common/crc32c.h"
#include "store/store.h"

namespace gemini::replica_testing {

// A committed shard of `bytes` random bytes (rank 3 of job "job") in `store`,
// as its owner would hold it.
inline std::unique_ptr<ShardPin> MakeShard(Store& store, uint64_t bytes, int64_t iteration = 1) {
  Manifest m;
  m.job = "job";
  m.rank = 3;
  m.world_size = 4;
  m.iteration = iteration;
  m.chunk_size = 64 << 10;
  m.entries.push_back({"t", Dtype::kUint8, {static_cast<int64_t>(bytes)}, 0, bytes, 0});
  m.AssignOffsets();
  auto g = store.Begin(1, m, std::chrono::seconds(1));
  EXPECT_TRUE(g.ok()) << g.status().ToString();
  close(g->fd);
  std::mt19937 rng(static_cast<uint32_t>(bytes + iteration));
  for (uint64_t i = 0; i < bytes; ++i) g->data[i] = static_cast<uint8_t>(rng());
  std::vector<uint32_t> crcs;
  for (uint64_t off = 0; off < bytes; off += m.chunk_size)
    crcs.push_back(Crc32c(g->data + off, std::min(m.chunk_size, bytes - off)));
  EXPECT_TRUE(store.Commit(1, "job", 3, iteration, crcs).ok());
  auto pin = store.Pin("job", 3, iteration);
  EXPECT_TRUE(pin.ok());
  return std::move(*pin);
}

inline StoreOptions TestStoreOptions(const std::string& name) {
  return StoreOptions{.budget_bytes = 64 << 20,
                      .shm_prefix = "gemini-replica-" + name + "-" + std::to_string(getpid())};
}

// Makes a copy of a shard's bytes as they are asked for (a fragment encoded
// as it is sent); `corrupt_crc` forges the CRC of that chunk.
class CopyMaker : public PieceMaker {
 public:
  explicit CopyMaker(const ShardPin& from, int corrupt_crc = -1)
      : from_(from), out_(from.manifest.data_bytes, 0), corrupt_(corrupt_crc) {}
  Status MakeUpTo(uint64_t end) override {
    if (end < made_) return Internal("asked for less than before");
    std::memcpy(out_.data() + made_, from_.data + made_, end - made_);
    made_ = end;
    return Status::Ok();
  }
  std::vector<uint32_t> Crcs() const override {
    std::vector<uint32_t> crcs;
    const uint64_t cs = from_.manifest.chunk_size;
    for (uint64_t off = 0; off < made_; off += cs)
      crcs.push_back(Crc32c(out_.data() + off, std::min(cs, made_ - off)));
    if (corrupt_ >= 0) crcs.at(corrupt_) ^= 1;
    return crcs;
  }
  // The piece to send: the copy, its CRCs to come from the maker.
  std::unique_ptr<ShardPin> Pin() const {
    return std::make_unique<ShardPin>(from_.manifest, std::vector<uint32_t>{}, out_.data(), [] {});
  }
  uint64_t made() const { return made_; }

 private:
  const ShardPin& from_;
  std::vector<uint8_t> out_;
  uint64_t made_ = 0;
  int corrupt_;
};

}  // namespace gemini::replica_testing
