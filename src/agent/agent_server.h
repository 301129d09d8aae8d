// AgentServer: serves the trainer <-> agent protocol (store/protocol.h) on a
// Unix socket (mode 0600) in front of a Store.
//
// One thread accepts; each connection gets its own thread that reads
// requests, calls the store and replies. A connection that sends anything
// malformed (unknown type, oversized or truncated frame, undecodable body)
// gets an error reply where possible and is closed; nothing else is
// affected. When a connection closes, the store drops whatever it was
// writing (its committed slots stay). Stop() closes the listener and every
// connection and joins all threads; it is called by the destructor too.
//
// Hooks let a multi-machine agent extend the server: on_commit runs after
// each trainer commit (replication starts there), fetch serves kFetch, and
// status_json replaces the store's own status. Hooks are set before Start()
// and called on connection threads holding no server lock.
// Public methods are thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/status.h"
#include "common/wire.h"
#include "store/store.h"

namespace gemini {

struct AgentHooks {
  std::function<void(const std::string& job, uint32_t rank, int64_t iteration)> on_commit;
  std::function<Result<int64_t>(const std::string& job, uint32_t rank, int64_t iteration,
                                int64_t from_host)>
      fetch;
  std::function<std::string()> status_json;
  // A trainer captured a shard: Begin to Commit took `seconds`.
  std::function<void(double seconds, uint64_t bytes)> on_capture;
  // The training timeline and the checkpoint schedule (agent/interleave/interleaver.h).
  std::function<Status(const std::string& job, uint32_t rank, int64_t iteration, uint32_t kind,
                       int op, double t)>
      on_event;
  std::function<Status(const std::string& job, uint32_t rank, int64_t iteration, bool before_step,
                       std::chrono::milliseconds timeout)>
      wait_due;
  std::function<Result<std::string>(const std::string& job)> schedule_json;
};

class AgentServer {
 public:
  AgentServer(Store* store, std::string socket_path, AgentHooks hooks = {});
  ~AgentServer();

  Status Start();
  void Stop();
  const std::string& socket_path() const { return socket_path_; }

 private:
  struct Conn {
    int fd;
    uint64_t id;
    std::thread thread;
    std::atomic<bool> done{false};
    std::chrono::steady_clock::time_point begin_at;  // Of the save in progress.
    uint64_t begin_bytes = 0;
  };
  // What a request handler produced: a status, a reply body, maybe an fd.
  struct Reply {
    Status status;
    std::string body;
    int fd = -1;
    bool close = false;  // A protocol error: the connection is dropped after the reply.
    bool none = false;   // A one-way message: no reply.
  };

  void AcceptLoop();
  void Serve(Conn* conn);
  // Handles one request; returns false when the connection must close.
  bool Handle(Conn* conn, uint32_t type, const std::string& payload);
  static Reply Malformed(uint32_t type);
  Reply HandleBegin(Conn* conn, Reader& r);
  Reply HandleCommit(Conn* conn, Reader& r);
  Reply HandleOpen(Reader& r);
  Reply HandleJobRequest(uint32_t type, Reader& r);
  Reply HandleFetch(Reader& r);
  Reply HandleEvent(Reader& r);
  Reply HandleWaitDue(Reader& r);
  Reply HandleSchedule(Reader& r);
  Reply HandleCadence(Reader& r);
  void ReapFinished();

  Store* store_;
  const std::string socket_path_;
  const AgentHooks hooks_;
  int listen_fd_ = -1;
  std::atomic<bool> stopping_{false};
  std::thread accept_thread_;
  std::mutex mu_;
  std::list<std::unique_ptr<Conn>> conns_;
  uint64_t next_id_ = 1;
};

}  // namespace gemini
