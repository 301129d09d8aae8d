// Tests of the metrics endpoint: stalled clients delay neither scrapes nor
// Stop(), and the exposition follows the Prometheus conventions.
#include "agent/metrics.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <sstream>
#include <thread>

namespace gemini {
namespace {

using namespace std::chrono_literals;

// Only a hang reaches this.
constexpr auto kHangGuard = 30s;

int Connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  return fd;
}

void SendAll(int fd, const std::string& s) {
  EXPECT_EQ(send(fd, s.data(), s.size(), MSG_NOSIGNAL), static_cast<ssize_t>(s.size()));
}

// GET /metrics; the response body ("" on failure).
std::string Scrape(int port) {
  int fd = Connect(port);
  SendAll(fd, "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n");
  std::string resp;
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;) resp.append(buf, static_cast<size_t>(n));
  close(fd);
  size_t body = resp.find("\r\n\r\n");
  if (resp.rfind("HTTP/1.", 0) != 0 || resp.find(" 200 ") == std::string::npos ||
      body == std::string::npos)
    return "";
  return resp.substr(body + 4);
}

// Clients that stall the server: one silent, one with half a request, one
// sending its request a byte at a time (until Release()).
class StalledClients {
 public:
  explicit StalledClients(int port) {
    trickle_fd_ = Connect(port);
    trickler_ = std::thread([this] {
      SendAll(trickle_fd_, "GET /metrics HTTP/1.1\r\n");
      while (!release_) {
        if (send(trickle_fd_, "X", 1, MSG_NOSIGNAL) != 1) break;
        std::this_thread::sleep_for(50ms);
      }
    });
    silent_fd_ = Connect(port);
    half_fd_ = Connect(port);
    SendAll(half_fd_, "GET /metrics HTTP/1.1\r\nHost: loc");
  }
  ~StalledClients() { Release(); }
  void Release() {
    release_ = true;
    if (trickler_.joinable()) trickler_.join();
    for (int* fd : {&trickle_fd_, &silent_fd_, &half_fd_}) {
      if (*fd >= 0) close(*fd);
      *fd = -1;
    }
  }

 private:
  int trickle_fd_ = -1, silent_fd_ = -1, half_fd_ = -1;
  std::atomic<bool> release_{false};
  std::thread trickler_;
};

// Runs f on another thread; on a hang, fails, releases the stalled clients
// (which unblocks any server) and waits for f.
template <typename F>
auto WithinHangGuard(F f, StalledClients& stalled, const char* what) {
  auto fut = std::async(std::launch::async, std::move(f));
  if (fut.wait_for(kHangGuard) != std::future_status::ready) {
    ADD_FAILURE() << what << " hung while clients stalled";
    stalled.Release();
  }
  return fut.get();
}

std::vector<ScrapeReading> TestReadings() {
  return {{"gemini_test_used_bytes", "A gauge read at scrape time", 42},
          {"gemini_test_sent_bytes_total", "A counter read at scrape time", 7,
           ScrapeReading::kCounter}};
}

TEST(MetricsServerTest, StalledClientsBlockNeitherScrapesNorStop) {
  Metrics m;
  MetricsServer server(&m, TestReadings);
  auto port = server.Start("127.0.0.1", 0);
  ASSERT_TRUE(port.ok()) << port.status().ToString();
  ASSERT_GT(*port, 0);
  StalledClients stalled(*port);
  std::string body = WithinHangGuard([&] { return Scrape(*port); }, stalled, "a scrape");
  EXPECT_NE(body.find("gemini_test_used_bytes 42"), std::string::npos) << body;
  WithinHangGuard([&] { server.Stop(); }, stalled, "Stop()");
}

TEST(MetricsServerTest, BadAddressOrBusyPortIsAnError) {
  Metrics m;
  MetricsServer a(&m, nullptr);
  EXPECT_EQ(a.Start("not-an-address", 0).status().code(), Code::kInvalidArgument);
  MetricsServer b(&m, nullptr);
  auto port = b.Start("127.0.0.1", 0);
  ASSERT_TRUE(port.ok()) << port.status().ToString();
  MetricsServer c(&m, nullptr);
  EXPECT_FALSE(c.Start("127.0.0.1", *port).ok());
}

struct Family {
  std::string help, type;
  std::map<std::string, double> samples;  // Sample (name and labels) -> value.
};

