#include "store/client.h"

#include <unistd.h>

#include <algorithm>

#include "common/unix_socket.h"
#include "common/wire.h"
#include "store/chunks.h"
#include "store/protocol.h"

namespace gemini {
namespace {

struct Grant {
  uint32_t slot = 0;
  std::string segment;
  uint64_t size = 0;
};

bool GetGrant(Reader& r, Grant* g) {
  return r.GetU32(&g->slot) && r.GetString(&g->segment, 255) && r.GetU64(&g->size);
}

Result<Manifest> BuildManifest(const std::string& job, uint32_t rank, uint32_t world_size,
                               int64_t iteration, const std::vector<TensorSource>& tensors,
                               uint64_t chunk_size) {
  Manifest m;
  m.job = job;
  m.rank = rank;
  m.world_size = world_size;
  m.iteration = iteration;
  m.chunk_size = chunk_size;
  m.entries.reserve(tensors.size());
  for (const auto& t : tensors)
    m.entries.push_back({t.name, t.dtype, t.shape, 0, t.length, t.tensor_offset});
  m.AssignOffsets();
  GEMINI_RETURN_IF_ERROR(m.Validate());
  return m;
}

}  // namespace

Result<std::unique_ptr<AgentClient>> AgentClient::Connect(const std::string& socket_path,
                                                          std::chrono::milliseconds call_timeout) {
  GEMINI_ASSIGN_OR_RETURN(int fd, UnixConnect(socket_path));
  return std::unique_ptr<AgentClient>(new AgentClient(socket_path, fd, call_timeout));
}

AgentClient::~AgentClient() {
  if (unmap_hook_)
    for (auto& [key, c] : maps_)
      if (c.mapping) unmap_hook_(c.mapping->data(), c.mapping->size());
  if (fd_ >= 0) close(fd_);
}

Result<std::string> AgentClient::Call(uint32_t type, const std::string& payload, int* fd,
                                      std::chrono::milliseconds timeout) {
  std::lock_guard<std::mutex> lock(call_mu_);
  if (fd_ < 0) {
    auto again = UnixConnect(socket_path_);
    if (!again.ok())
      return Unavailable("reconnecting to the agent at " + socket_path_ + ": " +
                         again.status().message());
    fd_ = *again;
  }
  auto drop = [&](const Status& st) {
    close(fd_);
    fd_ = -1;
    return Status(st.code(), st.message() +
                                 " (connection to the agent dropped; the next call "
                                 "connects again)");
  };
  if (Status sent = SendFrame(fd_, type, payload); !sent.ok()) return drop(sent);
  auto received = RecvFrame(fd_, DeadlineIn(timeout));
  if (!received.ok()) return drop(received.status());
  Frame reply = std::move(*received);
  if (fd != nullptr) {
    *fd = reply.fd;
  } else if (reply.fd >= 0) {
    close(reply.fd);
  }
  std::string body;
  Status st = reply.type == kReply ? DecodeReply(reply.payload, &body)
                                   : Internal("unexpected frame type from the agent");
  if (!st.ok()) {
    if (fd != nullptr && *fd >= 0) close(*fd);
    if (fd != nullptr) *fd = -1;
    return st;
  }
  return body;
}

Result<std::shared_ptr<Mapping>> AgentClient::MapSlot(const std::string& job, uint32_t rank,
                                                      uint32_t slot, const std::string& segment,
                                                      uint64_t size, int fd, bool writable) {
  struct CloseFd {
    int fd;
    ~CloseFd() { close(fd); }
  } closer{fd};
  std::lock_guard<std::mutex> lock(map_mu_);
  CachedMap& c = maps_[{job, rank, slot}];
  if (c.segment != segment || !c.mapping || c.mapping->size() != size ||
      (writable && !c.writable)) {
    if (c.mapping && unmap_hook_) unmap_hook_(c.mapping->data(), c.mapping->size());
    // Drop the old mapping first (unless an OpenShard holds it): its memory may be freed.
    c.mapping.reset();
    GEMINI_ASSIGN_OR_RETURN(c.mapping, Mapping::Map(fd, size, writable));
    c.segment = segment;
    c.writable = writable;
  }
  return c.mapping;
}

Result<SaveGrant> AgentClient::BeginSave(const std::string& job, uint32_t rank, uint32_t world_size,
                                         int64_t iteration,
                                         const std::vector<TensorSource>& tensors,
                                         const SaveOptions& options) {
  GEMINI_ASSIGN_OR_RETURN(
      Manifest m, BuildManifest(job, rank, world_size, iteration, tensors, options.chunk_size));
  Writer w;
  w.PutString(m.Encode());
  w.PutU32(static_cast<uint32_t>(options.wait.count()));
  int fd = -1;
  GEMINI_ASSIGN_OR_RETURN(std::string body,
                          Call(kBegin, w.Take(), &fd, options.wait + call_timeout_));
  Reader r(body);
  Grant g;
  if (!GetGrant(r, &g) || fd < 0 || g.size < m.data_bytes) {
    if (fd >= 0) close(fd);
    return Internal("malformed begin reply from the agent");
  }
  GEMINI_ASSIGN_OR_RETURN(std::shared_ptr<Mapping> mapping,
                          MapSlot(job, rank, g.slot, g.segment, g.size, fd, /*writable=*/true));
  return SaveGrant{std::move(m), mapping->data(), g.size};
}

Status AgentClient::CommitSave(const SaveGrant& grant, const std::vector<uint32_t>& crcs) {
  Writer c;
  c.PutString(grant.manifest.job);
  c.PutU32(grant.manifest.rank);
  c.PutI64(grant.manifest.iteration);
  PutCrcs(c, crcs);
  return Call(kCommit, c.Take(), nullptr, call_timeout_).status();
}

void AgentClient::SetUnmapHook(std::function<void(uint8_t*, size_t)> hook) {
  std::lock_guard<std::mutex> lock(map_mu_);
  unmap_hook_ = std::move(hook);
}

Status AgentClient::Save(const std::string& job, uint32_t rank, uint32_t world_size,
                         int64_t iteration, const std::vector<TensorSource>& tensors,
                         const SaveOptions& options) {
  GEMINI_ASSIGN_OR_RETURN(SaveGrant g,
                          BeginSave(job, rank, world_size, iteration, tensors, options));
  const Manifest& m = g.manifest;
  std::vector<Piece> pieces;
  pieces.reserve(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i)
    pieces.push_back({tensors[i].data, m.entries[i].offset, m.entries[i].length});
  return CommitSave(
      g, CaptureInto(g.region, m.data_bytes, m.chunk_size, pieces, options.copy_threads));
}

Result<OpenShard> AgentClient::Open(const std::string& job, uint32_t rank, int64_t iteration) {
  Writer w;
  w.PutString(job);
  w.PutU32(rank);
  w.PutI64(iteration);
  int fd = -1;
  GEMINI_ASSIGN_OR_RETURN(std::string body, Call(kOpen, w.Take(), &fd, call_timeout_));
  Reader r(body);
  std::string manifest_bytes;
  OpenShard shard;
  Grant g;
  bool ok = r.GetString(&manifest_bytes, kMaxFrame) && GetCrcs(r, &shard.crcs) && GetGrant(r, &g) &&
            fd >= 0;
  auto m = ok ? Manifest::Decode(manifest_bytes) : Result<Manifest>(Internal("malformed reply"));
  Status bad =
      !m.ok()                  ? m.status()
      : g.size < m->data_bytes ? Internal("slot smaller than its shard")
      : m->job != job || m->rank != rank || (iteration >= 0 && m->iteration != iteration)
          ? Internal("the agent answered with job '" + m->job + "' rank " +
                     std::to_string(m->rank) + " iteration " + std::to_string(m->iteration) +
                     " to a request for job '" + job + "' rank " + std::to_string(rank) +
                     " iteration " + std::to_string(iteration))
          : Status::Ok();
  if (!bad.ok()) {
    if (fd >= 0) close(fd);
    return bad;
  }
  shard.manifest = std::move(*m);
  GEMINI_ASSIGN_OR_RETURN(shard.mapping,
                          MapSlot(job, rank, g.slot, g.segment, g.size, fd, /*writable=*/false));
  shard.data = shard.mapping->data();
  return shard;
}

Status AgentClient::ReadInto(const OpenShard& shard, uint8_t* dst, int threads) {
  return CopyOutVerified(dst, shard.data, shard.manifest.data_bytes, shard.manifest.chunk_size,
                         shard.crcs, threads);
}

Result<int64_t> AgentClient::CompleteIteration(const std::string& job) {
  Writer w;
  w.PutString(job);
  GEMINI_ASSIGN_OR_RETURN(std::string body, Call(kQuery, w.Take(), nullptr, call_timeout_));
  Reader r(body);
  int64_t it = -1;
  if (!r.GetI64(&it)) return Internal("malformed query reply");
  return it;
}

Result<std::string> AgentClient::StatusJson() { return Call(kStatus, "", nullptr, call_timeout_); }

Result<int64_t> AgentClient::Fetch(const std::string& job, uint32_t rank, int64_t iteration,
                                   int64_t from_host) {
  Writer w;
  w.PutString(job);
  w.PutU32(rank);
  w.PutI64(iteration);
  w.PutI64(from_host);
  GEMINI_ASSIGN_OR_RETURN(std::string body,
                          Call(kFetch, w.Take(), nullptr, std::chrono::minutes(10)));
  Reader r(body);
  int64_t it = -1;
  if (!r.GetI64(&it)) return Internal("malformed fetch reply");
  return it;
}

Status AgentClient::DropJob(const std::string& job) {
  Writer w;
  w.PutString(job);
  return Call(kDrop, w.Take(), nullptr, call_timeout_).status();
}

Status AgentClient::SetCadence(const std::string& job, uint32_t rank, uint32_t every_k,
                               const std::string& reason) {
  Writer w;
  w.PutString(job);
  w.PutU32(rank);
  w.PutU32(every_k);
  w.PutString(reason);
  return Call(kCadence, w.Take(), nullptr, call_timeout_).status();
}

}  // namespace gemini
