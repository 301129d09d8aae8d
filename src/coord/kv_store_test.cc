// Conformance suite: every KvStore backend must pass the same tests.
// Instantiated over FakeKvStore, EtcdKvStore (JSON gateway) and EtcdGrpcKvStore
// (native gRPC); the etcd instantiations start one etcd each (EtcdProcess: loopback, free port,
// temp data dir) for the suite and kills it in TearDownTestSuite, and is skipped when /usr/bin/etcd
// is absent. Each test works under its own key prefix, so tests never see each other's keys on the
// shared server; only relative revisions are asserted.
#include "coord/kv_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "coord/etcd_grpc_kv_store.h"
#include "coord/etcd_kv_store.h"
#include "coord/etcd_process.h"
#include "coord/fake_kv_store.h"
#include "coord/lease_keeper.h"
#include "coord/prefix_kv_store.h"

namespace gemini {
namespace {

using namespace std::chrono_literals;

constexpr char kEtcdBinary[] = "/usr/bin/etcd";

Deadline Soon() { return DeadlineAfter(5s); }

// Polls `cond` every 20 ms until it holds or `limit` passes.
bool Eventually(const std::function<bool()>& cond, std::chrono::milliseconds limit = 15s) {
  const Deadline end = DeadlineAfter(limit);
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return cond();
}

// Collects events from `w` until `n` arrived or the deadline passed.
std::vector<WatchEvent> PollN(Watch& w, size_t n, std::chrono::milliseconds limit = 15s) {
  std::vector<WatchEvent> all;
  const Deadline end = DeadlineAfter(limit);
  while (all.size() < n && std::chrono::steady_clock::now() < end) {
    Result<std::vector<WatchEvent>> got = w.Poll(end);
    if (!got.ok()) {
      ADD_FAILURE() << "watch broke: " << got.status().ToString();
      break;
    }
    all.insert(all.end(), got->begin(), got->end());
  }
  return all;
}

enum class BackendKind { kFake, kEtcd, kEtcdGrpc };

class KvStoreConformance : public ::testing::TestWithParam<BackendKind> {
 public:
  static void TearDownTestSuite() { etcd_.reset(); }

 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    prefix_ = std::string("/conformance/") + info->name() + "/";
    if (GetParam() == BackendKind::kFake) {
      base_ = std::make_shared<FakeKvStore>();
    } else {
      if (::access(kEtcdBinary, X_OK) != 0) GTEST_SKIP() << kEtcdBinary << " not installed";
      if (etcd_ == nullptr) {
        Result<std::unique_ptr<EtcdProcess>> p = EtcdProcess::Start(EtcdProcessOptions());
        ASSERT_TRUE(p.ok()) << p.status().ToString();
        etcd_ = std::move(p).value();
      }
      EtcdOptions options;
      options.endpoints = {etcd_->endpoint()};
      if (GetParam() == BackendKind::kEtcd)
        base_ = std::make_shared<EtcdKvStore>(options);
      else
        base_ = std::make_shared<EtcdGrpcKvStore>(options);
    }
    ASSERT_TRUE(base_->DeletePrefix(prefix_, Soon()).ok());
    kv_ = std::make_shared<PrefixKvStore>(base_, prefix_);
  }

  static std::unique_ptr<EtcdProcess> etcd_;  // shared by the etcd tests of one suite
  std::string prefix_;
  std::shared_ptr<KvStore> base_;
  std::shared_ptr<KvStore> kv_;  // base_ under prefix_
};

std::unique_ptr<EtcdProcess> KvStoreConformance::etcd_;

TEST_P(KvStoreConformance, PutGetKeepsBytesAndRevisions) {
  const std::string key("k\0\xff\x01", 4), value("v\0\xfe\n\"", 5);
  Result<int64_t> r1 = kv_->Put(key, value, Soon());
  ASSERT_TRUE(r1.ok()) << r1.status().ToString();
  Result<KeyValue> got = kv_->Get(key, Soon());
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->key, key);
  EXPECT_EQ(got->value, value);
  EXPECT_EQ(got->create_revision, *r1);
  EXPECT_EQ(got->mod_revision, *r1);
  EXPECT_EQ(got->version, 1);
  EXPECT_EQ(got->lease, kNoLease);

