// etcd-only behaviour, over both etcd clients (native gRPC and the JSON
// gateway): a dead or hung server yields a typed error by the deadline,
// endpoint failover, TLS; and the JSON codec. Each test that needs a server
// starts its own (EtcdProcess) and kills it by pid when done.
#include "coord/etcd_kv_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

#include "coord/etcd_codec.h"
#include "coord/etcd_grpc_kv_store.h"
#include "coord/etcd_process.h"
#include "coord/http_client.h"

namespace gemini {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

bool HaveEtcd() { return ::access("/usr/bin/etcd", X_OK) == 0; }

bool IsOutage(Code c) { return c == Code::kUnavailable || c == Code::kDeadlineExceeded; }

std::unique_ptr<EtcdProcess> StartEtcd() {
  Result<std::unique_ptr<EtcdProcess>> p = EtcdProcess::Start(EtcdProcessOptions());
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  return p.ok() ? std::move(p).value() : nullptr;
}

enum class Client { kGrpc, kGateway };

class EtcdClientTest : public ::testing::TestWithParam<Client> {
 protected:
  std::unique_ptr<KvStore> Store(EtcdOptions o) {
    if (GetParam() == Client::kGateway) return std::make_unique<EtcdKvStore>(o);
    return std::make_unique<EtcdGrpcKvStore>(o);
  }
  std::unique_ptr<KvStore> StoreFor(const std::vector<std::string>& endpoints) {
    EtcdOptions o;
    o.endpoints = endpoints;
    return Store(o);
  }
};

TEST_P(EtcdClientTest, NothingListeningIsUnavailable) {
  // Port 9 (discard) on loopback: nothing listens there in a test box.
  auto store = StoreFor({"http://127.0.0.1:9"});
  Result<int64_t> r = store->Put("k", "v", DeadlineAfter(3s));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnavailable) << r.status().ToString();
  Result<std::unique_ptr<Watch>> w = store->WatchPrefix("k", 0, DeadlineAfter(3s));
  ASSERT_FALSE(w.ok());
  EXPECT_TRUE(IsOutage(w.status().code())) << w.status().ToString();
}

TEST_P(EtcdClientTest, HungServerTimesOutThenRecovers) {
  if (!HaveEtcd()) GTEST_SKIP() << "/usr/bin/etcd not installed";
  std::unique_ptr<EtcdProcess> etcd = StartEtcd();
  ASSERT_NE(etcd, nullptr);
  auto store = StoreFor({etcd->endpoint()});
  ASSERT_TRUE(store->Put("k", "v", DeadlineAfter(5s)).ok());

  ASSERT_TRUE(etcd->Pause().ok());
  const auto start = Clock::now();
  Result<KeyValue> got = store->Get("k", DeadlineAfter(300ms));
  Result<std::unique_ptr<Watch>> w = store->WatchPrefix("k", 0, DeadlineAfter(300ms));
  const auto elapsed = Clock::now() - start;
  ASSERT_TRUE(etcd->Resume().ok());
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), Code::kDeadlineExceeded) << got.status().ToString();
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), Code::kDeadlineExceeded) << w.status().ToString();
  EXPECT_LT(elapsed, 10s) << "calls must return near their deadline, not hang";

  Result<KeyValue> again = store->Get("k", DeadlineAfter(10s));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->value, "v");
}

TEST_P(EtcdClientTest, KilledServerFailsCallsAndBreaksWatches) {
  if (!HaveEtcd()) GTEST_SKIP() << "/usr/bin/etcd not installed";
  std::unique_ptr<EtcdProcess> etcd = StartEtcd();
  ASSERT_NE(etcd, nullptr);
  auto store = StoreFor({etcd->endpoint()});
  Result<std::unique_ptr<Watch>> w = store->WatchPrefix("", 0, DeadlineAfter(5s));
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  ASSERT_TRUE(store->Put("k", "v", DeadlineAfter(5s)).ok());
  // Let the event reach the watch before the server dies (delivery is asynchronous).
  size_t events = 0;
  const Deadline seen = DeadlineAfter(5s);
  while (events == 0 && Clock::now() < seen) {
    Result<std::vector<WatchEvent>> got = (*w)->Poll(DeadlineAfter(100ms));
    if (got.ok()) events += got->size();
  }
  ASSERT_EQ(events, 1u);

  etcd->Stop();  // SIGKILL, reaped
  const auto start = Clock::now();
  Result<int64_t> put = store->Put("k", "v2", DeadlineAfter(2s));
  Result<LeaseInfo> lease = store->LeaseGrant(5, DeadlineAfter(2s));
  EXPECT_LT(Clock::now() - start, 10s);
  ASSERT_FALSE(put.ok());
  EXPECT_TRUE(IsOutage(put.status().code())) << put.status().ToString();
  ASSERT_FALSE(lease.ok());
  EXPECT_TRUE(IsOutage(lease.status().code())) << lease.status().ToString();

  // The watch then reports the outage (and no phantom events).
  Status broken;
  const Deadline end = DeadlineAfter(15s);
  while (broken.ok() && Clock::now() < end) {
    Result<std::vector<WatchEvent>> got = (*w)->Poll(end);
    if (got.ok()) {
      events += got->size();
    } else {
      broken = got.status();
    }
  }
  EXPECT_EQ(events, 1u);
  EXPECT_EQ(broken.code(), Code::kUnavailable) << broken.ToString();
}

