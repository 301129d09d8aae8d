// Several cluster-mode agents in one process: loopback TCP, the fake KV store.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "agent/agent.h"
#include "agent/replication/peer_service.h"
#include "coord/fake_kv_store.h"
#include "store/client.h"
#include "transport/tcp/dial.h"

namespace gemini {
namespace {

using namespace std::chrono_literals;

class ReplicationTest : public ::testing::Test {
 protected:
  void StartCluster(uint32_t n, uint32_t m) {
    StartCluster(n, Redundancy::Copies(static_cast<int>(m)));
  }
  void StartCluster(uint32_t n, Redundancy redundancy) {
    setenv("GEMINI_SECRET", "test-secret-0123456789abcdef", 1);
    kv_ = std::make_shared<FakeKvStore>();
    for (uint32_t h = 0; h < n; ++h) {
      AgentOptions o;
      o.socket = "/tmp/gemini-repl-" + std::to_string(getpid()) + "-" + std::to_string(h);
      o.store = StoreOptions{
          .budget_bytes = 256 << 20,
          .shm_prefix = "gemini-repl-" + std::to_string(getpid()) + "-" + std::to_string(h)};
      ClusterOptions c;
      c.job = "job";
      c.host = h;
      c.num_hosts = n;
      c.redundancy = redundancy;
      c.advertise_addr = "127.0.0.1";
      c.listen_addr = "127.0.0.1";
      c.kv = kv_;
      o.cluster = c;
      agents_.push_back(std::make_unique<Agent>(o));
      ASSERT_TRUE(agents_.back()->Start().ok());
      sockets_.push_back(o.socket);
    }
  }
  void TearDown() override {
    for (auto& a : agents_) a->Stop();
  }
  // Saves rank `rank`'s pattern for `iteration` through agent `host`.
  void Save(uint32_t host, uint32_t rank, uint32_t world, int64_t iteration,
            std::vector<uint8_t>* data = nullptr) {
    auto c = AgentClient::Connect(sockets_[host]);
    ASSERT_TRUE(c.ok());
    std::vector<uint8_t> bytes(300000 + rank * 1000);
    std::mt19937 g(static_cast<uint32_t>(rank * 1000 + iteration));
    for (auto& b : bytes) b = static_cast<uint8_t>(g());
    SaveOptions so;
    so.chunk_size = 64 << 10;
    ASSERT_TRUE(
        (*c)->Save("job", rank, world, iteration,
                   {{"t", Dtype::kUint8, {int64_t(bytes.size())}, bytes.data(), bytes.size(), 0}},
                   so)
            .ok());
    if (data) *data = bytes;
  }
  // Agent 0 fetches (rank, iteration) from a holder; its bytes must be `want`.
  void ExpectFetched(uint32_t rank, int64_t iteration, int64_t from_host,
                     const std::vector<uint8_t>& want) {
    auto c = AgentClient::Connect(sockets_[0]);
    ASSERT_TRUE(c.ok());
    auto got = (*c)->Fetch("job", rank, iteration, from_host);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    auto shard = (*c)->Open("job", rank, iteration);
    ASSERT_TRUE(shard.ok());
    std::vector<uint8_t> out(shard->manifest.data_bytes);
    ASSERT_TRUE(AgentClient::ReadInto(*shard, out.data()).ok());
    EXPECT_EQ(std::memcmp(out.data(), want.data(), want.size()), 0);
  }
  int64_t WaitComplete(int64_t want) {
    int64_t got = -1;
    for (int i = 0; i < 3000 && got < want; ++i) {  // Up to 30 s on a loaded machine.
      got = agents_[0]->store().CompleteIteration("job");
      if (got < want) std::this_thread::sleep_for(10ms);
    }
    return got;
  }

