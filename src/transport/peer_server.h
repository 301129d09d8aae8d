// PeerServer: accepts agent-to-agent connections, authenticates each with
// the job secret (handshake.h), and gives every authenticated connection to
// a handler on a thread of its own.
//
// One thread accepts; each connection gets a thread that runs the server
// handshake (bounded by handshake_timeout), then handler(conn), then shuts
// the connection down. A connection that fails the handshake never reaches
// the handler; one whose handler returns an error is closed; neither affects
// the others.
//
// Limits, so that silent or hostile connections never starve authenticated
// traffic: authenticated connections are bounded by max_connections (while
// that many are open a new connection is closed at once, before any byte is
// read or sent). Connections still
// handshaking have a pool of their own, max_handshaking in all and
// max_handshaking_per_source from one address; a new connection that finds
// its pool full evicts the oldest handshaking one (of its source, or of
// all), which a real peer, done in milliseconds, never is in practice. A
// handshake must finish within handshake_timeout.
//
// Stop() closes the listener, fails every open connection (kAborted, which
// wakes handlers blocked on it), and joins every thread; the destructor
// calls it. A handler must return soon after its connection fails, and must
// not call Stop().
// Ownership: owns the listener, the connections and the threads; the
// handler is called on a connection thread holding no lock of the server.
// Thread safety: Start() once; Stop(), stats(), active_connections() and
// address() from any thread but a handler's (for Stop()).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "transport/connection.h"
#include "transport/handshake.h"

namespace gemini::transport {

struct PeerServerOptions {
  // The job whose peers may connect (part of every proof). Required.
  std::string job;
  // Authenticated connections open at once. Default 64.
  size_t max_connections = 64;
  // Connections handshaking at once, in all and from one source address.
  size_t max_handshaking = 32;
  size_t max_handshaking_per_source = 8;
  // Time a new connection has to complete the handshake. Default 2 s.
  std::chrono::milliseconds handshake_timeout{2000};
};

class PeerServer {
 public:
  // Serves one authenticated connection; the server closes it afterwards.
  using Handler = std::function<Status(Connection& conn)>;

  struct Stats {
    uint64_t accepted = 0;             // Connections taken from the listener.
    uint64_t refused_over_limit = 0;   // Closed: max_connections authenticated open.
    uint64_t evicted_handshaking = 0;  // Closed: handshaking, pool full.
    uint64_t failed_handshake = 0;     // Closed: did not authenticate.
    uint64_t authenticated = 0;        // Handed to the handler.
    uint64_t handler_errors = 0;       // The handler returned non-OK.
  };

  PeerServer(std::unique_ptr<Listener> listener, JobSecret secret, PeerServerOptions options,
             Handler handler);
  ~PeerServer();
  PeerServer(const PeerServer&) = delete;
  PeerServer& operator=(const PeerServer&) = delete;

  // Starts accepting. kInvalidArgument without a job or a handler,
  // kFailedPrecondition when called twice.
  Status Start();
  // Idempotent; see above.
  void Stop();

  std::string address() const { return listener_->address(); }
  Stats stats() const;
  // Connections currently handshaking or handled.
  size_t active_connections() const;
  // Of which authenticated and being served (what max_connections bounds).
  size_t serving_connections() const;

 private:
  struct Conn {
    std::unique_ptr<Connection> conn;
    std::thread thread;
    std::string source;  // The peer's address without its port.
    enum class Phase { kHandshaking, kServing, kLeaving };
    Phase phase = Phase::kHandshaking;  // guarded by mu_
    std::atomic<bool> done{false};
  };

  void AcceptLoop();
  void Admit(std::unique_ptr<Connection> conn);
  void Serve(Conn* c);
  Status Authenticate(Conn* c);
  void ReapFinished();
  size_t ActiveLocked() const;

  const std::unique_ptr<Listener> listener_;
  const JobSecret secret_;
  const PeerServerOptions options_;
  const Handler handler_;
  std::atomic<bool> started_{false};
  std::atomic<bool> stopping_{false};
  std::thread accept_thread_;
  mutable std::mutex mu_;
  std::list<std::unique_ptr<Conn>> conns_;  // guarded by mu_
  Stats stats_;                             // guarded by mu_
};

}  // namespace gemini::transport
