#include "coord/etcd_cluster.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <sstream>

#include "coord/etcd_kv_store.h"

namespace gemini {
namespace {

using namespace std::chrono_literals;

std::vector<std::string> Split(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream ss(list);
  for (std::string e; std::getline(ss, e, ',');) out.push_back(e);
  return out;
}

TEST(EtcdClusterTest, ThreeMembersOutliveOneMembersDeath) {
  if (::access("/usr/bin/etcd", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/etcd";
  EtcdClusterOptions o;
  o.members = 3;
  auto cluster = EtcdCluster::Start(o);
  ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
  ASSERT_EQ((*cluster)->size(), 3);
  EtcdOptions eo;
  eo.endpoints = Split((*cluster)->endpoints());
  ASSERT_EQ(eo.endpoints.size(), 3u);
  EtcdKvStore kv(eo);
  ASSERT_TRUE(kv.Put("k", "before", DeadlineAfter(5s)).ok());
  auto lease = kv.LeaseGrant(2, DeadlineAfter(5s));
  ASSERT_TRUE(lease.ok()) << lease.status().ToString();
  // The member the client talks to first dies: the others keep the data,
  // the lease and the quorum, and the client moves on.
  ASSERT_TRUE((*cluster)->Kill(0).ok());
  EXPECT_EQ((*cluster)->pid(0), -1);
  Result<KeyValue> got = kv.Get("k", DeadlineAfter(10s));
  for (int i = 0; i < 50 && !got.ok(); ++i) got = kv.Get("k", DeadlineAfter(10s));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->value, "before");
  EXPECT_TRUE(kv.LeaseKeepAlive(lease->id, DeadlineAfter(10s)).ok());
  EXPECT_TRUE(kv.Put("k", "after", DeadlineAfter(10s)).ok());
}

}  // namespace
}  // namespace gemini