  Result<int64_t> r2 = kv_->Put(key, "", Soon());
  ASSERT_TRUE(r2.ok());
  EXPECT_GT(*r2, *r1);
  got = kv_->Get(key, Soon());
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->value, "");
  EXPECT_EQ(got->create_revision, *r1);
  EXPECT_EQ(got->mod_revision, *r2);
  EXPECT_EQ(got->version, 2);
}

TEST_P(KvStoreConformance, GetMissingKeyIsNotFound) {
  Result<KeyValue> got = kv_->Get("absent", Soon());
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), Code::kNotFound);
}

TEST_P(KvStoreConformance, GetPrefixIsSortedAndBounded) {
  for (const char* k : {"a/2", "b", "a/1", "ab", "a/3", "a"}) {
    ASSERT_TRUE(kv_->Put(k, std::string("v") + k, Soon()).ok());
  }
  Result<RangeResult> r = kv_->GetPrefix("a/", Soon());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->kvs.size(), 3u);
  EXPECT_EQ(r->kvs[0].key, "a/1");
  EXPECT_EQ(r->kvs[1].key, "a/2");
  EXPECT_EQ(r->kvs[2].key, "a/3");
  EXPECT_EQ(r->kvs[2].value, "va/3");
  EXPECT_GE(r->revision, r->kvs[2].mod_revision);

  Result<RangeResult> all = kv_->GetPrefix("", Soon());
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->kvs.size(), 6u);
}

TEST_P(KvStoreConformance, DeleteCountsKeys) {
  for (const char* k : {"d/1", "d/2", "d/3", "e"}) ASSERT_TRUE(kv_->Put(k, "x", Soon()).ok());
  Result<int64_t> one = kv_->Delete("e", Soon());
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(*one, 1);
  Result<int64_t> none = kv_->Delete("e", Soon());
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, 0);
  Result<int64_t> three = kv_->DeletePrefix("d/", Soon());
  ASSERT_TRUE(three.ok());
  EXPECT_EQ(*three, 3);
  Result<RangeResult> left = kv_->GetPrefix("", Soon());
  ASSERT_TRUE(left.ok());
  EXPECT_TRUE(left->kvs.empty());
}

TEST_P(KvStoreConformance, CreateIfAbsentCreatesOnce) {
  Result<bool> first = kv_->CreateIfAbsent("root", "agent-1", Soon());
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_TRUE(*first);
  Result<bool> second = kv_->CreateIfAbsent("root", "agent-2", Soon());
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(*second);
  EXPECT_EQ(kv_->Get("root", Soon())->value, "agent-1");
}

TEST_P(KvStoreConformance, CompareAndSwapValue) {
  Result<bool> missing = kv_->CompareAndSwapValue("c", "", "1", Soon());
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(*missing) << "a value compare on a missing key must fail";
  ASSERT_TRUE(kv_->Put("c", "1", Soon()).ok());
  Result<bool> wrong = kv_->CompareAndSwapValue("c", "0", "2", Soon());
  ASSERT_TRUE(wrong.ok());
  EXPECT_FALSE(*wrong);
  Result<bool> right = kv_->CompareAndSwapValue("c", "1", "2", Soon());
  ASSERT_TRUE(right.ok());
  EXPECT_TRUE(*right);
  EXPECT_EQ(kv_->Get("c", Soon())->value, "2");
}

TEST_P(KvStoreConformance, CompareAndSwapRevision) {
  Result<bool> create = kv_->CompareAndSwapRevision("complete", 0, "5", Soon());
  ASSERT_TRUE(create.ok());
  EXPECT_TRUE(*create) << "mod_revision 0 means absent";
  Result<KeyValue> kv = kv_->Get("complete", Soon());
  ASSERT_TRUE(kv.ok());
  Result<bool> swap = kv_->CompareAndSwapRevision("complete", kv->mod_revision, "6", Soon());
  ASSERT_TRUE(swap.ok());
  EXPECT_TRUE(*swap);
  Result<bool> stale = kv_->CompareAndSwapRevision("complete", kv->mod_revision, "7", Soon());
  ASSERT_TRUE(stale.ok());
  EXPECT_FALSE(*stale);
  EXPECT_EQ(kv_->Get("complete", Soon())->value, "6");
}