TEST_P(EtcdClientTest, FailsOverToNextEndpoint) {
  if (!HaveEtcd()) GTEST_SKIP() << "/usr/bin/etcd not installed";
  std::unique_ptr<EtcdProcess> etcd = StartEtcd();
  ASSERT_NE(etcd, nullptr);
  auto store = StoreFor({"http://127.0.0.1:9", etcd->endpoint()});
  ASSERT_TRUE(store->Put("k", "v", DeadlineAfter(5s)).ok());
  Result<KeyValue> got = store->Get("k", DeadlineAfter(5s));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->value, "v");
}

TEST(EtcdKvStoreTest, GeminisEtcdCompactsItsHistory) {
  // An etcd that Gemini starts drops old revisions (periodic compaction): a
  // read at the first revision of a key written many times is refused once
  // the compactor has run. Retention 1 s here; the default is 5 minutes.
  if (!HaveEtcd()) GTEST_SKIP() << "/usr/bin/etcd not installed";
  EtcdProcessOptions o;
  o.compaction_retention = "1s";
  auto etcd = EtcdProcess::Start(o);
  ASSERT_TRUE(etcd.ok()) << etcd.status().ToString();
  EtcdOptions eo;
  eo.endpoints = {(*etcd)->endpoint()};
  EtcdKvStore kv(eo);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(kv.Put("k", std::to_string(i), DeadlineAfter(5s)).ok());
  HttpClient http;
  const std::string old_read = R"({"key":"aw==","revision":"2"})";  // "k" at revision 2
  bool compacted = false;
  for (auto until = Clock::now() + 30s; !compacted && Clock::now() < until;) {
    ASSERT_TRUE(kv.Put("k", "again", DeadlineAfter(5s)).ok());  // Revisions keep coming.
    auto r = http.Post((*etcd)->endpoint() + "/v3/kv/range", old_read, DeadlineAfter(5s));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    compacted = r->body.find("compacted") != std::string::npos;
    if (!compacted) std::this_thread::sleep_for(200ms);
  }
  EXPECT_TRUE(compacted) << "revision 2 still readable after 30 s";
}

// Certificates from scripts/etcd-dev in a fresh directory (empty on failure).
std::string MakeCertificates(const char* name) {
  std::string dir = ::testing::TempDir() + "gemini-tls-" + name + "-" + std::to_string(::getpid());
  std::string cmd =
      std::string(GEMINI_SOURCE_DIR) + "/scripts/etcd-dev certs " + dir + " >/dev/null 2>&1";
  return std::system(cmd.c_str()) == 0 ? dir : "";
}

