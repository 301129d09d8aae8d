// MemoryConnection: a transport::Connection over a fixed byte string, for the
// fuzz targets (no sockets, no threads of its own).
//
// RecvAll hands out the input's bytes in order; once they run out the peer
// "closed": kUnavailable, sticky like a real connection's error. What the
// code under test sends is kept (sent()) or, past a cap, dropped. Sends and
// receives may come from different threads (ReceiveChunkedReplica's checker
// sends acks while its reader receives), so the state is under a mutex.
// Deadlines are ignored: nothing here ever blocks.
//
// A target that must answer what the code sent (the handshake's proofs over
// a random nonce) sets a hook: it runs at the start of every RecvAll, under
// the lock, and may insert bytes into the input at the read position.
#pragma once

#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>

#include "transport/connection.h"

namespace gemini::fuzz {

class MemoryConnection : public transport::Connection {
 public:
  // (index of this RecvAll call, bytes sent so far, the input, read position)
  using Hook = std::function<void(int, const std::string&, std::string&, size_t)>;

  explicit MemoryConnection(std::string_view input, Hook hook = nullptr)
      : input_(input), hook_(std::move(hook)) {}

  Status SendParts(std::span<const transport::ConstBuffer> parts, Deadline) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!status_.ok()) return status_;
    for (const auto& p : parts)
      if (sent_.size() + p.size <= kMaxKept) sent_.append(static_cast<const char*>(p.data), p.size);
    return Status::Ok();
  }
  Status RecvAll(void* data, size_t n, Deadline) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!status_.ok()) return status_;
    if (hook_) hook_(recvs_++, sent_, input_, pos_);
    if (n > input_.size() - pos_) {
      pos_ = input_.size();
      return FailLocked(Unavailable("fuzz input ended (peer closed)"));
    }
    if (n > 0) std::memcpy(data, input_.data() + pos_, n);
    pos_ += n;
    return Status::Ok();
  }
  Status Fail(Status error) override {
    std::lock_guard<std::mutex> lock(mu_);
    return FailLocked(std::move(error));
  }
  Status status() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return status_;
  }
  std::string peer() const override { return "fuzz-peer:0"; }

  // Bytes the code under test sent so far (the first kMaxKept of them).
  std::string sent() const {
    std::lock_guard<std::mutex> lock(mu_);
    return sent_;
  }
  size_t remaining() const {
    std::lock_guard<std::mutex> lock(mu_);
    return input_.size() - pos_;
  }

 private:
  static constexpr size_t kMaxKept = 1 << 20;
  Status FailLocked(Status error) {
    if (status_.ok()) status_ = std::move(error);
    return status_;
  }

  mutable std::mutex mu_;
  std::string input_;
  Hook hook_;
  int recvs_ = 0;
  size_t pos_ = 0;
  std::string sent_;
  Status status_;
};

}  // namespace gemini::fuzz
