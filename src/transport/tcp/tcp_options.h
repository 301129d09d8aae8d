// TcpOptions: socket settings shared by TcpListener and TcpConnection.
// A plain value; every field documents its default.
#pragma once

#include <cstddef>

namespace gemini::transport {

struct TcpOptions {
  // SO_SNDBUF and SO_RCVBUF in bytes, set before connect / listen so that
  // the window scale fits them. Default 0: leave Linux's autotuning on
  // (bounded by net.ipv4.tcp_wmem / tcp_rmem), which grows the
  // buffers to the path's bandwidth-delay product. A fixed size turns
  // autotuning off for the socket; on loopback 4 MiB measured 10-20% slower
  // than autotuning. A non-zero size is applied only where the kernel grants
  // all of it (net.core.{w,r}mem_max at least this large; larger values
  // would be silently cut), else autotuning stays on.
  size_t buffer_bytes = 0;
  // listen(2) backlog of a TcpListener. Default 128.
  int listen_backlog = 128;
  // A peer that stops answering (its machine died, its link went away) fails
  // the connection after about this long: TCP_USER_TIMEOUT for unacknowledged
  // data, keepalive probes for an idle connection. A slow but live peer keeps
  // acknowledging (zero-window probes too), so it is never cut. 0: the
  // kernel's defaults (minutes). Default 5000 ms.
  int dead_peer_timeout_ms = 5000;
};

}  // namespace gemini::transport
