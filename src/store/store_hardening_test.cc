// Store under hostile or failing conditions: sizes that overflow, Begin that
// fails, slow segment creation, crashes, readers' fds.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <nlohmann/json.hpp>

#include "store/store.h"

namespace gemini {
namespace {

using namespace std::chrono_literals;

Manifest Shard(const std::string& job, uint32_t rank, int64_t it, uint64_t bytes) {
  Manifest m;
  m.job = job;
  m.rank = rank;
  m.world_size = 1;
  m.iteration = it;
  m.chunk_size = 4096;
  m.entries.push_back({"t", Dtype::kUint8, {static_cast<int64_t>(bytes)}, 0, bytes, 0});
  m.AssignOffsets();
  return m;
}

std::string Prefix() { return "gemini-hard-" + std::to_string(getpid()); }

StoreOptions Opts(uint64_t budget = 64 << 20) {
  return StoreOptions{.budget_bytes = budget, .shm_prefix = Prefix()};
}

Status SaveOne(Store& s, uint64_t writer, const Manifest& m) {
  auto g = s.Begin(writer, m, 100ms);
  if (!g.ok()) return g.status();
  close(g->fd);
  return s.Commit(writer, m.job, m.rank, m.iteration, std::vector<uint32_t>(m.NumChunks(), 0));
}

std::vector<int64_t> Held(Store& s, const std::string& job) {
  std::vector<int64_t> out;
  for (int64_t it = 0; it < 20; ++it) {
    auto o = s.Open(job, 0, it);
    if (!o.ok()) continue;
    close(o->slot.fd);
    out.push_back(it);
  }
  return out;
}

// Finding 1: a claimed size near 2^64 wrapped the slot size to one page.
TEST(StoreHardening, SizesNear2To64AreRefusedNotWrapped) {
  EXPECT_GT(PageAlign(SIZE_MAX - 10), size_t{1} << 62);  // Saturates, never wraps to 0.
  Manifest m = Shard("j", 0, 1, 4096);
  m.entries[0].shape = {int64_t{1} << 47};
  m.entries[0].length = uint64_t{1} << 47;
  m.data_bytes = UINT64_MAX - 100;  // The piece is "inside" it.
  EXPECT_EQ(m.Validate().code(), Code::kInvalidArgument);
  Store s(Opts());
  auto g = s.Begin(1, m, 10ms);
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), Code::kInvalidArgument);
}

// Finding 5: Begin dropped the abandoned timeline's committed slots before
// the new shard had memory, even when it then failed.
TEST(StoreHardening, BeginThatFailsKeepsEveryCommittedSlot) {
  Store s(Opts(/*budget=*/1 << 20));
  ASSERT_TRUE(SaveOne(s, 1, Shard("j", 0, 5, 100000)).ok());
  ASSERT_TRUE(SaveOne(s, 1, Shard("j", 0, 6, 100000)).ok());
  // A restart at iteration 4 with a shard over the budget.
  auto g = s.Begin(2, Shard("j", 0, 4, 4 << 20), 10ms);
  ASSERT_EQ(g.status().code(), Code::kResourceExhausted);
  EXPECT_EQ(Held(s, "j"), (std::vector<int64_t>{5, 6}));
  // And when making the memory fails.
  bool fail = false;
  StoreOptions o = Opts();
  o.create_segment = [&](const std::string& name,
                         size_t size) -> Result<std::unique_ptr<ShmSegment>> {
    if (fail) return ResourceExhausted("no memory (injected)");
    return ShmSegment::Create(name, size);
  };
  Store u(o);
  ASSERT_TRUE(SaveOne(u, 1, Shard("j", 0, 5, 10000)).ok());
  ASSERT_TRUE(SaveOne(u, 1, Shard("j", 0, 6, 10000)).ok());
  fail = true;
  EXPECT_EQ(SaveOne(u, 2, Shard("j", 0, 4, 200000)).code(), Code::kResourceExhausted);
  EXPECT_EQ(Held(u, "j"), (std::vector<int64_t>{5, 6}));
  // A Begin that succeeds does drop them.
  ASSERT_TRUE(SaveOne(s, 3, Shard("j", 0, 4, 100000)).ok());
  EXPECT_EQ(Held(s, "j"), (std::vector<int64_t>{4}));
}

// Finding 12: creating (and reserving) a segment held the store's lock.
TEST(StoreHardening, SlowSegmentCreationDoesNotBlockTheStore) {
  std::promise<void> entered, release;
  auto released = release.get_future().share();
  StoreOptions o = Opts();
  bool first = true;
  o.create_segment = [&](const std::string& name,
                         size_t size) -> Result<std::unique_ptr<ShmSegment>> {
    if (first) {
      first = false;
      entered.set_value();
      released.wait();
    }
    return ShmSegment::Create(name, size);
  };
  Store s(o);
  auto begin =
      std::async(std::launch::async, [&] { return SaveOne(s, 2, Shard("j", 0, 1, 8192)); });
  entered.get_future().wait();
  // While rank 0 of "j" waits for its memory, the store answers others.
  auto others = std::async(std::launch::async, [&] {
    std::string status = s.StatusJson();
    s.SetExternalComplete("other", 1);
    return status;
  });
  ASSERT_EQ(others.wait_for(30s), std::future_status::ready) << "store blocked by creation";
  EXPECT_NE(others.get().find("\"j\""), std::string::npos);
  release.set_value();
  ASSERT_EQ(begin.wait_for(30s), std::future_status::ready);
  EXPECT_TRUE(begin.get().ok());
}

// Finding 7: segments are memfds; a crashed agent leaves nothing in /dev/shm.
TEST(StoreHardening, ACrashedStoreLeavesNothingInDevShm) {
  pid_t child = fork();
  if (child == 0) {
    Store s(Opts());
    SaveOne(s, 1, Shard("j", 0, 1, 100000));
    _exit(0);  // No destructors: a crash.
  }
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  for (const auto& e : std::filesystem::directory_iterator("/dev/shm"))
    EXPECT_EQ(e.path().filename().string().rfind(Prefix(), 0), std::string::npos) << e.path();
}

// Finding 8: Open handed readers writable fds.
TEST(StoreHardening, ReadersGetReadOnlyFds) {
  Store s(Opts());
  ASSERT_TRUE(SaveOne(s, 1, Shard("j", 0, 1, 10000)).ok());
  auto o = s.Open("j", 0, 1);
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(fcntl(o->slot.fd, F_GETFL) & O_ACCMODE, O_RDONLY);
  void* w = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, o->slot.fd, 0);
  EXPECT_EQ(w, MAP_FAILED);
  void* r = mmap(nullptr, 4096, PROT_READ, MAP_SHARED, o->slot.fd, 0);
  ASSERT_NE(r, MAP_FAILED);
  munmap(r, 4096);
  close(o->slot.fd);
}

// Finding 2 (store side): no job name can make the status JSON throw.
TEST(StoreHardening, JobNamesAreCheckedAndStatusNeverThrows) {
  Store s(Opts());
  EXPECT_EQ(SaveOne(s, 1, Shard("bad\xff", 0, 1, 100)).code(), Code::kInvalidArgument);
  EXPECT_EQ(SaveOne(s, 1, Shard("a/b", 0, 1, 100)).code(), Code::kInvalidArgument);
  s.SetExternalComplete("bad\xff\xfe", 3);  // Names from elsewhere are not checked here.
  std::string json;
  ASSERT_NO_THROW(json = s.StatusJson());
  EXPECT_FALSE(nlohmann::json::parse(json, nullptr, false).is_discarded());
}

}  // namespace
}  // namespace gemini