TEST_P(KvStoreConformance, TxnRunsOneBranchAtOneRevision) {
  ASSERT_TRUE(kv_->Put("x", "1", Soon()).ok());
  Result<TxnResult> fail = kv_->Txn({Compare::ValueEquals("x", "2")}, {TxnOp::Put("y", "never")},
                                    {TxnOp::Get("x")}, Soon());
  ASSERT_TRUE(fail.ok()) << fail.status().ToString();
  EXPECT_FALSE(fail->succeeded);
  ASSERT_EQ(fail->gets.size(), 1u);
  ASSERT_EQ(fail->gets[0].kvs.size(), 1u);
  EXPECT_EQ(fail->gets[0].kvs[0].key, "x");
  EXPECT_EQ(fail->gets[0].kvs[0].value, "1");
  EXPECT_EQ(kv_->Get("y", Soon()).status().code(), Code::kNotFound);

  Compare newer;
  newer.key = "x";
  newer.target = Compare::Target::kVersion;
  newer.op = Compare::Op::kGreater;
  newer.number = 0;
  Result<TxnResult> ok = kv_->Txn({Compare::ValueEquals("x", "1"), newer},
                                  {TxnOp::Put("y", "2"), TxnOp::Delete("x")}, {}, Soon());
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_TRUE(ok->succeeded);
  Result<KeyValue> y = kv_->Get("y", Soon());
  ASSERT_TRUE(y.ok());
  EXPECT_EQ(y->mod_revision, ok->revision);
  EXPECT_EQ(kv_->Get("x", Soon()).status().code(), Code::kNotFound);
}

TEST_P(KvStoreConformance, TxnRejectsDuplicateKeys) {
  Result<TxnResult> r = kv_->Txn({}, {TxnOp::Put("dup", "1"), TxnOp::Put("dup", "2")}, {}, Soon());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
}

