#include "persist/shard_file.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <future>

#include "common/crc32c.h"
#include "common/wire.h"
#include "persist/catalog.h"
#include "persist/fault_env.h"
#include "persist/layout.h"
#include "persist/test_util.h"

namespace gemini {
namespace {

using persist_test::AppendLogEnv;
using persist_test::At;
using persist_test::IterationsOf;
using persist_test::MakeShard;
using persist_test::Names;
using persist_test::ReadBytes;
using persist_test::TempDir;
using persist_test::TestShard;
using persist_test::WriteBytes;

PersistEnv* Posix() { return PersistEnv::Posix(); }

Status Write(PersistEnv* env, const std::string& root, const TestShard& s, int64_t epoch = 0) {
  return WriteShard(env, root, epoch, s.manifest, s.crcs, s.data.data());
}

std::string PathOf(const std::string& root, const TestShard& s, int64_t epoch = 0) {
  return ShardPath(root, s.manifest.job, At(s.manifest.iteration, epoch), s.manifest.rank);
}

ShardId IdOf(const TestShard& s, int64_t epoch = 0) {
  return {s.manifest.job, s.manifest.rank, At(s.manifest.iteration, epoch), s.manifest.world_size};
}

bool HasTemp(const std::string& dir) {
  for (const auto& name : Names(dir))
    if (name.find(".tmp-") != std::string::npos) return true;
  return false;
}

// The shard at `path` reads back as exactly `s`.
void ExpectReadsBack(const std::string& path, const TestShard& s) {
  auto got = ReadShard(Posix(), path);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->data, s.data);
  EXPECT_EQ(got->crcs, s.crcs);
  EXPECT_EQ(got->manifest.Encode(), s.manifest.Encode());
}

TEST(PersistShardFile, RoundTripIsBitIdentical) {
  TempDir dir;
  TestShard s = MakeShard("job", 100, 1, 2);
  ASSERT_TRUE(Write(Posix(), dir.path(), s).ok());
  std::string path = dir.path() + "/job/iter-000000000100-epoch-0/rank-1.gshard";
  ASSERT_EQ(PathOf(dir.path(), s), path);
  ExpectReadsBack(path, s);
  std::vector<uint8_t> buf(s.data.size() + 10, 0xAB);
  auto info = ReadShardInto(Posix(), path, buf.data(), buf.size());
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_TRUE(std::equal(s.data.begin(), s.data.end(), buf.begin()));
  EXPECT_EQ(buf.back(), 0xAB);  // Nothing written past the data.
  auto mine = ReadShardFor(Posix(), dir.path(), IdOf(s));
  ASSERT_TRUE(mine.ok()) << mine.status().ToString();
  EXPECT_EQ(mine->data, s.data);
  EXPECT_EQ(Names(DirName(path)), std::vector<std::string>{"rank-1.gshard"});
}

TEST(PersistShardFile, EmptyAndMultiPieceShardsRoundTrip) {
  TempDir dir;
  TestShard empty = MakeShard("job", 1, 0, 1, 0);
  ASSERT_TRUE(Write(Posix(), dir.path(), empty).ok());
  ExpectReadsBack(PathOf(dir.path(), empty), empty);
  TestShard big = MakeShard("job", 2, 0, 1, 40 * 4096 + 7);
  ShardWriteOptions small_pieces;
  small_pieces.piece_bytes = 3 * 4096;  // Many Appends.
  ASSERT_TRUE(
      WriteShard(Posix(), dir.path(), 0, big.manifest, big.crcs, big.data.data(), small_pieces)
          .ok());
  ExpectReadsBack(PathOf(dir.path(), big), big);
}

TEST(PersistShardFile, CorruptedDataByteIsDataLossNamingFileAndChunk) {
  TempDir dir;
  TestShard s = MakeShard("job", 7, 0, 1);
  ASSERT_TRUE(Write(Posix(), dir.path(), s).ok());
  std::string path = PathOf(dir.path(), s), bytes = ReadBytes(path);
  uint64_t data_start = bytes.size() - s.data.size();
  bytes[data_start + 2 * 4096 + 17] ^= 0x10;  // Chunk 2.
  WriteBytes(path, bytes);
  auto got = ReadShard(Posix(), path);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), Code::kDataLoss);
  EXPECT_NE(got.status().message().find(path), std::string::npos) << got.status().ToString();
  EXPECT_NE(got.status().message().find("chunk 2"), std::string::npos) << got.status().ToString();
}

