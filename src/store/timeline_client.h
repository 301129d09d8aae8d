// TimelineClient: the trainer's schedule channel to its agent.
//
// Connections of its own (apart from AgentClient's saves), because timeline
// reports come from the communication thread while a save may be running:
// Report() sends a one-way kEvent frame on one connection and returns at once
// (no reply); WaitDue() and GetSchedule() are request/reply on another, so a
// long wait never holds reports back (store/protocol.h). Times are seconds on
// CLOCK_MONOTONIC (std::chrono::steady_clock), the agent's clock too.
// Thread-safe: each connection's use is serialized by its own lock.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "common/status.h"

namespace gemini {

class TimelineClient {
 public:
  static Result<std::unique_ptr<TimelineClient>> Connect(const std::string& socket_path);
  ~TimelineClient();
  TimelineClient(const TimelineClient&) = delete;
  TimelineClient& operator=(const TimelineClient&) = delete;

  // kind: 1 iteration start, 2 op start, 3 op finish, 4 iteration end
  // (agent/interleave/interleaver.h TimelineEvent); op -1 for iteration events.
  Status Report(const std::string& job, uint32_t rank, int64_t iteration, uint32_t kind, int op,
                double t);
  Status WaitDue(const std::string& job, uint32_t rank, int64_t iteration, bool before_step,
                 std::chrono::milliseconds timeout);
  // The schedule JSON (interleaver.h ScheduleToJson).
  Result<std::string> GetSchedule(const std::string& job);
  static double Now();

 private:
  TimelineClient(int event_fd, int call_fd) : event_fd_(event_fd), call_fd_(call_fd) {}
  Result<std::string> Call(uint32_t type, const std::string& payload,
                           std::chrono::milliseconds timeout);
  const int event_fd_, call_fd_;
  std::mutex event_mu_, call_mu_;
};

}  // namespace gemini
