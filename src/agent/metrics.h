// Metrics: the agent's counters, served as Prometheus text over HTTP.
//
// Agent components record into a Metrics (atomics; lock-free and
// thread-safe); MetricsServer answers every HTTP GET on its port (any path)
// with Render() plus gauges read at that moment (memory, complete iteration).
// The server is one owned thread with short per-request deadlines; a client
// that sends garbage or nothing gets closed. Stop() joins it.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "common/status.h"

namespace gemini {

class Metrics {
 public:
  void RecordCapture(double seconds, uint64_t bytes);
  void RecordRecovery(const std::string& kind, double detect_s);
  void RecordResume(double recovery_s);
  // Prometheus text exposition; `gauges` adds "name value" pairs.
  std::string Render(const std::map<std::string, double>& gauges) const;

 private:
  std::atomic<uint64_t> captures_{0}, capture_bytes_{0};
  std::atomic<double> capture_seconds_{0}, last_detect_s_{-1}, last_recovery_s_{-1};
  mutable std::mutex mu_;
  std::map<std::string, uint64_t> recoveries_;  // By kind.
};

class MetricsServer {
 public:
  using Gauges = std::function<std::map<std::string, double>()>;
  MetricsServer(const Metrics* metrics, Gauges gauges);
  ~MetricsServer();
  // Listens on host:port (port 0 = any); returns the bound port.
  Result<int> Start(const std::string& host, int port);
  void Stop();

 private:
  void Loop();
  void Serve(int fd);

  const Metrics* metrics_;
  Gauges gauges_;
  int listen_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace gemini