TEST(PersistShardFile, EveryFlippedByteIsAnError) {
  TempDir dir;
  TestShard s = MakeShard("job", 7, 0, 1, 4096 + 5);  // Two chunks, the last one short.
  ASSERT_TRUE(Write(Posix(), dir.path(), s).ok());
  std::string path = PathOf(dir.path(), s), good = ReadBytes(path);
  persist_test::BytesEnv env(Posix(), path);
  for (size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] ^= 0x01;
    env.Set(bad);
    auto got = ReadShard(&env, path);
    ASSERT_FALSE(got.ok()) << "flipped byte " << i;
    Code c = got.status().code();
    EXPECT_TRUE(c == Code::kDataLoss || c == Code::kInvalidArgument) << got.status().ToString();
  }
}

TEST(PersistShardFile, TruncatedAtEveryLengthOrExtendedIsAnError) {
  TempDir dir;
  TestShard s = MakeShard("job", 7, 0, 1);
  ASSERT_TRUE(Write(Posix(), dir.path(), s).ok());
  std::string path = PathOf(dir.path(), s), good = ReadBytes(path);
  persist_test::BytesEnv env(Posix(), path);
  for (size_t n = 0; n < good.size(); ++n) {
    env.Set(good.substr(0, n));
    auto got = ReadShard(&env, path);
    ASSERT_FALSE(got.ok()) << "truncated to " << n;
    EXPECT_EQ(got.status().code(), Code::kDataLoss) << got.status().ToString();
    EXPECT_NE(got.status().message().find(path), std::string::npos);
  }
  WriteBytes(path, good + "x");
  EXPECT_EQ(ReadShard(Posix(), path).status().code(), Code::kDataLoss);
  EXPECT_EQ(ReadShardInfo(Posix(), path).status().code(), Code::kDataLoss);
}

TEST(PersistShardFile, OtherFilesAreInvalidArgument) {
  TempDir dir;
  std::string path = dir.path() + "/not-a-shard";
  WriteBytes(path, std::string(100, 'z'));
  auto got = ReadShard(Posix(), path);
  EXPECT_EQ(got.status().code(), Code::kInvalidArgument);
  EXPECT_NE(got.status().message().find("not a Gemini shard"), std::string::npos);
}

TEST(PersistShardFile, ReadShardForChecksTheShardsIdentity) {
  TempDir dir;
  TestShard r0 = MakeShard("job", 5, 0, 2), r1 = MakeShard("job", 5, 1, 2);
  ASSERT_TRUE(Write(Posix(), dir.path(), r1).ok());
  std::filesystem::copy_file(PathOf(dir.path(), r1), PathOf(dir.path(), r0));
  EXPECT_EQ(ReadShardFor(Posix(), dir.path(), IdOf(r0)).status().code(), Code::kInvalidArgument);
  std::vector<uint8_t> small(10);
  EXPECT_EQ(
      ReadShardInto(Posix(), PathOf(dir.path(), r1), small.data(), small.size()).status().code(),
      Code::kInvalidArgument);
}

