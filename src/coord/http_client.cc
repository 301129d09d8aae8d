#include "coord/http_client.h"

#include <curl/curl.h>

#include <memory>
#include <mutex>

namespace gemini {
namespace {

constexpr size_t kMaxIdleHandles = 16;

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using Headers = std::unique_ptr<curl_slist, SlistDeleter>;

Headers JsonHeaders() {
  curl_slist* l = curl_slist_append(nullptr, "Content-Type: application/json");
  l = curl_slist_append(l, "Expect:");  // no 100-continue round trip
  return Headers(l);
}

struct Sink {
  std::string* out;
  size_t cap;
  bool overflow = false;
};

size_t WriteToString(char* data, size_t size, size_t n, void* user) {
  auto* sink = static_cast<Sink*>(user);
  if (sink->out->size() + size * n > sink->cap) {
    sink->overflow = true;
    return 0;  // makes curl fail with CURLE_WRITE_ERROR
  }
  sink->out->append(data, size * n);
  return size * n;
}

bool IsConnectFailure(CURLcode rc) {
  return rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST;
}

Status CurlStatus(CURLcode rc, const std::string& url, const char* detail) {
  std::string what = "http " + url + ": " + curl_easy_strerror(rc);
  if (detail != nullptr && detail[0] != '\0') what += std::string(" (") + detail + ")";
  switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
      return DeadlineExceeded(what);
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return InvalidArgument(what);
    // TLS set up wrong on this side (unreadable certificate, key or CA file),
    // or a server whose certificate our CA did not sign: retrying elsewhere
    // with the same files cannot help.
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_PEER_FAILED_VERIFICATION:
      return FailedPrecondition(what + " (check --etcd-cacert, --etcd-cert, --etcd-key)");
    default:
      return Unavailable(what);
  }
}

// Options shared by unary and streaming requests.
void SetCommon(CURL* h, const std::string& url, const std::string& body, curl_slist* headers,
               const TlsFiles& tls) {
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!tls.ca_file.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, tls.ca_file.c_str());
  if (!tls.cert_file.empty()) curl_easy_setopt(h, CURLOPT_SSLCERT, tls.cert_file.c_str());
  if (!tls.key_file.empty()) curl_easy_setopt(h, CURLOPT_SSLKEY, tls.key_file.c_str());
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(h, CURLOPT_POST, 1L);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
}

}  // namespace

HttpClient::HttpClient(size_t max_body_bytes, TlsFiles tls)
    : max_body_bytes_(max_body_bytes), tls_(std::move(tls)) {
  GlobalInit();
}

HttpClient::~HttpClient() {
  for (void* h : idle_) curl_easy_cleanup(static_cast<CURL*>(h));
}

void* HttpClient::Acquire() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      void* h = idle_.back();
      idle_.pop_back();
      return h;
    }
  }
  return curl_easy_init();
}

void HttpClient::Release(void* handle) {
  curl_easy_reset(static_cast<CURL*>(handle));  // keeps the live connection
  std::lock_guard<std::mutex> lock(mu_);
  if (idle_.size() < kMaxIdleHandles) {
    idle_.push_back(handle);
    return;
  }
  curl_easy_cleanup(static_cast<CURL*>(handle));
}

Result<HttpResponse> HttpClient::Post(const std::string& url, const std::string& body,
                                      Deadline deadline, bool* connect_failed) {
  if (connect_failed != nullptr) *connect_failed = false;
  const int64_t ms = MillisLeft(deadline);
  if (ms <= 0) return DeadlineExceeded("http " + url + ": deadline passed before sending");
  CURL* h = static_cast<CURL*>(Acquire());
  if (h == nullptr) return ResourceExhausted("curl_easy_init failed");
  HttpResponse resp;
  Sink sink{&resp.body, max_body_bytes_};
  Headers headers = JsonHeaders();
  char err[CURL_ERROR_SIZE] = {0};
  SetCommon(h, url, body, headers.get(), tls_);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(ms));
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(ms));
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, WriteToString);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, err);
  CURLcode rc = curl_easy_perform(h);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp.status);
  Release(h);
  if (sink.overflow) {
    return ResourceExhausted("http " + url + ": response larger than " +
                             std::to_string(max_body_bytes_) + " bytes");
  }
  if (rc != CURLE_OK) {
    if (connect_failed != nullptr) *connect_failed = IsConnectFailure(rc);
    return CurlStatus(rc, url, err);
  }
  return resp;
}

HttpStream::HttpStream(TlsFiles tls) : tls_(std::move(tls)) {
  GlobalInit();
  multi_ = curl_multi_init();
}

HttpStream::~HttpStream() { curl_multi_cleanup(static_cast<CURLM*>(multi_)); }

void HttpStream::Stop() {
  stop_.store(true);
  if (multi_ != nullptr) curl_multi_wakeup(static_cast<CURLM*>(multi_));
}

namespace {

struct StreamSink {
  const std::function<bool(std::string_view)>* on_data;
  bool stopped = false;
};

size_t WriteToCallback(char* data, size_t size, size_t n, void* user) {
  auto* sink = static_cast<StreamSink*>(user);
  if (!(*sink->on_data)(std::string_view(data, size * n))) {
    sink->stopped = true;
    return 0;
  }
  return size * n;
}

}  // namespace

Status HttpStream::Run(const std::string& url, const std::string& body, Deadline connect_deadline,
                       const std::function<bool(std::string_view)>& on_data) {
  CURLM* multi = static_cast<CURLM*>(multi_);
  if (multi == nullptr) return ResourceExhausted("curl_multi_init failed");
  const int64_t ms = MillisLeft(connect_deadline);
  if (ms <= 0) return DeadlineExceeded("http " + url + ": deadline passed before connecting");
  std::unique_ptr<CURL, void (*)(CURL*)> h(curl_easy_init(), curl_easy_cleanup);
  if (h == nullptr) return ResourceExhausted("curl_easy_init failed");
  Headers headers = JsonHeaders();
  StreamSink sink{&on_data};
  char err[CURL_ERROR_SIZE] = {0};
  SetCommon(h.get(), url, body, headers.get(), tls_);
  curl_easy_setopt(h.get(), CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(ms));
  curl_easy_setopt(h.get(), CURLOPT_WRITEFUNCTION, WriteToCallback);
  curl_easy_setopt(h.get(), CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(h.get(), CURLOPT_ERRORBUFFER, err);
  curl_easy_setopt(h.get(), CURLOPT_TCP_KEEPALIVE, 1L);
  curl_multi_add_handle(multi, h.get());
  Status result = Status::Ok();
  for (;;) {
    int running = 0;
    CURLMcode mc = curl_multi_perform(multi, &running);
    if (mc != CURLM_OK) {
      result = Unavailable(std::string("curl_multi_perform: ") + curl_multi_strerror(mc));
      break;
    }
    if (running == 0) {
      int left = 0;
      CURLMsg* msg = curl_multi_info_read(multi, &left);
      CURLcode rc = msg != nullptr ? msg->data.result : CURLE_OK;
      if (sink.stopped) {
        result = Aborted("stream stopped by reader");
      } else if (rc != CURLE_OK) {
        result = CurlStatus(rc, url, err);
      }
      break;
    }
    if (stop_.load()) {
      result = Aborted("stream stopped");
      break;
    }
    curl_multi_poll(multi, nullptr, 0, 1000, nullptr);
    if (stop_.load()) {
      result = Aborted("stream stopped");
      break;
    }
  }
  curl_multi_remove_handle(multi, h.get());
  return result;
}

}  // namespace gemini
