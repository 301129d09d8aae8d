// Coordination records: forged and corrupt etcd values are errors, never
// crashes; the coordinator and the root keep working around them.
#include "agent/cluster/coord_records.h"

#include <gtest/gtest.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <thread>

#include "agent/cluster/job_coordinator.h"
#include "agent/cluster/plan.h"
#include "common/eventually.h"
#include "coord/fake_kv_store.h"

namespace gemini {
namespace {

using namespace std::chrono_literals;

TEST(CoordRecords, ForgedValuesAreErrors) {
  for (const char* bad :
       {"", "x", "[]", "{}", R"({"epoch":"1","iteration":2})", R"({"epoch":1e300,"iteration":2})",
        R"({"epoch":-1,"iteration":2})", R"({"epoch":1,"iteration":-5})",
        R"({"epoch":18446744073709551615,"iteration":1})", "\xff\xfe", R"({"epoch":1})"})
    EXPECT_EQ(DecodeComplete(bad).status().code(), Code::kInvalidArgument) << bad;
  auto c = DecodeComplete(EncodeComplete({3, 7}));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->epoch, 3);
  EXPECT_EQ(c->iteration, 7);
  // Fuzzer finding (coord, mode 9): "001313314975" was read as 1313314975; only
  // canonical spellings are numbers, so "ranks/07" never aliases "ranks/7".
  for (const char* bad :
       {"", "-2", "1x", " 1", "99999999999999999999", "1e3", "0x10", "001313314975", "-0", "+1"})
    EXPECT_FALSE(DecodeIteration(bad).ok()) << bad;
  EXPECT_EQ(*DecodeIteration("-1"), -1);
  for (const char* bad : {"-1", "4294967296", "abc", ""}) EXPECT_FALSE(DecodeId(bad).ok()) << bad;
  EXPECT_EQ(*KeyId("epochs/3/replicated/12"), 12u);
  EXPECT_FALSE(KeyId("epochs/3/replicated/").ok());
  EXPECT_FALSE(KeyId("ranks/07").ok());
  EXPECT_EQ(*DecodeId("0"), 0u);
  for (const char* bad : {R"({"code":"1","at":1,"host":0})", R"({"code":1,"at":"now","host":0})",
                          R"({"code":1,"at":1e400,"host":0})", R"({"code":1e300,"host":0})", "7"})
    EXPECT_FALSE(DecodeExit(bad).ok()) << bad;
  EXPECT_TRUE(DecodeExit(R"({"code":1,"at":5.5,"host":2})").ok());
  for (const char* bad : {R"({"ok":"yes"})", R"({"ok":false,"error":3})", R"({"error":"x"})"})
    EXPECT_FALSE(DecodeReady(bad).ok()) << bad;
  auto r = DecodeReady(R"({"ok":false,"error":"boom","at":1})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->error, "boom");
}

TEST(CoordRecords, PlansHostsAndConfigsRefuseOutOfRangeNumbers) {
  // Each was undefined behaviour (a float or a negative number converted to
  // an integer type) before the decoders checked types and ranges.
  Plan p;
  p.state = "running";
  p.source = "fresh";
  p.kind = "start";
  std::string good = EncodePlan(p);
  ASSERT_TRUE(DecodePlan(good).ok());
  for (const char* field : {"epoch", "master_port", "resume_iteration"}) {
    auto j = nlohmann::json::parse(good);
    j[field] = 1e300;
    EXPECT_FALSE(DecodePlan(j.dump()).ok()) << field;
    j[field] = -7;
    EXPECT_FALSE(DecodePlan(j.dump()).ok()) << field;
  }
  auto j = nlohmann::json::parse(good);
  j["master_port"] = 70000;
  EXPECT_FALSE(DecodePlan(j.dump()).ok());
  j = nlohmann::json::parse(good);
  j["failed_hosts"] = {1, 3.1e301};
  EXPECT_FALSE(DecodePlan(j.dump()).ok());
  EXPECT_FALSE(DecodeHostInfo(R"({"host":0,"addr":"a","port":1e30,"ranks":[]})").ok());
  EXPECT_FALSE(DecodeHostInfo(R"({"host":-1,"addr":"a","port":1,"ranks":[]})").ok());
  EXPECT_TRUE(DecodeHostInfo(R"({"host":0,"addr":"a","port":1,"ranks":[0,1]})").ok());
  JobConfig c;
  c.num_hosts = 6;
  c.command = {"python3", "train.py"};
  c.redundancy = Redundancy::ReedSolomon(4, 2);
  auto back = DecodeJobConfig(EncodeJobConfig(c));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->redundancy.ToString(), "rs:4+2");
  // Nothing executed is read from etcd: the command and environment are not
  // written, and a forged config that carries them has them ignored.
  auto forged = nlohmann::json::parse(EncodeJobConfig(c));
  EXPECT_FALSE(forged.contains("command") || forged.contains("env"));
  forged["command"] = {"sh", "-c", "touch /tmp/pwned"};
  forged["env"] = {{"LD_PRELOAD", "/tmp/evil.so"}};
  back = DecodeJobConfig(forged.dump());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE(back->command.empty() && back->env.empty());
  c.redundancy = Redundancy::Copies(2);
  auto cj = nlohmann::json::parse(EncodeJobConfig(c));
  ASSERT_TRUE(DecodeJobConfig(cj.dump()).ok());
  cj.erase("redundancy");  // A launcher from before rs:K+F: "replicas" alone.
  ASSERT_EQ(DecodeJobConfig(cj.dump())->redundancy.ToString(), "copies:2");
  cj["redundancy"] = "rs:9+9";  // Wider than the job's 6 hosts.
  EXPECT_FALSE(DecodeJobConfig(cj.dump()).ok());
  cj["redundancy"] = "rs:4+x";
  EXPECT_FALSE(DecodeJobConfig(cj.dump()).ok());
  cj.erase("redundancy");
  cj["num_hosts"] = 1e10;
  EXPECT_FALSE(DecodeJobConfig(cj.dump()).ok());
  cj["num_hosts"] = 0;
  EXPECT_FALSE(DecodeJobConfig(cj.dump()).ok());
}

// A forged `complete` used to throw out of the coordinator's watch thread
// (killing every agent of the job within 25 ms).
TEST(CoordRecords, ForgedCompleteIsIgnoredAndRepaired) {
  auto kv = std::make_shared<FakeKvStore>();
  JobCoordinator coord(kv, HostInfo{0, "127.0.0.1", 1, {0}}, 10);
  ASSERT_TRUE(coord.Register().ok());
  ASSERT_TRUE(kv->Put("complete", R"({"epoch":"x","iteration":[]})", DeadlineAfter(1s)).ok());
  std::atomic<int> calls{0};
  coord.WatchComplete([&](int64_t, int64_t) { ++calls; });
  std::this_thread::sleep_for(100ms);  // The forged value reached the watch.
  EXPECT_EQ(*coord.Complete(), -1);
  ASSERT_TRUE(kv->Put("epochs/0/replicated/0", "not a number", DeadlineAfter(1s)).ok());
  EXPECT_EQ(*coord.TryAdvanceComplete(1), -1);  // The forged rank record does not count.
  ASSERT_TRUE(coord.ReportReplicated(0, 4, 0).ok());
  EXPECT_EQ(*coord.TryAdvanceComplete(1), 4);  // And the forged complete is replaced.
  // Complete() reads the watched copy once WatchComplete runs: it follows.
  EXPECT_TRUE(Eventually([&] { return *coord.Complete() == 4; }));
  ASSERT_TRUE(kv->Put("ranks/0", "-3", DeadlineAfter(1s)).ok());
  EXPECT_EQ(coord.HostOfRank(0).status().code(), Code::kInvalidArgument);
  coord.Stop();
}

// Finding 4: a replica of the old timeline, still in flight when recovery
// starts, counted toward the new epoch's `complete`.
TEST(CoordRecords, ReplicaOfAnOldTimelineNeverCountsInANewOne) {
  auto kv = std::make_shared<FakeKvStore>();
  JobCoordinator coord(kv, HostInfo{0, "127.0.0.1", 1, {0, 1}}, 10);
  ASSERT_TRUE(coord.Register().ok());
  ASSERT_TRUE(coord.ReportReplicated(0, 8, 0).ok());
  coord.SetEpoch(1);                                  // Recovery: resume at 5, epoch 1.
  ASSERT_TRUE(coord.ReportReplicated(1, 8, 0).ok());  // Epoch 0's replica lands late.
  ASSERT_TRUE(coord.ReportReplicated(0, 6, 1).ok());
  EXPECT_EQ(*coord.TryAdvanceComplete(2), -1);  // Rank 1 has nothing in epoch 1.
  ASSERT_TRUE(coord.ReportReplicated(1, 6, 1).ok());
  EXPECT_EQ(*coord.TryAdvanceComplete(2), 6);
  coord.Stop();
}

}  // namespace
}  // namespace gemini
