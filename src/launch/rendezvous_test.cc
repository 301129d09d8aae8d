#include "launch/rendezvous.h"

#include <gtest/gtest.h>

#include <future>
#include <set>

#include "agent/cluster/plan.h"
#include "coord/fake_kv_store.h"

namespace gemini {
namespace {

using Records = std::map<std::string, std::string>;

// The closer's records: a config naming the number of nodes.
JobStart StartFor() {
  return [](uint32_t n) -> Result<Records> {
    return Records{{"config", std::to_string(n)}, {"plan", R"({"epoch":1})"}};
  };
}

RendezvousOptions Node(std::string name, uint32_t min, uint32_t max) {
  RendezvousOptions o;
  o.node = std::move(name);
  o.min_nodes = min;
  o.max_nodes = max;
  o.last_call_s = 0.3;
  o.timeout_s = 20;
  o.settings = "same";
  return o;
}

std::vector<Result<RendezvousResult>> JoinAll(KvStore& kv, std::vector<RendezvousOptions> nodes) {
  std::vector<std::future<Result<RendezvousResult>>> f;
  JobStart start = StartFor();
  for (auto& o : nodes)
    f.push_back(
        std::async(std::launch::async, [&kv, o, &start] { return JoinRendezvous(kv, o, start); }));
  std::vector<Result<RendezvousResult>> out;
  for (auto& x : f) out.push_back(x.get());
  return out;
}

TEST(Rendezvous, NodesGetDistinctHostIdsAndOneWritesTheJob) {
  FakeKvStore kv;
  (void)kv.Put("complete", "left by an earlier run", DeadlineAfter(std::chrono::seconds(1)));
  auto got = JoinAll(kv, {Node("a", 3, 3), Node("b", 3, 3), Node("c", 3, 3)});
  std::set<uint32_t> hosts;
  int closers = 0;
  for (auto& r : got) {
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->num_hosts, 3u);
    EXPECT_FALSE(r->standby);
    hosts.insert(r->host);
    closers += r->closer;
  }
  EXPECT_EQ(hosts, (std::set<uint32_t>{0, 1, 2}));
  EXPECT_EQ(closers, 1);
  auto config = kv.Get("config", DeadlineAfter(std::chrono::seconds(1)));
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->value, "3");
  auto rec = DecodeRendezvous(kv.Get("rdzv", DeadlineAfter(std::chrono::seconds(1)))->value);
  ASSERT_TRUE(rec.ok());
  EXPECT_TRUE(rec->closed);
  EXPECT_EQ(rec->settings, "same");
  EXPECT_FALSE(kv.Get("complete", DeadlineAfter(std::chrono::seconds(1))).ok());
}

TEST(Rendezvous, ClosesShortAfterTheLastCallWhenMinJoined) {
  FakeKvStore kv;
  auto got = JoinAll(kv, {Node("a", 2, 4), Node("b", 2, 4)});
  for (auto& r : got) {
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->num_hosts, 2u);
  }
  // A late node is turned away with the reason; a spare is accepted.
  auto late = JoinRendezvous(kv, Node("c", 2, 4), StartFor());
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(late.status().message().find("--standby"), std::string::npos);
  RendezvousOptions spare = Node("d", 2, 4);
  spare.standby = true;
  auto s = JoinRendezvous(kv, spare, StartFor());
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE(s->standby);
}

TEST(Rendezvous, AFinishedRunIsClearedAndTheNextRoundOpens) {
  FakeKvStore kv;
  ASSERT_TRUE(JoinRendezvous(kv, Node("a", 1, 1), StartFor()).ok());
  Plan done;
  done.epoch = 3;
  done.state = "done";
  ASSERT_TRUE(kv.Put("plan", EncodePlan(done), DeadlineAfter(std::chrono::seconds(1))).ok());
  auto again = JoinRendezvous(kv, Node("a", 1, 1), StartFor());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->round, 2);
  auto plan = kv.Get("plan", DeadlineAfter(std::chrono::seconds(1)));
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->value, R"({"epoch":1})");
}

TEST(Rendezvous, RejectsDisagreementGarbageAndTimesOut) {
  FakeKvStore kv;
  auto d = DeadlineAfter(std::chrono::seconds(1));
  ASSERT_TRUE(
      kv.Put("rdzv", R"({"round":1,"nodes":["x"],"closed":false,"min":2,"max":2})", d).ok());
  auto disagree = JoinRendezvous(kv, Node("a", 3, 3), StartFor());
  ASSERT_FALSE(disagree.ok());
  EXPECT_NE(disagree.status().message().find("disagree"), std::string::npos);
  RendezvousOptions other = Node("a", 2, 2);
  other.settings = "--nproc-per-node 8";
  auto differs = JoinRendezvous(kv, other, StartFor());
  ASSERT_FALSE(differs.ok());
  EXPECT_NE(differs.status().message().find("--nproc-per-node 8"), std::string::npos);

  for (const char* bad :
       {"not json", R"({"round":1,"nodes":["x","x"],"closed":false,"min":2,"max":2})",
        R"({"round":1,"nodes":[1],"closed":false,"min":2,"max":2})",
        R"({"round":-4,"nodes":[],"closed":false,"min":2,"max":2})"}) {
    ASSERT_TRUE(kv.Put("rdzv", bad, d).ok());
    auto r = JoinRendezvous(kv, Node("a", 2, 2), StartFor());
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << bad;
  }

  ASSERT_TRUE(kv.Delete("rdzv", d).ok());
  RendezvousOptions alone = Node("a", 2, 2);
  alone.timeout_s = 0.5;
  auto t = JoinRendezvous(kv, alone, StartFor());
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), Code::kDeadlineExceeded);
  // It left the round on the way out.
  auto rec = DecodeRendezvous(kv.Get("rdzv", DeadlineAfter(std::chrono::seconds(1)))->value);
  ASSERT_TRUE(rec.ok());
  EXPECT_TRUE(rec->nodes.empty());
}

}  // namespace
}  // namespace gemini
