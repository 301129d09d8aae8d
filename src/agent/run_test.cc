#include "agent/run.h"

#include <gtest/gtest.h>

#include <string>

namespace gemini {
namespace {

// What `gemini agent --etcd ... --advertise ...` gives, before the test's changes.
AgentArgs ClusterArgs() {
  AgentArgs a;
  a.etcd = "http://10.0.0.1:2379,http://10.0.0.2:2379";
  a.job = "j";
  a.host = 1;
  a.hosts = 4;
  a.advertise = "10.0.0.7";
  return a;
}

bool Rejects(const AgentArgs& a, const std::string& words) {
  auto o = MakeAgentOptions(a);
  return !o.ok() && o.status().code() == Code::kInvalidArgument &&
         o.status().message().find(words) != std::string::npos;
}

TEST(AgentArgs, OneMachineTakesOnlyTheStoreSettings) {
  AgentArgs a;
  a.socket = "/tmp/s.sock";
  a.budget = "1GiB";
  a.shm_prefix = "p";
  a.metrics_port = 0;
  a.redundancy.redundancy = "not-read";  // Cluster flags mean nothing without --etcd.
  auto o = MakeAgentOptions(a);
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->socket, "/tmp/s.sock");
  EXPECT_EQ(o->store.budget_bytes, uint64_t{1} << 30);
  EXPECT_EQ(o->store.shm_prefix, "p");
  EXPECT_EQ(o->metrics_port, 0);
  EXPECT_FALSE(o->cluster.has_value());
  a.budget = "lots";
  EXPECT_FALSE(MakeAgentOptions(a).ok());
}

TEST(AgentArgs, ClusterModeFromTheFlags) {
  AgentArgs a = ClusterArgs();
  a.redundancy.redundancy = "rs:4+2";
  a.interleave.mode = "naive";
  a.env = {"A=1", "B=x=y", "C="};
  a.launch = true;
  a.command = {"python3", "train.py"};
  auto o = MakeAgentOptions(a);
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  ASSERT_TRUE(o->cluster.has_value());
  const ClusterOptions& c = *o->cluster;
  EXPECT_EQ(c.etcd, (std::vector<std::string>{"http://10.0.0.1:2379", "http://10.0.0.2:2379"}));
  EXPECT_EQ(c.job, "j");
  EXPECT_EQ(c.host, 1u);
  EXPECT_EQ(c.num_hosts, 4u);
  EXPECT_EQ(c.advertise_addr, "10.0.0.7");
  EXPECT_EQ(c.redundancy.ToString(), "rs:4+2");
  EXPECT_EQ(c.interleave.mode, InterleaveMode::kNaive);
  EXPECT_TRUE(c.launch);
  EXPECT_EQ(c.command, a.command);
  EXPECT_EQ(c.env, (std::map<std::string, std::string>{{"A", "1"}, {"B", "x=y"}, {"C", ""}}));
  a.launch = false;
  a.standby = true;  // A standby runs in launch mode once assigned.
  EXPECT_TRUE(MakeAgentOptions(a)->cluster->launch);
}

TEST(AgentArgs, RefusesWhatMakesNoClusterAgent) {
  AgentArgs a = ClusterArgs();
  a.advertise = "";
  EXPECT_TRUE(Rejects(a, "--advertise"));
  a = ClusterArgs();
  a.launch = true;  // No trainer command: nothing executed is read from etcd.
  EXPECT_TRUE(Rejects(a, "trainer command after --"));
  a.launch = false;
  a.standby = true;
  EXPECT_TRUE(Rejects(a, "trainer command after --"));
  a = ClusterArgs();
  for (const char* bad : {"NOEQUALS", "=1"}) {
    a.env = {bad};
    EXPECT_TRUE(Rejects(a, "expected NAME=VALUE")) << bad;
  }
  a = ClusterArgs();
  a.redundancy.replicas = -1;
  EXPECT_FALSE(MakeAgentOptions(a).ok());
  a = ClusterArgs();
  a.interleave.mode = "sometimes";
  EXPECT_FALSE(MakeAgentOptions(a).ok());
}

}  // namespace
}  // namespace gemini