TEST_P(KvStoreConformance, ConcurrentCreateIfAbsentHasOneWinner) {
  std::atomic<int> winners{0}, errors{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&, i] {
      Result<bool> r = kv_->CreateIfAbsent("leader", std::to_string(i), Soon());
      if (!r.ok()) errors++;
      if (r.ok() && *r) winners++;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(winners.load(), 1);
}

TEST_P(KvStoreConformance, ConcurrentCasIncrementsLoseNothing) {
  ASSERT_TRUE(kv_->Put("counter", "0", Soon()).ok());
  constexpr int kThreads = 4, kEach = 8;
  std::vector<std::thread> threads;
  std::atomic<int> errors{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int done = 0; done < kEach;) {
        Result<KeyValue> cur = kv_->Get("counter", Soon());
        if (!cur.ok()) {
          errors++;
          return;
        }
        std::string next = std::to_string(std::stoi(cur->value) + 1);
        Result<bool> swapped =
            kv_->CompareAndSwapRevision("counter", cur->mod_revision, next, Soon());
        if (!swapped.ok()) {
          errors++;
          return;
        }
        if (*swapped) ++done;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(kv_->Get("counter", Soon())->value, std::to_string(kThreads * kEach));
}

TEST_P(KvStoreConformance, LeaseAttachKeepAliveRevoke) {
  Result<LeaseInfo> lease = kv_->LeaseGrant(30, Soon());
  ASSERT_TRUE(lease.ok()) << lease.status().ToString();
  EXPECT_NE(lease->id, kNoLease);
  EXPECT_GE(lease->ttl_seconds, 30);
  ASSERT_TRUE(kv_->Put("member/1", "host-1", Soon(), lease->id).ok());
  ASSERT_TRUE(kv_->Put("member/2", "host-2", Soon(), lease->id).ok());
  EXPECT_EQ(kv_->Get("member/1", Soon())->lease, lease->id);
  Result<int64_t> ttl = kv_->LeaseKeepAlive(lease->id, Soon());
  ASSERT_TRUE(ttl.ok()) << ttl.status().ToString();
  EXPECT_GT(*ttl, 0);

  ASSERT_TRUE(kv_->LeaseRevoke(lease->id, Soon()).ok());
  EXPECT_EQ(kv_->Get("member/1", Soon()).status().code(), Code::kNotFound);
  EXPECT_EQ(kv_->Get("member/2", Soon()).status().code(), Code::kNotFound);
  EXPECT_EQ(kv_->LeaseKeepAlive(lease->id, Soon()).status().code(), Code::kNotFound);
  EXPECT_EQ(kv_->LeaseRevoke(lease->id, Soon()).code(), Code::kNotFound);
}

TEST_P(KvStoreConformance, PutWithUnknownLeaseIsNotFound) {
  Result<int64_t> r = kv_->Put("k", "v", Soon(), /*lease=*/0x7fff0001);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kNotFound);
  EXPECT_EQ(kv_->Get("k", Soon()).status().code(), Code::kNotFound);
}

TEST_P(KvStoreConformance, LeaseExpiryDeletesKeysAndWatchersSeeIt) {
  Result<LeaseInfo> lease = kv_->LeaseGrant(1, Soon());
  ASSERT_TRUE(lease.ok()) << lease.status().ToString();
  ASSERT_TRUE(kv_->Put("hb/agent", "alive", Soon(), lease->id).ok());
  ASSERT_TRUE(kv_->Put("hb/other", "no lease", Soon()).ok());
  Result<std::unique_ptr<Watch>> w = kv_->WatchPrefix("hb/", 0, Soon());
  ASSERT_TRUE(w.ok()) << w.status().ToString();

  std::vector<WatchEvent> events = PollN(**w, 1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, WatchEvent::Type::kDelete);
  EXPECT_EQ(events[0].kv.key, "hb/agent");
  EXPECT_EQ(kv_->Get("hb/agent", Soon()).status().code(), Code::kNotFound);
  EXPECT_TRUE(kv_->Get("hb/other", Soon()).ok());
  EXPECT_EQ(kv_->LeaseKeepAlive(lease->id, Soon()).status().code(), Code::kNotFound);
}

TEST_P(KvStoreConformance, WatchSeesPutsAndDeletesInOrder) {
  Result<std::unique_ptr<Watch>> w = kv_->WatchPrefix("w/", 0, Soon());
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  ASSERT_TRUE(kv_->Put("w/1", "a", Soon()).ok());
  ASSERT_TRUE(kv_->Put("elsewhere", "not watched", Soon()).ok());
  ASSERT_TRUE(kv_->Put("w/2", "b", Soon()).ok());
  ASSERT_TRUE(kv_->Delete("w/1", Soon()).ok());

  std::vector<WatchEvent> ev = PollN(**w, 3);
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_EQ(ev[0].type, WatchEvent::Type::kPut);
  EXPECT_EQ(ev[0].kv.key, "w/1");
  EXPECT_EQ(ev[0].kv.value, "a");
  EXPECT_EQ(ev[1].kv.key, "w/2");
  EXPECT_EQ(ev[1].kv.version, 1);
  EXPECT_EQ(ev[2].type, WatchEvent::Type::kDelete);
  EXPECT_EQ(ev[2].kv.key, "w/1");
  EXPECT_LT(ev[0].kv.mod_revision, ev[1].kv.mod_revision);
  EXPECT_LT(ev[1].kv.mod_revision, ev[2].kv.mod_revision);
}

TEST_P(KvStoreConformance, WatchFromOldRevisionReplaysHistory) {
  Result<int64_t> first = kv_->Put("h", "1", Soon());
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(kv_->Put("h", "2", Soon()).ok());
  Result<std::unique_ptr<Watch>> w = kv_->WatchKey("h", /*prefix=*/false, *first, Soon());
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  ASSERT_TRUE(kv_->Put("h2", "not this key", Soon()).ok());
  ASSERT_TRUE(kv_->Put("h", "3", Soon()).ok());
  std::vector<WatchEvent> ev = PollN(**w, 3);
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_EQ(ev[0].kv.value, "1");
  EXPECT_EQ(ev[1].kv.value, "2");
  EXPECT_EQ(ev[2].kv.value, "3");
  EXPECT_EQ(ev[2].kv.key, "h");
}

TEST_P(KvStoreConformance, WatchPollReturnsEmptyAtDeadline) {
  Result<std::unique_ptr<Watch>> w = kv_->WatchPrefix("quiet/", 0, Soon());
  ASSERT_TRUE(w.ok());
  Result<std::vector<WatchEvent>> got = (*w)->Poll(DeadlineAfter(50ms));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(got->empty());
}

TEST_P(KvStoreConformance, WatchCancelWakesPoller) {
  Result<std::unique_ptr<Watch>> w = kv_->WatchPrefix("c/", 0, Soon());
  ASSERT_TRUE(w.ok());
  Status polled;
  std::thread poller([&] { polled = (*w)->Poll(DeadlineAfter(60s)).status(); });
  (*w)->Cancel();
  poller.join();
  EXPECT_EQ(polled.code(), Code::kAborted);
}

TEST_P(KvStoreConformance, PrefixStoresAreIsolated) {
  PrefixKvStore job_a(base_, prefix_ + "jobA/");
  PrefixKvStore job_b(base_, prefix_ + "jobB/");
  ASSERT_TRUE(job_a.Put("complete", "7", Soon()).ok());
  EXPECT_EQ(job_b.Get("complete", Soon()).status().code(), Code::kNotFound);
  Result<KeyValue> raw = base_->Get(prefix_ + "jobA/complete", Soon());
  ASSERT_TRUE(raw.ok());
  EXPECT_EQ(raw->value, "7");
  Result<RangeResult> a = job_a.GetPrefix("", Soon());
  ASSERT_TRUE(a.ok());
  ASSERT_EQ(a->kvs.size(), 1u);
  EXPECT_EQ(a->kvs[0].key, "complete");
  EXPECT_EQ(*job_b.DeletePrefix("", Soon()), 0);
  EXPECT_TRUE(job_a.Get("complete", Soon()).ok());
}

TEST_P(KvStoreConformance, PassedDeadlineIsDeadlineExceeded) {
  const Deadline past = std::chrono::steady_clock::now() - 1ms;
  EXPECT_EQ(kv_->Put("k", "v", past).status().code(), Code::kDeadlineExceeded);
  EXPECT_EQ(kv_->Get("k", past).status().code(), Code::kDeadlineExceeded);
}

TEST_P(KvStoreConformance, LeaseKeeperKeepsLeaseAliveUntilLost) {
  Result<LeaseInfo> lease = kv_->LeaseGrant(1, Soon());
  ASSERT_TRUE(lease.ok()) << lease.status().ToString();
  ASSERT_TRUE(kv_->Put("agent", "up", Soon(), lease->id).ok());
  std::atomic<int> lost_calls{0};
  LeaseKeeper keeper(kv_, *lease, [&](const Status&) { lost_calls++; });
  // Well past the TTL, the key is still there because the keeper refreshes it.
  std::this_thread::sleep_for(std::chrono::seconds(lease->ttl_seconds) + 1500ms);
  EXPECT_TRUE(keeper.status().ok());
  EXPECT_TRUE(kv_->Get("agent", Soon()).ok());
  // Revoked behind its back: the keeper notices and reports the loss once.
  ASSERT_TRUE(kv_->LeaseRevoke(lease->id, Soon()).ok());
  EXPECT_TRUE(Eventually([&] { return !keeper.status().ok(); }));
  EXPECT_EQ(keeper.status().code(), Code::kAborted);
  keeper.Stop();
  EXPECT_EQ(lost_calls.load(), 1);
}

INSTANTIATE_TEST_SUITE_P(Backends, KvStoreConformance,
                         ::testing::Values(BackendKind::kFake, BackendKind::kEtcd,
                                           BackendKind::kEtcdGrpc),
                         [](const ::testing::TestParamInfo<BackendKind>& info) {
                           return info.param == BackendKind::kFake   ? "Fake"
                                  : info.param == BackendKind::kEtcd ? "EtcdGateway"
                                                                     : "EtcdGrpc";
                         });

}  // namespace
}  // namespace gemini