  std::shared_ptr<FakeKvStore> kv_;
  std::vector<std::unique_ptr<Agent>> agents_;
  std::vector<std::string> sockets_;
};

TEST_F(ReplicationTest, ShardsReachTheirHoldersAndCompleteAdvances) {
  StartCluster(4, 2);  // Groups {0,1} {2,3}.
  for (int64_t it = 1; it <= 3; ++it)
    for (uint32_t r = 0; r < 4; ++r) Save(r, r, 4, it);
  EXPECT_EQ(WaitComplete(3), 3);
  // Host 1 holds rank 0's replica of iteration 3; host 2 does not.
  auto pin = agents_[1]->store().Pin("job", 0, 3);
  ASSERT_TRUE(pin.ok()) << pin.status().ToString();
  EXPECT_FALSE(agents_[2]->store().Pin("job", 0, 3).ok());
  EXPECT_EQ(agents_[0]->replicator()->stats().failures, 0u);
  auto status = nlohmann::json::parse(agents_[0]->StatusJson());
  EXPECT_EQ(status["cluster"]["complete_iteration"], 3);
  EXPECT_EQ(status["cluster"]["ranks"]["3"]["held_by"].size(), 2u);
}

TEST_F(ReplicationTest, ErasureCodedFragmentsRebuildAShardAfterTwoHostsDie) {
  StartCluster(6, Redundancy::ReedSolomon(4, 2));  // One group of 6.
  std::vector<uint8_t> want;
  for (uint32_t r = 0; r < 6; ++r) Save(r, r, 6, 1, r == 2 ? &want : nullptr);
  ASSERT_EQ(WaitComplete(1), 1);
  // Host h keeps fragment h of every other host's shard: a quarter of it.
  for (uint32_t h = 0; h < 6; ++h) {
    auto pin = agents_[h]->store().Pin("job", 2, 1);
    ASSERT_TRUE(pin.ok()) << pin.status().ToString();
    if (h == 2) {
      EXPECT_FALSE((*pin)->manifest.is_fragment());
      continue;
    }
    EXPECT_EQ((*pin)->manifest.fragment.index, static_cast<int>(h));
    EXPECT_EQ((*pin)->manifest.data_bytes, (want.size() + 3) / 4);
  }
  EXPECT_EQ(agents_[0]->replicator()->stats().bytes_sent,
            5 * ((agents_[0]->store().Pin("job", 0, 1).value()->manifest.data_bytes + 3) / 4));
  // Status names the fragment each holder keeps.
  auto status = nlohmann::json::parse(agents_[0]->StatusJson());
  EXPECT_EQ(status["cluster"]["redundancy"], "rs:4+2");
  int fragments = 0;
  for (const auto& h : status["cluster"]["ranks"]["2"]["held_by"])
    if (h.contains("fragment")) {
      EXPECT_EQ(h["fragment"], h["host"]);
      ++fragments;
    }
  EXPECT_EQ(fragments, 5);
  // A fragment is no shard: a trainer cannot open it.
  auto c = AgentClient::Connect(sockets_[0]);
  ASSERT_TRUE(c.ok());
  auto opened = (*c)->Open("job", 2, 1);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), Code::kNotFound) << opened.status().ToString();
  agents_[2]->Stop();  // The owner and one more holder die at once.
  agents_[3]->Stop();
  ExpectFetched(/*rank=*/2, /*iteration=*/1, /*from_host=*/-1, want);
  // With a third loss only 3 of the 4 fragments needed survive.
  agents_[4]->Stop();
  auto more = (*c)->Fetch("job", 3, 1, -1);
  ASSERT_FALSE(more.ok());
  EXPECT_NE(more.status().message().find("3 fragments"), std::string::npos)
      << more.status().ToString();
}

TEST_F(ReplicationTest, FetchFromAHolderAfterTheOwnerIsGone) {
  StartCluster(4, 2);
  std::vector<uint8_t> want;
  for (uint32_t r = 0; r < 4; ++r) Save(r, r, 4, 1, r == 2 ? &want : nullptr);
  ASSERT_EQ(WaitComplete(1), 1);
  agents_[2]->Stop();  // Host 2 (owner of rank 2) dies; host 3 holds its replica.
  ExpectFetched(/*rank=*/2, /*iteration=*/1, /*from_host=*/-1, want);
}