TEST_P(EtcdClientTest, TlsWithClientCertificatesAndNothingElse) {
  if (!HaveEtcd()) GTEST_SKIP() << "/usr/bin/etcd not installed";
  const std::string certs = MakeCertificates("a"), other = MakeCertificates("b");
  struct RemoveAtEnd {
    std::vector<std::string> dirs;
    ~RemoveAtEnd() {
      for (const auto& d : dirs)
        if (!d.empty()) std::filesystem::remove_all(d);
    }
  } cleanup{{certs, other}};
  ASSERT_FALSE(certs.empty() || other.empty()) << "scripts/etcd-dev certs failed (openssl?)";
  const TlsFiles client{certs + "/ca.pem", certs + "/client.pem", certs + "/client.key"};
  EtcdProcessOptions o;
  o.server_tls = {certs + "/ca.pem", certs + "/server.pem", certs + "/server.key"};
  o.probe_tls = client;
  auto etcd = EtcdProcess::Start(o);
  ASSERT_TRUE(etcd.ok()) << etcd.status().ToString();
  const std::string url = (*etcd)->endpoint();
  ASSERT_EQ(url.rfind("https://", 0), 0u) << url;

  EtcdOptions good;
  good.endpoints = {url};
  good.tls = client;
  auto store = Store(good);
  ASSERT_TRUE(store->Put("k", "v", DeadlineAfter(5s)).ok());
  auto got = store->Get("k", DeadlineAfter(5s));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->value, "v");
  auto watch = store->WatchKey("k", false, 0, DeadlineAfter(5s));  // Watches go over TLS too.
  ASSERT_TRUE(watch.ok()) << watch.status().ToString();
  ASSERT_TRUE(store->Put("k", "w", DeadlineAfter(5s)).ok());
  auto events = (*watch)->Poll(DeadlineAfter(5s));
  ASSERT_TRUE(events.ok() && !events->empty()) << events.status().ToString();

  auto refused = [&](TlsFiles tls, const char* why) {
    EtcdOptions eo;
    eo.endpoints = {url};
    eo.tls = std::move(tls);
    auto bad = Store(eo);
    auto put = bad->Put("k", "forged", DeadlineAfter(5s));
    EXPECT_FALSE(put.ok()) << why;
    return put.status();
  };
  // No client certificate: etcd refuses the connection.
  refused({certs + "/ca.pem", "", ""}, "no client certificate");
  // A client certificate another CA signed: refused.
  refused({certs + "/ca.pem", other + "/client.pem", other + "/client.key"}, "foreign client");
  // A server our CA did not sign: refused by the client, clearly.
  Status foreign =
      refused({other + "/ca.pem", certs + "/client.pem", certs + "/client.key"}, "foreign server");
  EXPECT_EQ(foreign.code(), Code::kFailedPrecondition) << foreign.ToString();
  EXPECT_NE(foreign.message().find("--etcd-cacert"), std::string::npos) << foreign.ToString();
  // Plain http to the TLS port: refused.
  auto plain = Store(EtcdOptions{.endpoints = {"http://" + url.substr(8)}});
  EXPECT_FALSE(plain->Put("k", "forged", DeadlineAfter(5s)).ok());
  EXPECT_EQ(store->Get("k", DeadlineAfter(5s))->value, "w");  // Nothing forged got in.
}

INSTANTIATE_TEST_SUITE_P(Clients, EtcdClientTest,
                         ::testing::Values(Client::kGrpc, Client::kGateway),
                         [](const ::testing::TestParamInfo<Client>& info) {
                           return info.param == Client::kGrpc ? "Grpc" : "Gateway";
                         });

TEST(EtcdKvStoreTest, MissingBinaryIsNotFound) {
  EtcdProcessOptions o;
  o.binary = "/nonexistent/etcd";
  EXPECT_EQ(EtcdProcess::Start(o).status().code(), Code::kNotFound);
}

TEST(EtcdCodec, Base64RoundTripsEveryLengthAndByte) {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  for (size_t n = 0; n <= all.size(); n += (n < 8 ? 1 : 37)) {
    std::string in = all.substr(all.size() - n), out;
    ASSERT_TRUE(etcd::Base64Decode(etcd::Base64Encode(in), &out)) << n;
    EXPECT_EQ(out, in);
  }
  EXPECT_EQ(etcd::Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(etcd::Base64Encode("fo"), "Zm8=");
  std::string out;
  EXPECT_FALSE(etcd::Base64Decode("Zm9v!", &out));
  EXPECT_FALSE(etcd::Base64Decode("Z", &out));
}

TEST(EtcdCodec, DecodesGatewayJson) {
  auto j = nlohmann::json::parse(
      R"({"header":{"revision":"9"},"kvs":[{"key":"Zm9v","create_revision":"2",)"
      R"("mod_revision":"9","version":"3","value":"YmFy","lease":"77"}],"count":"1"})");
  Result<RangeResult> r = etcd::DecodeRange(j);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->revision, 9);
  ASSERT_EQ(r->kvs.size(), 1u);
  EXPECT_EQ(r->kvs[0].key, "foo");
  EXPECT_EQ(r->kvs[0].value, "bar");
  EXPECT_EQ(r->kvs[0].version, 3);
  EXPECT_EQ(r->kvs[0].lease, 77);

  auto bad = nlohmann::json::parse(R"({"kvs":[{"key":"%%%"}]})");
  EXPECT_EQ(etcd::DecodeRange(bad).status().code(), Code::kInternal);
  auto err = nlohmann::json::parse(
      R"({"error":"etcdserver: requested lease not found","message":"etcdserver: requested lease not found","code":5})");
  EXPECT_EQ(etcd::DecodeError(err, 404).code(), Code::kNotFound);
  auto stream_err = nlohmann::json::parse(R"({"error":{"grpc_code":14,"message":"no leader"}})");
  EXPECT_EQ(etcd::DecodeError(stream_err, 200).code(), Code::kUnavailable);
}

}  // namespace
}  // namespace gemini
