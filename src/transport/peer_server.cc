#include "transport/peer_server.h"

#include "common/log.h"

namespace gemini::transport {
namespace {

// How often the accept thread wakes to reap finished connections.
constexpr std::chrono::milliseconds kAcceptSlice{200};
// Pause after an accept error other than a timeout (e.g. out of fds).
constexpr std::chrono::milliseconds kAcceptErrorPause{50};

}  // namespace

PeerServer::PeerServer(std::unique_ptr<Listener> listener, JobSecret secret,
                       PeerServerOptions options, Handler handler)
    : listener_(std::move(listener)),
      secret_(std::move(secret)),
      options_(std::move(options)),
      handler_(std::move(handler)) {}

PeerServer::~PeerServer() { Stop(); }

Status PeerServer::Start() {
  if (options_.job.empty() || !handler_) return InvalidArgument("peer server: no job or handler");
  if (started_.exchange(true)) return FailedPrecondition("peer server already started");
  accept_thread_ = std::thread([this] { AcceptLoop(); });
  return Status::Ok();
}

void PeerServer::Stop() {
  if (stopping_.exchange(true)) return;
  listener_->Close();
  if (accept_thread_.joinable()) accept_thread_.join();
  std::list<std::unique_ptr<Conn>> conns;
  {
    std::lock_guard<std::mutex> lock(mu_);
    conns.swap(conns_);
  }
  for (auto& c : conns) c->conn->Fail(Aborted("peer server on " + address() + " stopping"));
  for (auto& c : conns) c->thread.join();
}

PeerServer::Stats PeerServer::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

size_t PeerServer::active_connections() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ActiveLocked();
}

size_t PeerServer::serving_connections() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (const auto& c : conns_) n += !c->done.load() && c->phase == Conn::Phase::kServing;
  return n;
}

size_t PeerServer::ActiveLocked() const {
  size_t n = 0;
  for (const auto& c : conns_) n += c->done.load() ? 0 : 1;
  return n;
}

void PeerServer::AcceptLoop() {
  while (!stopping_.load()) {
    auto conn = listener_->Accept(std::chrono::steady_clock::now() + kAcceptSlice);
    ReapFinished();
    if (conn.ok()) {
      Admit(std::move(*conn));
    } else if (conn.status().code() != Code::kDeadlineExceeded && !stopping_.load()) {
      GEMINI_LOG(WARN) << "[transport] peer server on " << address() << ": "
                       << conn.status().ToString();
      std::this_thread::sleep_for(kAcceptErrorPause);
    }
  }
}

void PeerServer::Admit(std::unique_ptr<Connection> conn) {
  std::lock_guard<std::mutex> lock(mu_);
  ++stats_.accepted;
  size_t serving = 0;
  for (const auto& o : conns_) serving += !o->done.load() && o->phase == Conn::Phase::kServing;
  if (stopping_.load() || serving >= options_.max_connections) {
    ++stats_.refused_over_limit;
    GEMINI_LOG_EVERY_N_SEC(WARN, 10)
        << "[transport] peer server on " << address() << ": refused " << conn->peer() << ", "
        << options_.max_connections << " authenticated connections already open";
    return;  // `conn` closes as it goes out of scope.
  }
  auto c = std::make_unique<Conn>();
  std::string peer = conn->peer();
  c->source = peer.substr(0, peer.rfind(':'));
  c->conn = std::move(conn);
  // Make room in the handshaking pool: evict the oldest of this source when
  // it has its share, else the oldest of all when the pool is full.
  size_t all = 0, mine = 0;
  Conn *oldest = nullptr, *oldest_mine = nullptr;
  for (auto& o : conns_) {
    if (o->done.load() || o->phase != Conn::Phase::kHandshaking) continue;
    ++all;
    if (!oldest) oldest = o.get();
    if (o->source == c->source) {
      ++mine;
      if (!oldest_mine) oldest_mine = o.get();
    }
  }
  Conn* evict = mine >= options_.max_handshaking_per_source ? oldest_mine
                : all >= options_.max_handshaking           ? oldest
                                                            : nullptr;
  if (evict) {
    ++stats_.evicted_handshaking;
    evict->phase = Conn::Phase::kLeaving;  // Out of the pool now; its thread ends soon.
    evict->conn->Fail(Aborted("handshaking connections from " + evict->source +
                              " over the limit; oldest dropped"));
    GEMINI_LOG_EVERY_N_SEC(WARN, 10)
        << "[transport] peer server on " << address() << ": too many handshaking connections ("
        << all << " in all, " << mine << " from " << c->source << "); dropping the oldest";
  }
  Conn* raw = c.get();
  c->thread = std::thread([this, raw] { Serve(raw); });
  conns_.push_back(std::move(c));
}

void PeerServer::Serve(Conn* c) {
  Connection& conn = *c->conn;
  if (Authenticate(c).ok()) {
    Status s = handler_(conn);
    if (!s.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.handler_errors;
    }
    if (!s.ok() && !stopping_.load())
      GEMINI_LOG(INFO) << "[transport] peer " << conn.peer() << " closed: " << s.ToString();
  }
  conn.Shutdown();
  c->done.store(true);
}

Status PeerServer::Authenticate(Conn* c) {
  Deadline deadline = std::chrono::steady_clock::now() + options_.handshake_timeout;
  Status s = ServerHandshake(*c->conn, secret_, options_.job, deadline);
  std::lock_guard<std::mutex> lock(mu_);
  if (s.ok() && c->phase != Conn::Phase::kHandshaking) s = Aborted("evicted while handshaking");
  c->phase = s.ok() ? Conn::Phase::kServing : Conn::Phase::kLeaving;
  ++(s.ok() ? stats_.authenticated : stats_.failed_handshake);
  if (!s.ok() && !stopping_.load())
    GEMINI_LOG_EVERY_N_SEC(WARN, 10)
        << "[transport] peer server on " << address() << ": " << s.ToString();
  return s;
}

void PeerServer::ReapFinished() {
  std::list<std::unique_ptr<Conn>> finished;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = conns_.begin(); it != conns_.end();) {
      auto next = std::next(it);
      if ((*it)->done.load()) finished.splice(finished.end(), conns_, it);
      it = next;
    }
  }
  for (auto& c : finished) c->thread.join();
}

}  // namespace gemini::transport
