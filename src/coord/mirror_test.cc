// Mirror: a local copy kept current by a watch, over the fake store (with an
// injected outage) and a real etcd through the gRPC client.
#include "coord/mirror.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <thread>

#include "common/eventually.h"
#include "coord/etcd_grpc_kv_store.h"
#include "coord/etcd_process.h"
#include "coord/fake_kv_store.h"

namespace gemini {
namespace {

using namespace std::chrono_literals;

void FollowsPutsAndDeletes(std::shared_ptr<KvStore> kv) {
  ASSERT_TRUE(kv->Put("hosts/0", "a", DeadlineAfter(5s)).ok());
  Mirror hosts(kv, "hosts/", true);
  Mirror plan(kv, "plan", false);
  hosts.Start();
  plan.Start();
  ASSERT_TRUE(hosts.All().ok());
  EXPECT_EQ(hosts.All()->size(), 1u);
  EXPECT_EQ(plan.Get().status().code(), Code::kNotFound);

  ASSERT_TRUE(Eventually([&] { return hosts.synced() && plan.synced(); }));  // Watches up.
  const int64_t before = hosts.requests() + plan.requests();
  ASSERT_TRUE(kv->Put("hosts/1", "b", DeadlineAfter(5s)).ok());
  ASSERT_TRUE(kv->Put("plan", "p1", DeadlineAfter(5s)).ok());
  ASSERT_TRUE(kv->Put("planner", "not the plan", DeadlineAfter(5s)).ok());
  EXPECT_TRUE(Eventually([&] { return hosts.All()->size() == 2; }));
  EXPECT_TRUE(Eventually([&] { return plan.Get().ok() && plan.Get()->value == "p1"; }));
  ASSERT_TRUE(kv->Delete("hosts/0", DeadlineAfter(5s)).ok());
  EXPECT_TRUE(Eventually([&] { return hosts.All()->size() == 1; }));
  EXPECT_EQ(hosts.All()->begin()->second.value, "b");
  // Reading a mirror sends nothing: the changes came over the watches.
  for (int i = 0; i < 100; ++i) (void)plan.Get();
  EXPECT_EQ(hosts.requests() + plan.requests(), before);
}

TEST(MirrorTest, FollowsPutsAndDeletesOnTheFake) {
  FollowsPutsAndDeletes(std::make_shared<FakeKvStore>());
}

TEST(MirrorTest, FollowsPutsAndDeletesOnEtcd) {
  if (::access("/usr/bin/etcd", X_OK) != 0) GTEST_SKIP() << "/usr/bin/etcd not installed";
  auto etcd = EtcdProcess::Start(EtcdProcessOptions());
  ASSERT_TRUE(etcd.ok()) << etcd.status().ToString();
  EtcdOptions o;
  o.endpoints = {(*etcd)->endpoint()};
  FollowsPutsAndDeletes(std::make_shared<EtcdGrpcKvStore>(o));
}

TEST(MirrorTest, KeepsTheLastCopyThroughAnOutageThenCatchesUp) {
  auto kv = std::make_shared<FakeKvStore>();
  ASSERT_TRUE(kv->Put("plan", "p1", DeadlineAfter(5s)).ok());
  std::atomic<int> changes{0};
  Mirror plan(kv, "plan", false, [&] { ++changes; });
  plan.Start();
  EXPECT_TRUE(Eventually([&] { return plan.synced(); }));
  EXPECT_EQ(changes.load(), 1);  // The first read.
  kv->SetUnavailable(true);      // Breaks the watch; reads fail.
  EXPECT_TRUE(Eventually([&] { return !plan.synced(); }));
  EXPECT_EQ(plan.Get()->value, "p1");  // Stale, never invented.
  kv->SetUnavailable(false);
  ASSERT_TRUE(kv->Put("plan", "p2", DeadlineAfter(5s)).ok());  // Written while it re-syncs.
  EXPECT_TRUE(Eventually([&] { return plan.Get()->value == "p2" && plan.synced(); }));
  plan.Stop();
  EXPECT_EQ(plan.Get()->value, "p2");
}

TEST(MirrorTest, UnreadIsUnavailable) {
  auto kv = std::make_shared<FakeKvStore>();
  kv->SetUnavailable(true);
  Mirror plan(kv, "plan", false);
  plan.Start(50ms);
  EXPECT_EQ(plan.Get().status().code(), Code::kUnavailable);
  EXPECT_EQ(plan.All().status().code(), Code::kUnavailable);
}

}  // namespace
}  // namespace gemini
