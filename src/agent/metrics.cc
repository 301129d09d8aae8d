// Metrics and MetricsServer (see metrics.h): prometheus-cpp families, the
// scrape-time readings collectable, and the Exposer's civetweb options.
#include "agent/metrics.h"

#include <arpa/inet.h>
#include <prometheus/check_names.h>
#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

#include <exception>

#include "common/log.h"

namespace gemini {
namespace {

// Civetweb worker threads: one per connection being served, so this many
// stalled clients at once can delay a scrape (by at most kRequestTimeoutMs).
constexpr int kThreads = 8;
// A client has this long to send its request; then it is closed.
constexpr int kRequestTimeoutMs = 5000;

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The callback's readings as metric families, read on every scrape.
class ScrapeReadings : public prometheus::Collectable {
 public:
  explicit ScrapeReadings(MetricsServer::Gauges fn) : fn_(std::move(fn)) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    std::vector<prometheus::MetricFamily> out;
    if (!fn_) return out;
    for (const ScrapeReading& r : fn_()) {
      bool counter = r.type == ScrapeReading::kCounter;
      if (!prometheus::CheckMetricName(r.name) || r.help.empty() ||
          counter != EndsWith(r.name, "_total")) {
        GEMINI_LOG(WARN) << "[metrics] left out '" << r.name
                         << "': needs a valid name, a HELP text, and _total exactly on counters";
        continue;
      }
      prometheus::MetricFamily f;
      f.name = r.name;
      f.help = r.help;
      f.type = counter ? prometheus::MetricType::Counter : prometheus::MetricType::Gauge;
      prometheus::ClientMetric m;
      (counter ? m.counter.value : m.gauge.value) = r.value;
      f.metric.push_back(std::move(m));
      out.push_back(std::move(f));
    }
    return out;
  }

 private:
  MetricsServer::Gauges fn_;
};

}  // namespace

Metrics::Metrics() : registry_(std::make_shared<prometheus::Registry>()) {
  capture_seconds_ =
      &prometheus::BuildHistogram()
           .Name("gemini_capture_duration_seconds")
           .Help("Time a trainer took to capture one shard (Begin to Commit)")
           .Register(*registry_)
           .Add({}, prometheus::Histogram::BucketBoundaries{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                            0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30});
  capture_bytes_ = &prometheus::BuildCounter()
                        .Name("gemini_capture_bytes_total")
                        .Help("Bytes of shards captured (data and metadata)")
                        .Register(*registry_)
                        .Add({});
  last_detect_s_ = &prometheus::BuildGauge()
                        .Name("gemini_last_detection_seconds")
                        .Help("Failure to detection in the last recovery (-1: none yet)")
                        .Register(*registry_)
                        .Add({});
  last_recovery_s_ =
      &prometheus::BuildGauge()
           .Name("gemini_last_recovery_seconds")
           .Help("Failure to training resumed here in the last recovery (-1: none yet)")
           .Register(*registry_)
           .Add({});
  recoveries_ = &prometheus::BuildCounter()
                     .Name("gemini_recoveries_total")
                     .Help("Recoveries this agent took part in, by kind")
                     .Register(*registry_);
  // The plan kinds (src/agent/cluster/plan.h) start at 0, so the family is there
  // before the first recovery and rate() sees the first one.
  for (const char* kind : {"software", "hardware", "group_lost"})
    recoveries_->Add({{"kind", kind}});
  last_detect_s_->Set(-1);
  last_recovery_s_->Set(-1);
}
Metrics::~Metrics() = default;

void Metrics::RecordCapture(double seconds, uint64_t bytes) {
  capture_seconds_->Observe(seconds);
  capture_bytes_->Increment(static_cast<double>(bytes));
}
void Metrics::RecordRecovery(const std::string& kind, double detect_s) {
  recoveries_->Add({{"kind", kind}}).Increment();
  last_detect_s_->Set(detect_s);
}
void Metrics::RecordResume(double recovery_s) { last_recovery_s_->Set(recovery_s); }

MetricsServer::MetricsServer(const Metrics* metrics, Gauges gauges)
    : metrics_(metrics), gauges_(std::make_shared<ScrapeReadings>(std::move(gauges))) {}
MetricsServer::~MetricsServer() { Stop(); }

Result<int> MetricsServer::Start(const std::string& host, int port) {
  in_addr a;
  if (inet_pton(AF_INET, host.c_str(), &a) != 1)
    return InvalidArgument("metrics address '" + host + "' is not an IPv4 address");
  if (port < 0 || port > 65535) return InvalidArgument("metrics port out of range");
  std::string where = host + ":" + std::to_string(port);
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(std::vector<std::string>{
        "listening_ports", where, "num_threads", std::to_string(kThreads), "request_timeout_ms",
        std::to_string(kRequestTimeoutMs), "enable_keep_alive", "no"});
  } catch (const std::exception& e) {
    return Unavailable("metrics listener on " + where + ": " + e.what());
  }
  exposer_->RegisterCollectable(metrics_->registry());
  exposer_->RegisterCollectable(gauges_);
  std::vector<int> ports = exposer_->GetListeningPorts();
  if (ports.empty()) return Internal("metrics listener on " + where + " has no port");
  return ports[0];
}

void MetricsServer::Stop() { exposer_.reset(); }

}  // namespace gemini
