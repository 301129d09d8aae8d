#include "store/timeline_client.h"

#include <unistd.h>

#include <cstring>

#include "common/unix_socket.h"
#include "common/wire.h"
#include "store/protocol.h"

namespace gemini {

Result<std::unique_ptr<TimelineClient>> TimelineClient::Connect(const std::string& socket_path) {
  GEMINI_ASSIGN_OR_RETURN(int event_fd, UnixConnect(socket_path));
  auto call_fd = UnixConnect(socket_path);
  if (!call_fd.ok()) {
    close(event_fd);
    return call_fd.status();
  }
  return std::unique_ptr<TimelineClient>(new TimelineClient(event_fd, *call_fd));
}

TimelineClient::~TimelineClient() {
  close(event_fd_);
  close(call_fd_);
}

double TimelineClient::Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

Status TimelineClient::Report(const std::string& job, uint32_t rank, int64_t iteration,
                              uint32_t kind, int op, double t) {
  Writer w;
  w.PutString(job);
  w.PutU32(rank);
  w.PutI64(iteration);
  w.PutU32(kind);
  w.PutU64(static_cast<uint64_t>(static_cast<int64_t>(op) + 1));
  uint64_t bits;
  std::memcpy(&bits, &t, sizeof(bits));
  w.PutU64(bits);
  std::lock_guard<std::mutex> lock(event_mu_);
  return SendFrame(event_fd_, kEvent, w.Take());
}

Result<std::string> TimelineClient::Call(uint32_t type, const std::string& payload,
                                         std::chrono::milliseconds timeout) {
  std::lock_guard<std::mutex> lock(call_mu_);
  GEMINI_RETURN_IF_ERROR(SendFrame(call_fd_, type, payload));
  GEMINI_ASSIGN_OR_RETURN(Frame reply, RecvFrame(call_fd_, DeadlineIn(timeout)));
  if (reply.fd >= 0) close(reply.fd);
  if (reply.type != kReply) return Internal("unexpected frame type from the agent");
  std::string body;
  GEMINI_RETURN_IF_ERROR(DecodeReply(reply.payload, &body));
  return body;
}

Status TimelineClient::WaitDue(const std::string& job, uint32_t rank, int64_t iteration,
                               bool before_step, std::chrono::milliseconds timeout) {
  Writer w;
  w.PutString(job);
  w.PutU32(rank);
  w.PutI64(iteration);
  w.PutU32(before_step ? 1 : 0);
  w.PutU32(static_cast<uint32_t>(timeout.count()));
  return Call(kWaitDue, w.Take(), timeout + std::chrono::seconds(10)).status();
}

Result<std::string> TimelineClient::GetSchedule(const std::string& job) {
  Writer w;
  w.PutString(job);
  return Call(kSchedule, w.Take(), std::chrono::seconds(10));
}

}  // namespace gemini