// Every field of the identity is checked against what the reader asked for,
// even for an intact file under the asked-for name, before any data is read.
TEST(PersistShardFile, ReadersRefuseAnotherJobRankIterationOrEpoch) {
  TempDir dir;
  TestShard s = MakeShard("job", 5, 1, 2);
  ASSERT_TRUE(Write(Posix(), dir.path(), s, /*epoch=*/2).ok());
  const ShardId right = IdOf(s, 2);
  ASSERT_TRUE(ReadShardFor(Posix(), dir.path(), right).ok());
  struct Case {
    ShardId want;
    const char* differs;
  } cases[] = {
      {{"other", 1, At(5, 2), 2}, "(job differs)"},
      {{"job", 0, At(5, 2), 2}, "(rank differs)"},
      {{"job", 1, At(6, 2), 2}, "(iteration differs)"},
      {{"job", 1, At(5, 3), 2}, "(epoch (timeline) differs)"},
      {{"job", 1, At(5, 2), 4}, "(world size differs)"},
      {{"job", 0, At(6, 1), 2}, "(rank, iteration, epoch (timeline) differ)"},
  };
  for (const Case& c : cases) {
    std::string path = ShardPath(dir.path(), c.want.job, c.want.at, c.want.rank);
    if (path != PathOf(dir.path(), s, 2)) {
      std::filesystem::create_directories(DirName(path));
      std::filesystem::copy_file(PathOf(dir.path(), s, 2), path,
                                 std::filesystem::copy_options::overwrite_existing);
    }
    auto loaded = ReadShardFor(Posix(), dir.path(), c.want);
    EXPECT_EQ(loaded.status().code(), Code::kInvalidArgument) << c.differs;
    EXPECT_NE(loaded.status().message().find(c.differs), std::string::npos)
        << loaded.status().ToString();
    EXPECT_NE(loaded.status().message().find(path), std::string::npos);
    EXPECT_EQ(ReadShardInfoFor(Posix(), dir.path(), c.want).status().code(),
              Code::kInvalidArgument);
    std::vector<uint8_t> buf(s.data.size(), 0xAB);
    EXPECT_EQ(ReadShardIntoFor(Posix(), dir.path(), c.want, buf.data(), buf.size()).status().code(),
              Code::kInvalidArgument);
    EXPECT_EQ(buf, std::vector<uint8_t>(s.data.size(), 0xAB)) << "data read before the check";
  }
  // Nothing under another timeline's name: NotFound naming the file.
  ShardId absent{"job", 1, At(5, 7), 2};
  auto none = ReadShardFor(Posix(), dir.path(), absent);
  EXPECT_EQ(none.status().code(), Code::kNotFound);
  EXPECT_NE(none.status().message().find("iter-000000000005-epoch-7/rank-1.gshard"),
            std::string::npos)
      << none.status().ToString();
  std::vector<uint8_t> buf(s.data.size());
  auto info = ReadShardIntoFor(Posix(), dir.path(), right, buf.data(), buf.size());
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->epoch, 2);
  EXPECT_EQ(buf, s.data);
}

// A version-1 file (no epoch in its 40-byte header) is refused by name.
TEST(PersistShardFile, OldVersionFilesAreUnsupported) {
  TempDir dir;
  TestShard s = MakeShard("job", 5, 0, 1);
  ASSERT_TRUE(Write(Posix(), dir.path(), s).ok());
  std::string path = PathOf(dir.path(), s), v2 = ReadBytes(path);
  uint64_t manifest_bytes = 0, num_chunks = 0, data_bytes = 0;
  std::memcpy(&manifest_bytes, v2.data() + 16, 8);
  std::memcpy(&num_chunks, v2.data() + 24, 8);
  std::memcpy(&data_bytes, v2.data() + 32, 8);
  Writer w;
  w.PutU32(0x46485347);
  w.PutU32(1);
  w.PutU64(manifest_bytes);
  w.PutU64(num_chunks);
  w.PutU64(data_bytes);
  w.PutU32(0);
  w.PutU32(Crc32c(w.str().data(), w.str().size()));
  WriteBytes(path, w.Take() + v2.substr(kShardHeaderBytes));
  for (const Status& st :
       {ReadShard(Posix(), path).status(), ReadShardFor(Posix(), dir.path(), IdOf(s)).status(),
        MarkComplete(Posix(), dir.path(), "job", At(5), 1)}) {
    EXPECT_EQ(st.code(), Code::kInvalidArgument) << st.ToString();
    EXPECT_NE(st.message().find("unsupported shard file version 1"), std::string::npos)
        << st.ToString();
  }
}