// Parses the text exposition format; fails the test on a malformed line.
std::map<std::string, Family> Parse(const std::string& text) {
  std::map<std::string, Family> fams;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    std::istringstream ls(line);
    if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) {
      std::string hash, kind, name, rest;
      ls >> hash >> kind >> name;
      std::getline(ls >> std::ws, rest);
      (kind == "HELP" ? fams[name].help : fams[name].type) = rest;
      continue;
    }
    if (line[0] == '#') continue;
    size_t end = line.find_first_of("{ ");
    size_t space = line.rfind(' ');
    if (end == std::string::npos || space == std::string::npos) {
      ADD_FAILURE() << "malformed: " << line;
      continue;
    }
    std::string name = line.substr(0, end), value = line.substr(space + 1);
    std::string fam = name;
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      std::string s = suffix;
      if (fams.count(fam) == 0 && name.size() > s.size() &&
          name.compare(name.size() - s.size(), s.size(), s) == 0 &&
          fams.count(name.substr(0, name.size() - s.size())))
        fam = name.substr(0, name.size() - s.size());
    }
    EXPECT_TRUE(fams.count(fam)) << "sample before its HELP/TYPE: " << line;
    size_t used = 0;
    double v = std::stod(value, &used);
    EXPECT_EQ(used, value.size()) << line;
    fams[fam].samples[line.substr(0, space)] = v;
  }
  return fams;
}

bool EndsWithTotal(const std::string& s) {
  return s.size() > 6 && s.compare(s.size() - 6, 6, "_total") == 0;
}

TEST(MetricsServerTest, RecoveryKindsStartAtZero) {
  Metrics m;
  MetricsServer server(&m, nullptr);
  auto port = server.Start("127.0.0.1", 0);
  ASSERT_TRUE(port.ok()) << port.status().ToString();
  auto fams = Parse(Scrape(*port));
  EXPECT_EQ(fams["gemini_recoveries_total"].type, "counter");
  for (const char* kind : {"software", "hardware", "group_lost"})
    EXPECT_EQ(fams["gemini_recoveries_total"].samples.count(
                  std::string("gemini_recoveries_total{kind=\"") + kind + "\"}"),
              1u)
        << kind;
}

TEST(MetricsServerTest, ExpositionFollowsPrometheusConventions) {
  Metrics m;
  m.RecordCapture(0.02, 4096);
  m.RecordCapture(0.5, 100);
  m.RecordRecovery("peer", 1.5);
  m.RecordResume(6.25);
  MetricsServer server(&m, [] {
    auto r = TestReadings();
    // Readings that break the conventions are left out.
    r.push_back({"gemini_bad_gauge_total", "a gauge named like a counter", 1});
    r.push_back({"gemini_bad_counter", "a counter without _total", 1, ScrapeReading::kCounter});
    r.push_back({"gemini_no_help", "", 1});
    r.push_back({"gemini bad name", "a name with spaces", 1});
    return r;
  });
  auto port = server.Start("127.0.0.1", 0);
  ASSERT_TRUE(port.ok()) << port.status().ToString();
  std::string text = Scrape(*port);
  ASSERT_FALSE(text.empty());
  auto fams = Parse(text);

  for (const auto& [name, f] : fams) {
    EXPECT_FALSE(f.help.empty()) << name << " has no HELP";
    EXPECT_NE(f.help, name) << name << "'s HELP is its name";
    EXPECT_FALSE(f.type.empty()) << name << " has no TYPE";
    EXPECT_FALSE(f.samples.empty()) << name << " has no value";
    EXPECT_EQ(f.type == "counter", EndsWithTotal(name)) << name << " is a " << f.type;
  }
  for (const char* bad :
       {"gemini_bad_gauge_total", "gemini_bad_counter", "gemini_no_help", "gemini"})
    EXPECT_EQ(fams.count(bad), 0u) << bad;

  auto value = [&](const std::string& fam, const std::string& sample) {
    EXPECT_TRUE(fams[fam].samples.count(sample)) << sample << " in\n" << text;
    return fams[fam].samples[sample];
  };
  EXPECT_EQ(fams["gemini_capture_duration_seconds"].type, "histogram");
  EXPECT_EQ(value("gemini_capture_duration_seconds", "gemini_capture_duration_seconds_count"), 2);
  EXPECT_DOUBLE_EQ(value("gemini_capture_duration_seconds", "gemini_capture_duration_seconds_sum"),
                   0.52);
  EXPECT_EQ(fams["gemini_capture_bytes_total"].type, "counter");
  EXPECT_EQ(value("gemini_capture_bytes_total", "gemini_capture_bytes_total"), 4196);
  EXPECT_EQ(value("gemini_recoveries_total", "gemini_recoveries_total{kind=\"peer\"}"), 1);
  EXPECT_EQ(value("gemini_last_detection_seconds", "gemini_last_detection_seconds"), 1.5);
  EXPECT_EQ(value("gemini_last_recovery_seconds", "gemini_last_recovery_seconds"), 6.25);
  EXPECT_EQ(fams["gemini_test_used_bytes"].type, "gauge");
  EXPECT_EQ(value("gemini_test_used_bytes", "gemini_test_used_bytes"), 42);
  EXPECT_EQ(fams["gemini_test_sent_bytes_total"].type, "counter");
  EXPECT_EQ(value("gemini_test_sent_bytes_total", "gemini_test_sent_bytes_total"), 7);
}

}  // namespace
}  // namespace gemini
