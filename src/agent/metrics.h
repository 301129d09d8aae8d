// Metrics: the agent's Prometheus metrics, served over HTTP by prometheus-cpp.
//
// Agent components record into a Metrics (prometheus-cpp counters, gauges and
// a histogram; thread-safe). MetricsServer serves them on GET /metrics with
// prometheus-cpp's Exposer (civetweb: a pool of worker threads, each request
// under a deadline, so a slow or silent client delays nobody else and Stop()
// does not wait for it), plus readings taken at scrape time from a callback
// (memory, complete iteration, ...), each with its own name, HELP and type.
//
// Names follow the Prometheus conventions: counters end in _total, gauges do
// not; units are in the name (_seconds, _bytes).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace prometheus {
class Collectable;
class Counter;
class Exposer;
class Gauge;
class Histogram;
class Registry;
template <typename T>
class Family;
}  // namespace prometheus

namespace gemini {

class Metrics {
 public:
  Metrics();
  ~Metrics();
  void RecordCapture(double seconds, uint64_t bytes);
  void RecordRecovery(const std::string& kind, double detect_s);
  void RecordResume(double recovery_s);
  // What MetricsServer serves.
  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Histogram* capture_seconds_;
  prometheus::Counter* capture_bytes_;
  prometheus::Gauge* last_detect_s_;
  prometheus::Gauge* last_recovery_s_;
  prometheus::Family<prometheus::Counter>* recoveries_;
};

// One value read at scrape time: {"gemini_x_bytes", "What x is", value}.
// A counter (a running total the caller keeps) is marked kCounter and its
// name ends in _total; a gauge's name does not. Readings that break these
// rules or Prometheus' name syntax are left out of the scrape (and logged).
struct ScrapeReading {
  enum Type { kGauge, kCounter };
  std::string name;
  std::string help;
  double value = 0;
  Type type = kGauge;
};

class MetricsServer {
 public:
  using Gauges = std::function<std::vector<ScrapeReading>()>;
  MetricsServer(const Metrics* metrics, Gauges gauges);
  ~MetricsServer();
  // Listens on host:port (host an IPv4 address; port 0 = any); returns the
  // bound port.
  Result<int> Start(const std::string& host, int port);
  // Stops serving; returns within a few seconds whatever clients do.
  void Stop();

 private:
  const Metrics* metrics_;
  std::shared_ptr<prometheus::Collectable> gauges_;
  std::unique_ptr<prometheus::Exposer> exposer_;
};

}  // namespace gemini