// The data goes to the file straight from the caller's memory, a bounded
// piece at a time: no Append carries more than piece_bytes, and every data
// byte appended lies inside the caller's buffer, so no copy of the shard
// (let alone one of its size) is made on the way.
TEST(PersistShardFile, WritesStreamFromTheCallersMemory) {
  TempDir dir;
  TestShard s = MakeShard("job", 9, 0, 1, 64 * 4096 + 123);
  AppendLogEnv env(Posix());
  ShardWriteOptions o;
  o.piece_bytes = 4 * 4096;
  ASSERT_TRUE(WriteShard(&env, dir.path(), 0, s.manifest, s.crcs, s.data.data(), o).ok());
  auto calls = env.calls();
  ASSERT_GE(calls.size(), 2u);
  const uint8_t* begin = s.data.data();
  const uint8_t* end = begin + s.data.size();
  uint64_t data_bytes = 0;
  for (size_t i = 1; i < calls.size(); ++i) {  // calls[0]: header, manifest, CRC list.
    EXPECT_LE(calls[i].n, o.piece_bytes) << "append " << i;
    EXPECT_TRUE(calls[i].p >= begin && calls[i].p + calls[i].n <= end)
        << "append " << i << " is not from the caller's buffer";
    data_bytes += calls[i].n;
  }
  EXPECT_LT(calls[0].n, s.data.size() / 8);  // The prefix: metadata only.
  EXPECT_EQ(data_bytes, s.data.size());
  ExpectReadsBack(PathOf(dir.path(), s), s);
}

// Two hosts write the same shard name into one directory at once (each is
// its own env; host A is stalled mid-write): each writes its own temp file,
// neither disturbs the other's, and the last rename wins with a whole file.
TEST(PersistShardFile, TwoWritersOfOneNameNeverClobberEachOther) {
  TempDir dir;
  TestShard a = MakeShard("job", 4, 0, 1, 16 * 4096, /*seed=*/1);
  TestShard b = MakeShard("job", 4, 0, 1, 16 * 4096, /*seed=*/2);
  ASSERT_NE(a.data, b.data);
  FaultInjectionEnv host_a(Posix()), host_b(Posix());
  host_a.HoldWrites();
  ShardWriteOptions o;
  o.piece_bytes = 4096;
  auto writing_a = std::async(std::launch::async, [&] {
    return WriteShard(&host_a, dir.path(), 0, a.manifest, a.crcs, a.data.data(), o);
  });
  ASSERT_TRUE(host_a.WaitUntilHeld(std::chrono::seconds(30)));
  ASSERT_TRUE(WriteShard(&host_b, dir.path(), 0, b.manifest, b.crcs, b.data.data(), o).ok());
  ExpectReadsBack(PathOf(dir.path(), b), b);
  EXPECT_TRUE(HasTemp(IterationDir(dir.path(), "job", At(4))));  // A's, still being written.
  host_a.ReleaseWrites();
  Status st = writing_a.get();
  ASSERT_TRUE(st.ok()) << st.ToString();  // A's own size check saw all of its bytes.
  ExpectReadsBack(PathOf(dir.path(), a), a);
  EXPECT_EQ(Names(IterationDir(dir.path(), "job", At(4))),
            std::vector<std::string>{"rank-0.gshard"});
}

TEST(PersistShardFile, RefusesDataThatNoLongerMatchesItsCrcs) {
  TempDir dir;
  TestShard s = MakeShard("job", 3, 0, 1);
  s.data[4096 + 1] ^= 1;  // Memory changed after capture, in chunk 1.
  Status st = Write(Posix(), dir.path(), s);
  EXPECT_EQ(st.code(), Code::kDataLoss);
  EXPECT_NE(st.message().find("chunk 1"), std::string::npos) << st.ToString();
  EXPECT_TRUE(Names(IterationDir(dir.path(), "job", At(3))).empty());  // Neither file nor temp.
}

