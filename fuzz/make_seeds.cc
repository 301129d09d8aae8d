// make_seeds: writes the seed corpora of the fuzz targets, fuzz/corpus/<target>/,
// from the code's own encoders, so seeds follow the formats when they change
// (`scripts/fuzz --seeds` rebuilds and reruns this).
//
// Usage: make_seeds <corpus dir>. Each seed is the target's mode byte (see
// each <target>_fuzz.cc) followed by valid bytes, plus a few invalid ones.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agent/cluster/job_coordinator.h"
#include "agent/cluster/plan.h"
#include "agent/replication/peer_protocol.h"
#include "common/crc32c.h"
#include "common/wire.h"
#include "coord/etcd_codec.h"
#include "persist/catalog.h"
#include "persist/shard_file.h"
#include "store/manifest.h"
#include "store/protocol.h"
#include "transport/frame.h"

using namespace gemini;
namespace fs = std::filesystem;

namespace {

fs::path g_root;

void Seed(const std::string& target, const std::string& name, uint8_t mode,
          const std::string& bytes) {
  fs::create_directories(g_root / target);
  std::ofstream out(g_root / target / name, std::ios::binary | std::ios::trunc);
  out.put(static_cast<char>(mode));
  out << bytes;
  if (!out) {
    std::fprintf(stderr, "make_seeds: cannot write %s\n", (g_root / target / name).c_str());
    std::exit(1);
  }
}

std::string Frame(uint32_t type, const std::string& payload) {
  Writer w;
  w.PutU32(transport::kFrameMagic);
  w.PutU32(type);
  w.PutU64(payload.size());
  w.PutRaw(payload.data(), payload.size());
  return w.Take();
}

// `tensors` small tensors; with `big`, one more of 8800 bytes (3 chunks of 4 KiB,
// the smallest chunk size).
Manifest SmallManifest(uint32_t rank, uint64_t chunk_size, int tensors, bool big = false) {
  Manifest m;
  m.job = "job";
  m.iteration = 1;
  m.rank = rank;
  m.world_size = 4;
  m.chunk_size = chunk_size;
  for (int i = 0; i < tensors; ++i)
    m.entries.push_back({.name = "t" + std::to_string(i),
                         .dtype = i % 2 ? Dtype::kBFloat16 : Dtype::kFloat32,
                         .shape = {10, 3 + i},
                         .length = static_cast<uint64_t>((i % 2 ? 2 : 4) * 10 * (3 + i))});
  if (big)
    m.entries.push_back(
        {.name = "big", .dtype = Dtype::kFloat32, .shape = {1100, 2}, .length = 8800});
  m.AssignOffsets();
  return m;
}

std::string Data(const Manifest& m) {
  std::string d(m.data_bytes, '\0');
  for (size_t i = 0; i < d.size(); ++i) d[i] = static_cast<char>(i * 13 + m.rank);
  return d;
}

std::vector<uint32_t> Crcs(const Manifest& m, const std::string& d) {
  std::vector<uint32_t> crcs;
  for (uint64_t off = 0; off < m.data_bytes; off += m.chunk_size)
    crcs.push_back(Crc32c(d.data() + off, std::min(m.chunk_size, m.data_bytes - off)));
  return crcs;
}

void FrameSeeds() {
  Seed("frame", "small", 0, Frame(1, "hello") + Frame(2, "") + Frame(3, std::string(100, 'x')));
  Seed("frame", "small_recvframe", 4, Frame(3, "abc") + Frame(1, std::string(64, 'y')));
  Seed("frame", "small_short_cap", 8, Frame(3, std::string(40, 'z')));
  Writer fetch;
  fetch.PutString("job");
  fetch.PutU32(1);
  fetch.PutI64(-1);
  Seed("frame", "peer_requests", 1, Frame(kPeerStatus, "") + Frame(kPeerFetch, fetch.str()));
  Seed("frame", "big", 2, Frame(7, std::string(5000, 'b')));
  Seed("frame", "bad_magic", 0, "GMF2" + Frame(1, "x").substr(4));
  Seed("frame", "over_limit", 0, Frame(1, std::string(65, 'x')));
  Seed("frame", "truncated", 0, Frame(3, "abcdef").substr(0, 19));
}

void HandshakeSeeds() {
  Writer hello;
  hello.PutU32(0x48414D47);
  hello.PutU32(1);
  hello.PutRaw(std::string(32, 'c').data(), 32);
  // Server side: a client hello then a proof (bit 1: this target makes it correct).
  Seed("handshake", "server_honest", 3, hello.str());
  Seed("handshake", "server_wrong_proof", 1, hello.str() + std::string(32, 'p'));
  Seed("handshake", "server_bad_version", 1, hello.str().substr(0, 4) + std::string(36, '\2'));
  // Client side: the server's hello (a correct one is made up from the nonce
  // here when bit 1 is set), then the accept.
  Seed("handshake", "client_honest", 2, std::string(32, 's') + "GMOK");
  Seed("handshake", "client_bad_accept", 2, std::string(32, 's') + "GMNO");
  Seed("handshake", "client_wrong_proof", 0, hello.str() + std::string(32, 'p') + "GMOK");
}

void ManifestSeeds() {
  for (int n : {0, 1, 3}) {
    Manifest m = SmallManifest(n % 4, 4096, n, n == 3);
    Seed("manifest", "valid_" + std::to_string(n), 0, m.Encode());
    Seed("manifest", "valid_fixcrc_" + std::to_string(n), 1, m.Encode());
  }
  Manifest piece = SmallManifest(1, 8192, 1);
  piece.entries[0].tensor_offset = 40;
  piece.entries[0].length = 40;
  piece.entries[0].shape = {40};
  piece.AssignOffsets();
  Seed("manifest", "piece", 1, piece.Encode());
  std::string bad = SmallManifest(0, 4096, 2).Encode();
  bad[bad.size() / 2] ^= 0x55;
  Seed("manifest", "bad_crc", 0, bad);
  Seed("manifest", "truncated", 1, SmallManifest(0, 4096, 2).Encode().substr(0, 30));
}

void PeerSeeds() {
  Manifest m = SmallManifest(1, 4096, 2, true);
  std::string d = Data(m);
  auto crcs = Crcs(m, d);
  std::string header = EncodeShardHeader(m, crcs);
  Seed("peer", "shard_header", 0, header);
  Seed("peer", "status_ok", 1, EncodeStatusReply(Status::Ok(), "{\"jobs\":[]}"));
  Seed("peer", "status_error", 1, EncodeStatusReply(NotFound("no such shard")));
  // Holder side: a chunked replica of rank 1 (chunks of 3000 bytes, window 2),
  // a fetch of this machine's rank 0, a status request.
  Writer req;
  req.PutString(header);
  req.PutU64(3000);
  req.PutU32(2);
  std::string stream = Frame(kPeerReplicateChunked, req.str());
  for (uint64_t off = 0; off < d.size(); off += 3000) {
    Writer chunk;
    chunk.PutU64(off);
    std::string piece = d.substr(off, 3000);
    chunk.PutRaw(piece.data(), piece.size());
    stream += Frame(kPeerChunk, chunk.str());
  }
  Writer fetch;
  fetch.PutString("job");
  fetch.PutU32(0);
  fetch.PutI64(-1);
  Seed("peer", "serve_replica", 2, stream);
  Seed("peer", "serve_replica_fetch_status", 2,
       stream + Frame(kPeerFetch, fetch.str()) + Frame(kPeerStatus, ""));
  Seed("peer", "serve_own_rank", 2, Frame(kPeerReplicateChunked, [&] {
         Manifest own = SmallManifest(0, 4096, 1);
         std::string od = Data(own);
         Writer w;
         w.PutString(EncodeShardHeader(own, Crcs(own, od)));
         w.PutU64(4096);
         w.PutU32(1);
         return w.Take();
       }()));
  // The same replica streamed: no CRCs in the header, a CRC trailer after
  // the last chunk (and one with a forged CRC).
  Writer sreq;
  sreq.PutString(EncodeShardHeader(m, {}));
  sreq.PutU64(3000);
  sreq.PutU32(2);
  std::string streamed = Frame(kPeerReplicateStreamed, sreq.str()) +
                         stream.substr(Frame(kPeerReplicateChunked, req.str()).size());
  Writer trailer;
  PutCrcs(trailer, crcs);
  Seed("peer", "serve_streamed", 2, streamed + Frame(kPeerChunkCrcs, trailer.str()));
  std::vector<uint32_t> forged = crcs;
  forged.back() ^= 1;
  Writer bad_trailer;
  PutCrcs(bad_trailer, forged);
  Seed("peer", "serve_streamed_bad_trailer", 2,
       streamed + Frame(kPeerChunkCrcs, bad_trailer.str()));
  std::string corrupt = stream;
  corrupt[corrupt.size() - 3] ^= 1;
  Seed("peer", "serve_bad_crc", 2, corrupt);
  // Fetching side: the peer's reply to a fetch of rank 1, then the data.
  std::string reply = Frame(kPeerFetchReply, EncodeStatusReply(Status::Ok(), header));
  Seed("peer", "fetch", 3, reply + Frame(kPeerData, d));
  Seed("peer", "fetch_not_found", 3, Frame(kPeerFetchReply, EncodeStatusReply(NotFound("none"))));
  Seed("peer", "fetch_short_data", 3, reply + Frame(kPeerData, d.substr(0, 10)));
}

void CoordSeeds() {
  using nlohmann::json;
  json kv = {{"key", etcd::Base64Encode("/gemini/job/plan")},
             {"value", etcd::Base64Encode("{}")},
             {"create_revision", "5"},
             {"mod_revision", "7"},
             {"version", "2"},
             {"lease", "1234"}};
  json range = {{"header", {{"revision", "9"}}}, {"kvs", json::array({kv, kv})}, {"count", "2"}};
  Seed("coord", "range", 0, range.dump());
  Seed("coord", "range_empty", 0, json{{"header", {{"revision", "3"}}}}.dump());
  json events = {{"header", {{"revision", "9"}}},
                 {"events", json::array({{{"kv", kv}}, {{"type", "DELETE"}, {"kv", kv}}})}};
  Seed("coord", "events", 1, events.dump());
  Seed("coord", "kv", 2, kv.dump());
  Seed("coord", "kv_bad_base64", 2, json{{"key", "!!!"}}.dump());
  json err = {{"error", "etcdserver: requested lease not found"},
              {"code", 5},
              {"message", "etcdserver: requested lease not found"}};
  Seed("coord", "error_404", 3 | (2 << 5), err.dump());
  Seed("coord", "error_500", 3 | (3 << 5), err.dump());
  Plan p;
  p.epoch = 2;
  p.state = "running";
  p.resume_iteration = 100;
  p.source = "local";
  p.kind = "software";
  p.failed_hosts = {1, 3};
  p.failed_at = 1700000000.5;
  p.detected_at = 1700000001.25;
  p.master_port = 29500;
  p.reason = "rank 3 exited";
  Seed("coord", "plan", 4, EncodePlan(p));
  JobConfig c;
  c.num_hosts = 2;
  c.nproc_per_host = 4;
  c.command = {"python3", "train.py", "--steps", "10"};
  c.env = {{"OMP_NUM_THREADS", "1"}};
  c.persist_dir = "/tmp/persist";
  c.persist_every = 10;
  Seed("coord", "job_config", 5, EncodeJobConfig(c));
  HostInfo h{.host = 1, .addr = "10.0.0.2", .port = 7000, .ranks = {4, 5, 6, 7}};
  Seed("coord", "host_info", 6, EncodeHostInfo(h));
  CompleteMarker mk{.job = "job", .iteration = 100, .world_size = 3, .ranks = {0, 1, 2}};
  Seed("coord", "complete_marker", 7, mk.Encode());
  Seed("coord", "not_json", 4, "{\"epoch\": ");
}

void ShardFileSeeds() {
  char tmpl[] = "/tmp/gemini-seeds-XXXXXX";
  const char* dir = mkdtemp(tmpl);
  if (dir == nullptr) {
    std::perror("make_seeds: mkdtemp");
    std::exit(1);
  }
  int n = 0;
  for (auto [chunk, tensors] :
       {std::pair<uint64_t, int>{4096, 2}, {8192, 1}, {4096, 3}, {4096, 0}}) {
    Manifest m = SmallManifest(0, chunk, tensors, n == 2);
    std::string d = Data(m);
    std::string path = std::string(dir) + "/s.gshard";
    Status st = WriteShardFile(PersistEnv::Posix(), path, /*epoch=*/n % 2, m, Crcs(m, d),
                               reinterpret_cast<const uint8_t*>(d.data()));
    if (!st.ok()) {
      std::fprintf(stderr, "make_seeds: %s\n", st.ToString().c_str());
      std::exit(1);
    }
    std::ifstream in(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::string name = "valid_" + std::to_string(n++);
    Seed("shard_file", name, 0, bytes);
    Seed("shard_file", name + "_fixcrc", 1, bytes);
    Seed("shard_file", name + "_small_buffer", 2, bytes);
    if (n == 1) {
      std::string flipped = bytes;
      flipped[bytes.size() - 1] ^= 1;
      Seed("shard_file", "bad_chunk_crc", 0, flipped);
      Seed("shard_file", "truncated", 1, bytes.substr(0, bytes.size() - 7));
    }
    std::remove(path.c_str());
  }
  rmdir(dir);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seeds <corpus dir>\n");
    return 2;
  }
  g_root = argv[1];
  FrameSeeds();
  HandshakeSeeds();
  ManifestSeeds();
  PeerSeeds();
  CoordSeeds();
  ShardFileSeeds();
  return 0;
}
