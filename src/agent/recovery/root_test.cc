#include "agent/recovery/root.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "coord/fake_kv_store.h"
#include "coord/prefix_kv_store.h"

namespace gemini {
namespace {

using namespace std::chrono_literals;

// A running 4-host job on a fake etcd whose root is host 0; host 2 drops out
// of etcd (its lease revoked) and the root's probes of it are scripted.
struct RootTest : ::testing::Test {
  std::shared_ptr<KvStore> kv =
      std::make_shared<PrefixKvStore>(std::make_shared<FakeKvStore>(), "/gemini/job/");
  std::vector<std::unique_ptr<JobCoordinator>> hosts;
  JobConfig config;
  std::atomic<int> probes{0};

  void SetUp() override {
    config.num_hosts = 4;
    for (uint32_t h = 0; h < 4; ++h) {
      hosts.push_back(std::make_unique<JobCoordinator>(
          kv, HostInfo{h, "10.0.0." + std::to_string(h), 7000, {h}}, 5));
      ASSERT_TRUE(hosts.back()->Register().ok());
    }
    Plan running;
    running.epoch = 1;
    running.state = "running";
    running.kind = "start";
    ASSERT_TRUE(kv->Put("plan", EncodePlan(running), DeadlineAfter(1s)).ok());
  }

  Plan RunRoot(std::function<bool(int probe)> answers, std::chrono::milliseconds after_drop) {
    RootAgent root(RootContext{"job", 0, config, 5, hosts[0].get(), [&](const HostInfo& h) {
                                 EXPECT_EQ(h.host, 2u);
                                 return answers(probes++);
                               }});
    return Run(root, after_drop, [&] { hosts[2]->Stop(); });
  }

  // Runs the root; `fault` once it has seen every host registered.
  Plan Run(RootAgent& root, std::chrono::milliseconds after, std::function<void()> fault) {
    root.Start();
    while (!root.is_root()) std::this_thread::sleep_for(10ms);
    std::this_thread::sleep_for(300ms);  // The root has seen every host registered.
    fault();
    std::this_thread::sleep_for(after);
    root.Stop();
    return *DecodePlan(kv->Get("plan", DeadlineAfter(1s))->value);
  }
};

TEST_F(RootTest, AHostThatMissesOneProbeIsNotReplaced) {
  // The first probe fails (a loaded machine), every later one answers.
  Plan p = RunRoot([](int n) { return n > 0; }, 1500ms);
  EXPECT_EQ(p.epoch, 1);
  EXPECT_EQ(p.state, "running");
  EXPECT_GE(probes.load(), 2);
}

TEST_F(RootTest, AHostThatMissesProbesInARowIsLost) {
  Plan p = RunRoot([](int) { return false; }, 1500ms);
  EXPECT_EQ(p.epoch, 2);
  EXPECT_EQ(p.kind, "hardware");
  EXPECT_EQ(p.failed_hosts, std::vector<uint32_t>{2});
  EXPECT_GE(probes.load(), 2);
}

TEST_F(RootTest, APlanOverwrittenWithGarbageIsPutBack) {
  RootAgent root(
      RootContext{"job", 0, config, 5, hosts[0].get(), [](const HostInfo&) { return true; }});
  Plan p = Run(root, 800ms, [&] {
    ASSERT_TRUE(kv->Put("plan", "{\"epoch\": not json", DeadlineAfter(1s)).ok());
  });
  EXPECT_EQ(p.epoch, 1);
  EXPECT_EQ(p.state, "running");
}

TEST_F(RootTest, AHostAlreadyBeingReplacedGetsNoSecondStandby) {
  for (const char* name : {"standby/a", "standby/b"})
    ASSERT_TRUE(kv->Put(name, "idle", DeadlineAfter(1s)).ok());
  RootAgent root(
      RootContext{"job", 0, config, 5, hosts[0].get(), [](const HostInfo&) { return false; }});
  // Host 2 is lost; while its replacement is on the way, host 3 is lost too.
  Plan p = Run(root, 1500ms, [&] {
    hosts[2]->Stop();
    std::this_thread::sleep_for(1500ms);
    hosts[3]->Stop();
  });
  EXPECT_EQ(p.failed_hosts, (std::vector<uint32_t>{2, 3}));
  EXPECT_EQ(kv->Get("assign/a", DeadlineAfter(1s))->value, "2");
  EXPECT_EQ(kv->Get("assign/b", DeadlineAfter(1s))->value, "3");
  EXPECT_FALSE(kv->Get("provider/requests/2", DeadlineAfter(1s)).ok());
}

}  // namespace
}  // namespace gemini
