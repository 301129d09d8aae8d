// Connection and Listener: the byte-stream interface between agents.
//
// A Connection is a reliable, ordered, full-duplex byte stream to one peer
// (tcp/ implements it over TCP). It moves raw bytes only: framing lives in
// frame.h and authentication in handshake.h, both written against this
// interface so that every backend gets them unchanged.
//
// Contract every backend keeps:
//   - Every blocking call takes a Deadline and returns by then
//     (kDeadlineExceeded when it ran out).
//   - Sends and receives go straight from / to the caller's memory (no
//     intermediate copy), so a big payload can stream out of or into a
//     shared-memory slot.
//   - The first error is sticky: once any call failed (or Fail() /
//     Shutdown() was called) every later call returns that same Status, and
//     the stream is shut down in both directions. A failed call may have
//     moved part of its bytes; the stream is unusable afterwards.
//   - A peer that closed cleanly is kUnavailable.
// Ownership: the Connection owns its OS resources and releases them in its
// destructor. Thread safety: at most one thread sends and at most one thread
// receives at a time (they may be different threads); Fail(), Shutdown(),
// status() and peer() may be called from any thread, e.g. to unblock a
// thread waiting in SendAll / RecvAll. Destroy a Connection only once no
// other thread uses it.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <span>
#include <string>

#include "common/status.h"

namespace gemini {

// The same alias as in common/unix_socket.h and coord/kv_store.h.
using Deadline = std::chrono::steady_clock::time_point;

namespace transport {

// One piece of a gathered send; the memory stays the caller's.
struct ConstBuffer {
  const void* data = nullptr;
  size_t size = 0;
};

class Connection {
 public:
  virtual ~Connection() = default;

  // Sends every byte of every part, in order, as one contiguous stream.
  virtual Status SendParts(std::span<const ConstBuffer> parts, Deadline deadline) = 0;
  // Receives exactly n bytes into data.
  virtual Status RecvAll(void* data, size_t n, Deadline deadline) = 0;
  // Records `error` as the sticky error unless one is already recorded, and
  // shuts the stream down (waking any blocked call). Returns the sticky
  // error, which is `error` only if it came first. `error` must be non-OK.
  virtual Status Fail(Status error) = 0;
  // OK while usable; otherwise the sticky error.
  virtual Status status() const = 0;
  // The peer's address, e.g. "10.0.0.2:41234" or "[::1]:7000".
  virtual std::string peer() const = 0;

  Status SendAll(const void* data, size_t n, Deadline deadline) {
    ConstBuffer part{data, n};
    return SendParts({&part, 1}, deadline);
  }
  // Fail(kAborted "connection shut down"): closes the stream for both sides.
  void Shutdown() { Fail(Aborted("connection to " + peer() + " shut down")); }
};

// Accepts connections. Thread safety: one thread accepts; Close() may be
// called from any thread and wakes a blocked Accept().
class Listener {
 public:
  virtual ~Listener() = default;

  // The next connection; kDeadlineExceeded when none came by the deadline,
  // kAborted once the listener is closed.
  virtual Result<std::unique_ptr<Connection>> Accept(Deadline deadline) = 0;
  // Stops accepting (new connection attempts are refused) and wakes Accept().
  // Idempotent.
  virtual void Close() = 0;
  // Where peers connect, e.g. "10.0.0.2:7000".
  virtual std::string address() const = 0;
};

}  // namespace transport
}  // namespace gemini
