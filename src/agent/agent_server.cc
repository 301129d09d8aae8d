#include "agent/agent_server.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "common/log.h"
#include "common/unix_socket.h"
#include "common/wire.h"
#include "store/protocol.h"

namespace gemini {
namespace {

constexpr auto kFrameDeadline = std::chrono::seconds(10);
constexpr std::chrono::milliseconds kMaxBeginWait{10 * 60 * 1000};

}  // namespace

AgentServer::Reply AgentServer::Malformed(uint32_t type) {
  return {InvalidArgument("malformed request of type " + std::to_string(type)), "", -1, true};
}

AgentServer::AgentServer(Store* store, std::string socket_path, AgentHooks hooks)
    : store_(store), socket_path_(std::move(socket_path)), hooks_(std::move(hooks)) {}

AgentServer::~AgentServer() { Stop(); }

Status AgentServer::Start() {
  GEMINI_ASSIGN_OR_RETURN(listen_fd_, UnixListen(socket_path_));
  accept_thread_ = std::thread([this] { AcceptLoop(); });
  return Status::Ok();
}

void AgentServer::Stop() {
  if (stopping_.exchange(true)) return;
  if (listen_fd_ >= 0) shutdown(listen_fd_, SHUT_RDWR);
  if (accept_thread_.joinable()) accept_thread_.join();
  if (listen_fd_ >= 0) {
    close(listen_fd_);
    unlink(socket_path_.c_str());
  }
  std::list<std::unique_ptr<Conn>> conns;
  {
    std::lock_guard<std::mutex> lock(mu_);
    conns.swap(conns_);
  }
  for (auto& c : conns) shutdown(c->fd, SHUT_RDWR);
  for (auto& c : conns) c->thread.join();
}

void AgentServer::ReapFinished() {
  std::list<std::unique_ptr<Conn>> finished;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = conns_.begin(); it != conns_.end();) {
      auto next = std::next(it);
      if ((*it)->done) finished.splice(finished.end(), conns_, it);
      it = next;
    }
  }
  for (auto& c : finished) c->thread.join();
}

void AgentServer::AcceptLoop() {
  while (!stopping_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (poll(&p, 1, 500) <= 0) {
      ReapFinished();
      continue;
    }
    auto fd = UnixAccept(listen_fd_);
    if (!fd.ok()) {
      if (!stopping_) GEMINI_LOG(WARN) << "[agent] accept: " << fd.status().ToString();
      continue;
    }
    // Only this agent's own user (or root) may talk to it: the socket hands
    // out shared-memory fds. The socket file is 0600 too; this holds even if
    // its mode was changed or the file replaced.
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (getsockopt(*fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
        (cred.uid != geteuid() && cred.uid != 0)) {
      GEMINI_LOG_EVERY_N_SEC(WARN, 10) << "[agent] refusing a connection from uid " << cred.uid
                                       << " (pid " << cred.pid << "): not the agent's user";
      close(*fd);
      continue;
    }
    auto conn = std::make_unique<Conn>();
    conn->fd = *fd;
    Conn* raw = conn.get();
    std::lock_guard<std::mutex> lock(mu_);
    conn->id = next_id_++;
    conns_.push_back(std::move(conn));
    raw->thread = std::thread([this, raw] { Serve(raw); });
  }
}

void AgentServer::Serve(Conn* conn) {
  while (!stopping_) {
    pollfd p{conn->fd, POLLIN, 0};
    int r = poll(&p, 1, 500);
    if (r == 0) continue;
    if (r < 0 && errno == EINTR) continue;
    auto frame = RecvFrame(conn->fd, DeadlineIn(kFrameDeadline));
    if (!frame.ok()) {
      if (frame.status().code() != Code::kUnavailable)
        GEMINI_LOG(WARN) << "[agent] connection " << conn->id
                         << " dropped: " << frame.status().ToString();
      break;
    }
    if (frame->fd >= 0) close(frame->fd);  // Trainers never send fds.
    if (!Handle(conn, frame->type, frame->payload)) break;
  }
  store_->AbortWriter(conn->id);
  close(conn->fd);
  conn->done = true;
}

AgentServer::Reply AgentServer::HandleBegin(Conn* conn, Reader& r) {
  std::string manifest_bytes;
  uint32_t wait_ms = 0;
  if (!r.GetString(&manifest_bytes, kMaxFrame) || !r.GetU32(&wait_ms) || !r.done())
    return Malformed(kBegin);
  auto m = Manifest::Decode(manifest_bytes);
  if (!m.ok()) return {m.status()};
  auto grant =
      store_->Begin(conn->id, *m, std::min(std::chrono::milliseconds(wait_ms), kMaxBeginWait));
  if (!grant.ok()) return {grant.status()};
  conn->begin_at = std::chrono::steady_clock::now();
  conn->begin_bytes = m->data_bytes;
  Writer w;
  w.PutU32(grant->slot_index);
  w.PutString(grant->segment_name);
  w.PutU64(grant->segment_size);
  return {Status::Ok(), w.Take(), grant->fd};
}

AgentServer::Reply AgentServer::HandleCommit(Conn* conn, Reader& r) {
  std::string job;
  uint32_t rank = 0;
  int64_t iteration = 0;
  std::vector<uint32_t> crcs;
  if (!r.GetString(&job, 256) || !r.GetU32(&rank) || !r.GetI64(&iteration) || !GetCrcs(r, &crcs) ||
      !r.done())
    return Malformed(kCommit);
  Status st = store_->Commit(conn->id, job, rank, iteration, std::move(crcs));
  if (st.ok() && hooks_.on_capture)
    hooks_.on_capture(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - conn->begin_at).count(),
        conn->begin_bytes);
  if (st.ok() && hooks_.on_commit) hooks_.on_commit(job, rank, iteration);
  return {st};
}