TEST(PersistShardFile, RejectsBadArguments) {
  TempDir dir;
  TestShard s = MakeShard("job", 3, 0, 1);
  s.crcs.pop_back();
  EXPECT_EQ(Write(Posix(), dir.path(), s).code(), Code::kInvalidArgument);
  TestShard bad_job = MakeShard("../escape", 3, 0, 1);
  EXPECT_EQ(Write(Posix(), dir.path(), bad_job).code(), Code::kInvalidArgument);
}

TEST(PersistShardFile, StepsAreWriteSyncRenameSyncDir) {
  TempDir dir;
  FaultInjectionEnv env(Posix());
  TestShard s = MakeShard("job", 3, 0, 1);
  ASSERT_TRUE(Write(&env, dir.path(), s).ok());
  std::vector<std::string> log = env.Log();
  std::string final_path = PathOf(dir.path(), s);
  auto find = [&](const std::string& prefix) {
    for (size_t i = 0; i < log.size(); ++i)
      if (log[i].rfind(prefix, 0) == 0) return static_cast<int>(i);
    return -1;
  };
  int create = find("create " + final_path + ".tmp-"), sync = find("sync " + final_path);
  int rename = find("rename " + final_path + ".tmp-"),
      syncdir = find("syncdir " + DirName(final_path));
  ASSERT_GE(create, 0);
  EXPECT_LT(create, sync);
  EXPECT_LT(sync, rename);
  EXPECT_LT(rename, syncdir);
  EXPECT_EQ(syncdir, static_cast<int>(log.size()) - 1);
}

TEST(PersistShardFile, FaultsLeaveNoFileAndNoTemp) {
  TestShard s = MakeShard("job", 3, 0, 1);
  for (int fault = 0; fault < 3; ++fault) {
    TempDir dir;
    FaultInjectionEnv env(Posix());
    if (fault == 0) env.SetShortWrites(true);
    if (fault == 1) env.SetSyncFailure(true);
    if (fault == 2) env.SetSpaceLimit(5000);
    Status st = Write(&env, dir.path(), s);
    EXPECT_FALSE(st.ok()) << "fault " << fault;
    if (fault == 2) {
      EXPECT_EQ(st.code(), Code::kResourceExhausted) << st.ToString();
    }
    EXPECT_TRUE(Names(IterationDir(dir.path(), "job", At(3))).empty()) << "fault " << fault;
  }
}

TEST(PersistShardFile, NoSpaceLeavesOlderIterationsIntact) {
  TempDir dir;
  TestShard old = MakeShard("job", 100, 0, 1), next = MakeShard("job", 200, 0, 1);
  ASSERT_TRUE(Write(Posix(), dir.path(), old).ok());
  ASSERT_TRUE(MarkComplete(Posix(), dir.path(), "job", At(100), 1).ok());
  FaultInjectionEnv env(Posix());
  env.SetSpaceLimit(2 * 4096);
  Status st = Write(&env, dir.path(), next);
  EXPECT_EQ(st.code(), Code::kResourceExhausted) << st.ToString();
  EXPECT_FALSE(std::filesystem::exists(PathOf(dir.path(), next)));
  EXPECT_FALSE(HasTemp(IterationDir(dir.path(), "job", At(200))));
  EXPECT_EQ(*NewestComplete(Posix(), dir.path(), "job"), At(100));
  ExpectReadsBack(PathOf(dir.path(), old), old);
}

TEST(PersistShardFile, CancelStopsTheWriteCleanly) {
  TempDir dir;
  TestShard s = MakeShard("job", 3, 0, 1);
  std::atomic<bool> cancel{true};
  ShardWriteOptions o;
  o.cancel = &cancel;
  Status st = WriteShard(Posix(), dir.path(), 0, s.manifest, s.crcs, s.data.data(), o);
  EXPECT_EQ(st.code(), Code::kAborted);
  EXPECT_TRUE(Names(IterationDir(dir.path(), "job", At(3))).empty());
}

