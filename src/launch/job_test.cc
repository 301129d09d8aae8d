#include "launch/job.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace gemini {
namespace {

TEST(Job, ConfigForTheHostsThatJoined) {
  JobFlags f;
  f.nproc = 2;
  f.redundancy.redundancy = "rs:4+2";
  f.persist_every = 5;
  auto c = MakeJobConfig(f, 6);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->num_hosts, 6u);
  EXPECT_EQ(c->nproc_per_host, 2u);
  EXPECT_EQ(c->redundancy.ToString(), "rs:4+2");
  EXPECT_EQ(c->persist_every, 5);
  EXPECT_EQ(c->buffer_bytes, 128ull << 20);
  EXPECT_FALSE(MakeJobConfig(f, 4).ok());  // rs:4+2 needs groups of 6.
  f.interleave.mode = "sometimes";
  EXPECT_FALSE(MakeJobConfig(f, 6).ok());
}

TEST(Job, FlagArgsHandOnWhatWasGiven) {
  JobFlags f;
  f.job = "run-7";
  f.budget = "1GiB";
  f.etcd_tls.ca_file = "/ca.pem";
  const auto args = JobFlagArgs(f);
  const auto after = [&](const std::string& flag) {
    auto it = std::find(args.begin(), args.end(), flag);
    return it == args.end() || it + 1 == args.end() ? std::string("(absent)") : *(it + 1);
  };
  EXPECT_EQ(after("--rdzv-id"), "run-7");
  EXPECT_EQ(after("--budget"), "1GiB");  // As typed.
  EXPECT_EQ(after("--buffer"), "128MiB");
  EXPECT_EQ(after("--etcd-cacert"), "/ca.pem");
  EXPECT_EQ(after("--etcd-cert"), "(absent)");
  EXPECT_EQ(after("--redundancy"), "(absent)");  // Not given: each node's default.
  EXPECT_EQ(after("--replicas"), "(absent)");
}

}  // namespace
}  // namespace gemini
