// Fuzz target `peer`: the agent <-> agent protocol (src/agent/replication/peer_protocol.h)
// and the chunk stream receive path (src/agent/replication/chunked_replica.h).
//
// Input: [u8 mode][bytes...]; mode % 4 picks:
//   0  DecodeShardHeader(bytes): an accepted header's CRC count matches.
//   1  DecodeStatusReply(bytes).
//   2  PeerService::Serve on a connection whose peer sent `bytes`: the
//      holder's side of every request (chunked replicas into slots, fetches,
//      status), against a real small Store (64 MiB budget, /dev/shm) that
//      already holds one committed shard of this machine's own rank 0.
//   3  FetchInto: the fetching side, parsing a peer's reply and data.
// After 2 and 3 the store must still hold the committed shard unchanged, and
// any replica committed from the stream must verify against its CRCs.
#include <unistd.h>

#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "agent/replication/peer_protocol.h"
#include "agent/replication/peer_service.h"
#include "common/crc32c.h"
#include "common/log.h"
#include "fuzz_check.h"
#include "memory_connection.h"
#include "store/chunks.h"
#include "store/store.h"

using namespace gemini;

namespace {

constexpr char kJob[] = "job";

// A store holding rank 0's committed shard of kJob (iteration 1, 8 KiB).
std::unique_ptr<Store> NewStore() {
  auto store =
      std::make_unique<Store>(StoreOptions{.budget_bytes = 64 << 20,
                                           .shm_prefix = "gemini-fuzz-" + std::to_string(getpid()),
                                           .coordinated_job = kJob});
  // Coordinated, with every iteration complete: Begin never waits for ranks
  // that will never come.
  store->SetExternalComplete(kJob, INT64_MAX);
  Manifest m;
  m.job = kJob;
  m.iteration = 1;
  m.rank = 0;
  m.world_size = 4;
  m.chunk_size = 4096;
  m.entries.push_back({.name = "w", .dtype = Dtype::kFloat32, .shape = {2048}, .length = 8192});
  m.AssignOffsets();
  auto grant = store->Begin(1, m, std::chrono::milliseconds(0));
  FUZZ_CHECK(grant.ok(), grant.status().ToString().c_str());
  close(grant->fd);
  for (uint64_t i = 0; i < m.data_bytes; ++i) grant->data[i] = static_cast<uint8_t>(i * 7);
  std::vector<uint32_t> crcs;
  for (uint64_t off = 0; off < m.data_bytes; off += m.chunk_size)
    crcs.push_back(Crc32c(grant->data + off, std::min(m.chunk_size, m.data_bytes - off)));
  FUZZ_CHECK(store->Commit(1, kJob, 0, 1, crcs).ok(), "seeding the store");
  return store;
}

// Every committed shard of ranks 0..7 still verifies; rank 0's is unchanged.
void CheckStore(Store& store) {
  for (uint32_t rank = 0; rank < 8; ++rank) {
    auto pin = store.Pin(kJob, rank, -1);
    if (!pin.ok()) {
      FUZZ_CHECK(rank != 0, "the machine's own committed shard is gone");
      continue;
    }
    const ShardPin& p = **pin;
    if (rank == 0) FUZZ_CHECK(p.manifest.iteration == 1, "own shard was overwritten");
    Status st = VerifyChunks(p.data, p.manifest.data_bytes, p.manifest.chunk_size, p.crcs);
    FUZZ_CHECK(st.ok(), ("a committed shard does not verify: " + st.ToString()).c_str());
  }
}

}  // namespace

// GEMINI_FUZZ_VERBOSE=1: print what each request ended with (to read a finding).
const bool kVerbose = std::getenv("GEMINI_FUZZ_VERBOSE") != nullptr;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  SetLogLevel(LogLevel::ERROR);  // PeerService logs every dropped peer at WARN.
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0] % 4;
  std::string bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (mode) {
    case 0: {
      Manifest m;
      std::vector<uint32_t> crcs;
      if (DecodeShardHeader(bytes, &m, &crcs).ok()) {
        FUZZ_CHECK(crcs.size() == m.NumChunks(), "CRC count");
        FUZZ_CHECK(m.Validate().ok(), "accepted an invalid manifest");
      }
      break;
    }
    case 1: {
      std::string body;
      (void)DecodeStatusReply(bytes, &body);
      break;
    }
    case 2: {
      auto store = NewStore();
      PeerService service(store.get(), kJob,
                          [](const std::string&, uint32_t rank) { return rank == 0; });
      fuzz::MemoryConnection conn(bytes);
      Status st = service.Serve(conn);
      if (kVerbose) std::fprintf(stderr, "Serve: %s\n", st.ToString().c_str());
      CheckStore(*store);
      break;
    }
    default: {
      auto store = NewStore();
      fuzz::MemoryConnection conn(bytes);
      auto got = FetchInto(conn, store.get(), 99, kJob, 1, -1, std::chrono::milliseconds(1000));
      if (kVerbose)
        std::fprintf(stderr, "FetchInto: %s\n",
                     got.ok() ? std::to_string(*got).c_str() : got.status().ToString().c_str());
      if (got.ok()) FUZZ_CHECK(store->Pin(kJob, 1, *got).ok(), "fetched shard not committed");
      CheckStore(*store);
      break;
    }
  }
  return 0;
}
