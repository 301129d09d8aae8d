#include "transport/tcp/dial.h"

#include "transport/tcp/tcp_connection.h"

namespace gemini::transport {

Result<std::unique_ptr<Connection>> DialPeer(const std::string& host, uint16_t port,
                                             const JobSecret& secret, std::string_view job,
                                             Deadline deadline, const TcpOptions& options) {
  GEMINI_ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn,
                          TcpConnection::Connect(host, port, deadline, options));
  GEMINI_RETURN_IF_ERROR(ClientHandshake(*conn, secret, job, deadline));
  return conn;
}

}  // namespace gemini::transport
