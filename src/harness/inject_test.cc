#include "harness/inject.h"

#include <gtest/gtest.h>

namespace gemini::harness {
namespace {

TEST(Inject, ParsesEveryKind) {
  auto v = ParseInjections("kill-trainer:3@5,kill-host:1@10,kill-root@12,stop-etcd:10@20");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  ASSERT_EQ(v->size(), 4u);
  EXPECT_EQ((*v)[0].kind, Injection::Kind::kKillTrainer);
  EXPECT_EQ((*v)[0].target, 3);
  EXPECT_EQ((*v)[0].iteration, 5);
  EXPECT_EQ((*v)[1].kind, Injection::Kind::kKillHost);
  EXPECT_EQ((*v)[2].kind, Injection::Kind::kKillRoot);
  EXPECT_EQ((*v)[3].target, 10);
  EXPECT_STREQ(InjectionEventKind((*v)[3]), "etcd");
  EXPECT_TRUE(ParseInjections("")->empty());
  auto f = ParseInjections("freeze-host:2:8@5");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ((*f)[0].kind, Injection::Kind::kFreezeHost);
  EXPECT_EQ((*f)[0].target, 2);
  EXPECT_EQ((*f)[0].seconds, 8);
  EXPECT_STREQ(InjectionEventKind((*f)[0]), "hardware");
  auto g = ParseInjections("forge-etcd@4");
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ((*g)[0].kind, Injection::Kind::kForgeEtcd);
  EXPECT_EQ((*g)[0].iteration, 4);
  auto a = ParseInjections("add-standby@5");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ((*a)[0].kind, Injection::Kind::kAddStandby);
  EXPECT_STREQ(InjectionEventKind((*a)[0]), "grow");
  EXPECT_FALSE(ParseInjections("add-standby:1@5").ok());
  auto m = ParseInjections("kill-etcd-member:1@3");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ((*m)[0].kind, Injection::Kind::kKillEtcdMember);
  EXPECT_EQ((*m)[0].target, 1);
  EXPECT_STREQ(InjectionEventKind((*m)[0]), "etcd_member");
}

TEST(Inject, RejectsBadSpecsClearly) {
  for (const char* bad : {"kill-trainer@5", "kill-trainer:x@5", "kill-host:1", "explode:1@2",
                          "kill-root:1@2", "kill-host:1@0", "stop-etcd:-1@3", "freeze-host:2@5",
                          "freeze-host:2:0@5", "freeze-host::3@5", "forge-etcd:1@3"}) {
    auto v = ParseInjections(bad);
    EXPECT_FALSE(v.ok()) << bad;
    EXPECT_NE(v.status().message().find("--inject"), std::string::npos);
  }
}

}  // namespace
}  // namespace gemini::harness
