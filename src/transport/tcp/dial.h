// DialPeer: connect to a peer agent's PeerServer over TCP and authenticate
// (TcpConnection::Connect, then ClientHandshake), both within one deadline.
// The returned connection is ready for frames (frame.h) and owned by the
// caller. Stateless; thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "transport/connection.h"
#include "transport/handshake.h"
#include "transport/tcp/tcp_options.h"

namespace gemini::transport {

// kUnavailable / kDeadlineExceeded when the peer cannot be reached, kAborted
// when authentication failed (the connection is then already closed).
Result<std::unique_ptr<Connection>> DialPeer(const std::string& host, uint16_t port,
                                             const JobSecret& secret, std::string_view job,
                                             Deadline deadline, const TcpOptions& options = {});

}  // namespace gemini::transport