// Writes iteration 200 (and marks it complete) with a crash after every
// possible number of steps; after each crash a fresh env ("the restarted
// process") must still find iteration 100 intact, never a partial shard.
TEST(PersistShardFile, CrashAtEveryStepNeverExposesAPartialShard) {
  TempDir dir;
  TestShard old = MakeShard("job", 100, 0, 1), next = MakeShard("job", 200, 0, 1);
  ASSERT_TRUE(Write(Posix(), dir.path(), old).ok());
  ASSERT_TRUE(MarkComplete(Posix(), dir.path(), "job", At(100), 1).ok());
  std::string iter_dir = IterationDir(dir.path(), "job", At(200));
  auto attempt = [&](FaultInjectionEnv* env) {
    Status st = Write(env, dir.path(), next);
    return st.ok() ? MarkComplete(env, dir.path(), "job", At(200), 1) : st;
  };
  FaultInjectionEnv probe(Posix());
  ASSERT_TRUE(attempt(&probe).ok());
  uint64_t steps = probe.MutatingOps();
  ASSERT_GT(steps, 8u);
  for (uint64_t n = 0; n <= steps; ++n) {
    std::filesystem::remove_all(iter_dir);
    FaultInjectionEnv env(Posix());
    env.CrashAfter(n);
    Status st = attempt(&env);
    EXPECT_EQ(st.ok(), n == steps) << "crash after " << n << ": " << st.ToString();
    auto newest = NewestComplete(Posix(), dir.path(), "job");
    ASSERT_TRUE(newest.ok());
    EXPECT_TRUE(*newest == At(100) || *newest == At(200)) << newest->ToString();
    ExpectReadsBack(PathOf(dir.path(), old), old);
    if (std::filesystem::exists(PathOf(dir.path(), next)))
      ExpectReadsBack(PathOf(dir.path(), next), next);
    if (*newest == At(200)) ExpectReadsBack(PathOf(dir.path(), next), next);
  }
}

TEST(PersistShardFile, CrashBetweenWriteAndRenameKeepsPreviousIteration) {
  TempDir dir;
  TestShard old = MakeShard("job", 100, 0, 1), next = MakeShard("job", 200, 0, 1);
  ASSERT_TRUE(Write(Posix(), dir.path(), old).ok());
  ASSERT_TRUE(MarkComplete(Posix(), dir.path(), "job", At(100), 1).ok());
  // Find the rename in a dry run of the same steps (a new iteration
  // directory beside iteration 100), then crash just before it.
  FaultInjectionEnv probe(Posix());
  ASSERT_TRUE(Write(&probe, dir.path(), MakeShard("job", 150, 0, 1)).ok());
  std::filesystem::remove_all(IterationDir(dir.path(), "job", At(150)));
  auto log = probe.Log();
  uint64_t rename = 0;
  while (rename < log.size() && log[rename].rfind("rename ", 0) != 0) ++rename;
  ASSERT_LT(rename, log.size());
  FaultInjectionEnv env(Posix());
  env.CrashAfter(rename);
  EXPECT_EQ(Write(&env, dir.path(), next).code(), Code::kAborted);
  std::string iter_dir = IterationDir(dir.path(), "job", At(200));
  EXPECT_TRUE(HasTemp(iter_dir));  // The crash left its temp file behind...
  EXPECT_FALSE(std::filesystem::exists(PathOf(dir.path(), next)));  // ...but no shard.
  EXPECT_EQ(IterationsOf(*ListIterations(Posix(), dir.path(), "job")),
            (std::vector<int64_t>{100, 200}));
  EXPECT_EQ(*NewestComplete(Posix(), dir.path(), "job"), At(100));
  EXPECT_EQ(MarkComplete(Posix(), dir.path(), "job", At(200), 1).code(), Code::kFailedPrecondition);
  ExpectReadsBack(PathOf(dir.path(), old), old);
}

}  // namespace
}  // namespace gemini
