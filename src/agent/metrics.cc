#include "agent/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <sstream>

namespace gemini {
namespace {

void Add(std::atomic<double>& a, double v) {
  double cur = a.load();
  while (!a.compare_exchange_weak(cur, cur + v)) {
  }
}

void Metric(std::ostringstream& os, const char* name, const char* type, const char* help,
            double value, const std::string& labels = "") {
  os << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n"
     << name << labels << " " << value << "\n";
}

}  // namespace

void Metrics::RecordCapture(double seconds, uint64_t bytes) {
  ++captures_;
  capture_bytes_ += bytes;
  Add(capture_seconds_, seconds);
}
void Metrics::RecordRecovery(const std::string& kind, double detect_s) {
  std::lock_guard<std::mutex> lock(mu_);
  ++recoveries_[kind];
  last_detect_s_ = detect_s;
}
void Metrics::RecordResume(double recovery_s) { last_recovery_s_ = recovery_s; }

std::string Metrics::Render(const std::map<std::string, double>& gauges) const {
  std::ostringstream os;
  Metric(os, "gemini_capture_seconds_sum", "counter",
         "Time trainers spent capturing shards (Begin to Commit)", capture_seconds_);
  Metric(os, "gemini_capture_total", "counter", "Shards captured", captures_);
  Metric(os, "gemini_capture_bytes_total", "counter", "Bytes captured", capture_bytes_);
  Metric(os, "gemini_last_detection_seconds", "gauge",
         "Failure to detection, last recovery (-1: none)", last_detect_s_);
  Metric(os, "gemini_last_recovery_seconds", "gauge",
         "Failure to training resumed here, last recovery (-1: none)", last_recovery_s_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    os << "# HELP gemini_recoveries_total Recoveries by kind\n# TYPE gemini_recoveries_total "
          "counter\n";
    for (const auto& [kind, n] : recoveries_)
      os << "gemini_recoveries_total{kind=\"" << kind << "\"} " << n << "\n";
  }
  for (const auto& [name, v] : gauges) Metric(os, name.c_str(), "gauge", name.c_str(), v);
  return os.str();
}

MetricsServer::MetricsServer(const Metrics* metrics, Gauges gauges)
    : metrics_(metrics), gauges_(std::move(gauges)) {}
MetricsServer::~MetricsServer() { Stop(); }

Result<int> MetricsServer::Start(const std::string& host, int port) {
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return ErrnoStatus("socket", errno);
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1)
    return InvalidArgument("metrics address '" + host + "' is not an IPv4 address");
  socklen_t len = sizeof(addr);
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(listen_fd_, 16) != 0 ||
      getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    return ErrnoStatus("metrics listener on " + host + ":" + std::to_string(port), errno);
  thread_ = std::thread([this] { Loop(); });
  return static_cast<int>(ntohs(addr.sin_port));
}

void MetricsServer::Stop() {
  if (stop_.exchange(true)) return;
  if (thread_.joinable()) thread_.join();
  if (listen_fd_ >= 0) close(listen_fd_);
}

void MetricsServer::Loop() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (poll(&p, 1, 200) <= 0) continue;
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) Serve(fd);
  }
}

void MetricsServer::Serve(int fd) {
  std::string req;
  char buf[1024];
  while (req.size() < 8192 && req.find("\r\n\r\n") == std::string::npos) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 1000) <= 0) break;  // One second to send a request.
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    req.append(buf, static_cast<size_t>(n));
  }
  std::string body, status = "200 OK";
  if (req.rfind("GET ", 0) == 0) {
    body = metrics_->Render(gauges_ ? gauges_() : std::map<std::string, double>{});
  } else {
    status = "400 Bad Request";
    body = "GET only\n";
  }
  std::string resp = "HTTP/1.0 " + status +
                     "\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: " +
                     std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
  ssize_t ignored = send(fd, resp.data(), resp.size(), MSG_NOSIGNAL);
  (void)ignored;
  close(fd);
}

}  // namespace gemini
