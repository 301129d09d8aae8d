#include "agent/root.h"

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
    root.Start();
    while (!root.is_root()) std::this_thread::sleep_for(10ms);
    std::this_thread::sleep_for(300ms);  // The root has seen every host registered.
    hosts[2]->Stop();                    // Its record disappears with its lease.
    std::this_thread::sleep_for(after_drop);
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

}  // namespace
}  // namespace gemini