AgentServer::Reply AgentServer::HandleOpen(Reader& r) {
  std::string job;
  uint32_t rank = 0;
  int64_t iteration = 0;
  if (!r.GetString(&job, 256) || !r.GetU32(&rank) || !r.GetI64(&iteration) || !r.done())
    return Malformed(kOpen);
  auto shard = store_->Open(job, rank, iteration);
  if (!shard.ok()) return {shard.status()};
  if (shard->manifest.is_fragment()) {  // Not loadable: rebuilt through kFetch.
    close(shard->slot.fd);
    return {NotFound(
        "this machine holds only fragment " + std::to_string(shard->manifest.fragment.index) +
        " of rank " + std::to_string(rank) + " iteration " +
        std::to_string(shard->manifest.iteration) + "; fetch it to rebuild the shard")};
  }
  Writer w;
  w.PutString(shard->manifest.Encode());
  PutCrcs(w, shard->crcs);
  w.PutU32(shard->slot.slot_index);
  w.PutString(shard->slot.segment_name);
  w.PutU64(shard->slot.segment_size);
  return {Status::Ok(), w.Take(), shard->slot.fd};
}

// kQuery and kDrop: [string job].
AgentServer::Reply AgentServer::HandleJobRequest(uint32_t type, Reader& r) {
  std::string job;
  if (!r.GetString(&job, 256) || !r.done()) return Malformed(type);
  if (type == kDrop) return {store_->DropJob(job)};
  Writer w;
  w.PutI64(store_->CompleteIteration(job));
  return {Status::Ok(), w.Take()};
}

AgentServer::Reply AgentServer::HandleFetch(Reader& r) {
  std::string job;
  uint32_t rank = 0;
  int64_t iteration = 0, from = -1;
  if (!r.GetString(&job, 256) || !r.GetU32(&rank) || !r.GetI64(&iteration) || !r.GetI64(&from) ||
      !r.done())
    return Malformed(kFetch);
  if (!hooks_.fetch)
    return {FailedPrecondition("this agent is not part of a cluster (start it with --etcd)")};
  auto got = hooks_.fetch(job, rank, iteration, from);
  if (!got.ok()) return {got.status()};
  Writer w;
  w.PutI64(*got);
  return {Status::Ok(), w.Take()};
}