TEST_F(ReplicationTest, NotCompleteUntilEveryReplicaCommitted) {
  StartCluster(2, 2);
  Save(0, 0, 2, 1);
  Save(1, 1, 2, 1);
  ASSERT_EQ(WaitComplete(1), 1);
  agents_[1]->Stop();  // The only holder of rank 0's replica is gone.
  Save(0, 0, 2, 2);
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(agents_[0]->store().CompleteIteration("job"), 1);
}

// Finding 8: a peer holding job A's secret fetched job B's shards from an
// agent whose store holds both.
TEST_F(ReplicationTest, APeerOfOneJobCannotFetchAnotherJobsShards) {
  StartCluster(2, 2);
  {
    auto c = AgentClient::Connect(sockets_[1]);
    ASSERT_TRUE(c.ok());
    std::vector<uint8_t> secret_bytes(5000, 7);
    ASSERT_TRUE(
        (*c)->Save("other", 0, 1, 1, {{"t", Dtype::kUint8, {5000}, secret_bytes.data(), 5000, 0}})
            .ok());
  }
  auto addr = agents_[1]->peer_address();
  auto secret = transport::JobSecret::FromEnv();
  ASSERT_TRUE(secret.ok());
  auto conn =
      transport::DialPeer(addr.substr(0, addr.rfind(':')),
                          static_cast<uint16_t>(std::stoi(addr.substr(addr.rfind(':') + 1))),
                          *secret, "job", std::chrono::steady_clock::now() + 5s);
  ASSERT_TRUE(conn.ok()) << conn.status().ToString();
  Store mine(StoreOptions{.budget_bytes = 16 << 20, .shm_prefix = "gemini-thief"});
  auto got = FetchInto(**conn, &mine, 1, "other", 0, 1, 5s);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), Code::kNotFound) << got.status().ToString();
  EXPECT_EQ(mine.CompleteIteration("other"), -1);
}

// Holds `n` TCP connections to host:port open and silent, opening a new one
// whenever the server closes one (an attacker renewing its connections).
class SilentCrowd {
 public:
  SilentCrowd(const std::string& address, int n) : fds_(n, -1) {
    auto colon = address.rfind(':');
    addr_.sin_family = AF_INET;
    addr_.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
    inet_pton(AF_INET, address.substr(0, colon).c_str(), &addr_.sin_addr);
    for (auto& fd : fds_) fd = Open();
    thread_ = std::thread([this] {
      while (!stop_) {
        for (auto& fd : fds_) {
          char b;
          if (fd < 0 || recv(fd, &b, 1, MSG_DONTWAIT) == 0) {
            if (fd >= 0) close(fd);
            fd = Open();
            ++renewed_;
          }
        }
        std::this_thread::sleep_for(20ms);
      }
    });
  }
  ~SilentCrowd() {
    stop_ = true;
    thread_.join();
    for (int fd : fds_)
      if (fd >= 0) close(fd);
  }
  int renewed() const { return renewed_; }

 private:
  int Open() {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (connect(fd, reinterpret_cast<const sockaddr*>(&addr_), sizeof(addr_)) != 0) {
      close(fd);
      return -1;
    }
    return fd;
  }
  sockaddr_in addr_{};
  std::vector<int> fds_;
  std::atomic<bool> stop_{false};
  std::atomic<int> renewed_{0};
  std::thread thread_;
};

TEST_F(ReplicationTest, TwoHundredSilentConnectionsStarveNeitherReplicationNorFetch) {
  StartCluster(4, 2);  // Host 3 holds rank 2's replica.
  SilentCrowd crowd(agents_[3]->peer_address(), 200);
  std::vector<uint8_t> want;
  for (uint32_t r = 0; r < 4; ++r) Save(r, r, 4, 1, r == 2 ? &want : nullptr);
  ASSERT_EQ(WaitComplete(1), 1);  // Every replica reached its holder, host 3 included.
  agents_[2]->Stop();
  ExpectFetched(/*rank=*/2, /*iteration=*/1, /*from_host=*/3, want);
  EXPECT_GT(crowd.renewed(), 0);  // The server did drop silent connections.
}

}  // namespace
}  // namespace gemini
