// HTTP/1.1 POST on libcurl, for etcd's JSON gateway: unary requests with a
// deadline (HttpClient) and one long-lived streaming response (HttpStream,
// used by watches).
//
// Errors: kUnavailable (cannot connect, connection dropped),
// kDeadlineExceeded (no complete answer by the deadline), kResourceExhausted
// (response larger than the cap). HTTP error statuses are not errors here:
// the caller reads them from HttpResponse::status. Proxy variables in the
// environment are ignored (etcd is always addressed directly).
//
// Thread safety: HttpClient is thread-safe; it keeps a small pool of curl
// handles so connections are reused across calls. HttpStream::Run runs on the
// caller's thread; Stop() may be called from any thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "coord/kv_store.h"

namespace gemini {

// HTTPS: the CA that signed the server's certificate, and the client's own
// certificate and key (for servers that check clients, as etcd with
// --client-cert-auth does). PEM files. Empty ca_file: the system's CAs. The
// server's certificate and host name are always verified.
struct TlsFiles {
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  bool empty() const { return ca_file.empty() && cert_file.empty() && key_file.empty(); }
};

struct HttpResponse {
  long status = 0;  // HTTP status code
  std::string body;
};

class HttpClient {
 public:
  // Responses larger than max_body_bytes fail with kResourceExhausted.
  explicit HttpClient(size_t max_body_bytes = 64 << 20, TlsFiles tls = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // POSTs `body` as application/json. When the error is that no connection
  // could be made (so nothing was sent and trying elsewhere is safe), sets
  // *connect_failed to true.
  Result<HttpResponse> Post(const std::string& url, const std::string& body, Deadline deadline,
                            bool* connect_failed = nullptr);

 private:
  void* Acquire();
  void Release(void* handle);

  const size_t max_body_bytes_;
  const TlsFiles tls_;
  std::mutex mu_;
  std::vector<void*> idle_;  // guarded by mu_
};

class HttpStream {
 public:
  explicit HttpStream(TlsFiles tls = {});
  ~HttpStream();
  HttpStream(const HttpStream&) = delete;
  HttpStream& operator=(const HttpStream&) = delete;

  // POSTs `body` and feeds the response body to `on_data` as it arrives
  // (return false to stop). Connecting must finish by `connect_deadline`;
  // after that the stream may stay open indefinitely. Returns OK when the
  // server ended the response, kAborted after Stop() or on_data's false,
  // kUnavailable when the connection failed or dropped. Call at most once.
  Status Run(const std::string& url, const std::string& body, Deadline connect_deadline,
             const std::function<bool(std::string_view)>& on_data);
  // Makes Run return promptly. Thread-safe; may precede Run.
  void Stop();

 private:
  void* multi_;
  const TlsFiles tls_;
  std::atomic<bool> stop_{false};
};

}  // namespace gemini