AgentServer::Reply AgentServer::HandleEvent(Reader& r) {
  std::string job;
  uint32_t rank = 0, kind = 0;
  int64_t iteration = 0;
  uint64_t op = 0, bits = 0;
  if (!r.GetString(&job, 256) || !r.GetU32(&rank) || !r.GetI64(&iteration) || !r.GetU32(&kind) ||
      !r.GetU64(&op) || !r.GetU64(&bits) || !r.done())
    return Malformed(kEvent);
  Reply reply;
  reply.none = true;
  if (!hooks_.on_event) return reply;  // A one-machine agent has no schedule: ignore it.
  double t;
  std::memcpy(&t, &bits, sizeof(t));
  Status st = hooks_.on_event(job, rank, iteration, kind, static_cast<int>(op) - 1, t);
  // One-way: nobody to answer; a well-formed but inconsistent report is only logged.
  if (!st.ok()) GEMINI_LOG(DEBUG) << "[agent] timeline event: " << st.ToString();
  return reply;
}

AgentServer::Reply AgentServer::HandleWaitDue(Reader& r) {
  std::string job;
  uint32_t rank = 0, before_step = 0, timeout_ms = 0;
  int64_t iteration = 0;
  if (!r.GetString(&job, 256) || !r.GetU32(&rank) || !r.GetI64(&iteration) ||
      !r.GetU32(&before_step) || !r.GetU32(&timeout_ms) || !r.done())
    return Malformed(kWaitDue);
  if (!hooks_.wait_due) return {Status::Ok()};  // Nothing is replicated here: nothing is due.
  return {hooks_.wait_due(job, rank, iteration, before_step != 0,
                          std::min(std::chrono::milliseconds(timeout_ms), kMaxBeginWait))};
}

AgentServer::Reply AgentServer::HandleSchedule(Reader& r) {
  std::string job;
  if (!r.GetString(&job, 256) || !r.done()) return Malformed(kSchedule);
  if (!hooks_.schedule_json) return {Status::Ok(), R"({"mode":"none","ready":false,"every_k":1})"};
  auto j = hooks_.schedule_json(job);
  if (!j.ok()) return {j.status()};
  return {Status::Ok(), *j};
}

AgentServer::Reply AgentServer::HandleCadence(Reader& r) {
  std::string job, reason;
  uint32_t rank = 0, every_k = 0;
  if (!r.GetString(&job, 256) || !r.GetU32(&rank) || !r.GetU32(&every_k) ||
      !r.GetString(&reason, 1 << 16) || !r.done())  // Store checks the length.
    return Malformed(kCadence);
  return {store_->SetCadence(job, rank, every_k, std::move(reason))};
}

bool AgentServer::Handle(Conn* conn, uint32_t type, const std::string& payload) {
  Reader r(payload);
  Reply reply;
  switch (type) {
    case kBegin:
      reply = HandleBegin(conn, r);
      break;
    case kCommit:
      reply = HandleCommit(conn, r);
      break;
    case kOpen:
      reply = HandleOpen(r);
      break;
    case kQuery:
    case kDrop:
      reply = HandleJobRequest(type, r);
      break;
    case kFetch:
      reply = HandleFetch(r);
      break;
    case kEvent:
      reply = HandleEvent(r);
      if (reply.none) return true;
      break;
    case kWaitDue:
      reply = HandleWaitDue(r);
      break;
    case kSchedule:
      reply = HandleSchedule(r);
      break;
    case kCadence:
      reply = HandleCadence(r);
      break;
    case kStatus:
      reply.body = hooks_.status_json ? hooks_.status_json() : store_->StatusJson();
      break;
    default:
      reply.status = InvalidArgument("unknown request type " + std::to_string(type));
  }
  Status sent = SendFrame(conn->fd, kReply, EncodeReply(reply.status, reply.body), reply.fd);
  if (reply.fd >= 0) close(reply.fd);
  if (reply.close)
    GEMINI_LOG(WARN) << "[agent] connection " << conn->id << ": " << reply.status.ToString()
                     << "; closing it";
  return sent.ok() && !reply.close;
}

}  // namespace gemini
