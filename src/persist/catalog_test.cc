#include "persist/catalog.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "persist/layout.h"
#include "persist/shard_file.h"
#include "persist/test_util.h"

namespace gemini {
namespace {

using persist_test::MakeShard;
using persist_test::Names;
using persist_test::ReadBytes;
using persist_test::TempDir;
using persist_test::TestShard;
using persist_test::WriteBytes;

PersistEnv* Posix() { return PersistEnv::Posix(); }

void WriteRanks(const std::string& root, int64_t iteration, uint32_t world,
                std::vector<uint32_t> ranks) {
  for (uint32_t r : ranks) {
    TestShard s = MakeShard("job", iteration, r, world, 100);
    ASSERT_TRUE(WriteShard(Posix(), root, s.manifest, s.crcs, s.data.data()).ok());
  }
}

void WriteComplete(const std::string& root, int64_t iteration, uint32_t world = 2) {
  std::vector<uint32_t> all;
  for (uint32_t r = 0; r < world; ++r) all.push_back(r);
  WriteRanks(root, iteration, world, all);
  ASSERT_TRUE(MarkComplete(Posix(), root, "job", iteration, world).ok());
}

TEST(PersistLayout, NamesAndParsing) {
  EXPECT_EQ(IterationDirName(42), "iter-000000000042");
  EXPECT_EQ(ParseIterationDirName("iter-000000000042"), 42);
  EXPECT_EQ(ParseIterationDirName("iter-1234567890123"), 1234567890123);
  EXPECT_FALSE(ParseIterationDirName("iter-42"));
  EXPECT_FALSE(ParseIterationDirName("iter-00000000004x"));
  EXPECT_FALSE(ParseIterationDirName("iter-0000000000042"));  // Not canonical.
  EXPECT_FALSE(ParseIterationDirName("iter-000000000042.tmp-1-2"));
  EXPECT_EQ(ShardFileName(3), "rank-3.gshard");
  EXPECT_TRUE(ValidateJobName("gpt2-10B_run.3").ok());
  for (const char* bad : {"", ".", "..", ".hidden", "a/b", "a b", "x\n"})
    EXPECT_EQ(ValidateJobName(bad).code(), Code::kInvalidArgument) << bad;
  EXPECT_FALSE(ValidateJobName(std::string(257, 'a')).ok());
}

TEST(PersistCatalog, MarkerRoundTripsAndRejectsDamage) {
  CompleteMarker m{"job", 300, 3, {0, 1, 2}};
  std::string text = m.Encode();
  EXPECT_NE(text.find("ranks 0 1 2\n"), std::string::npos) << text;
  auto d = CompleteMarker::Decode(text);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->job, "job");
  EXPECT_EQ(d->iteration, 300);
  EXPECT_EQ(d->ranks, (std::vector<uint32_t>{0, 1, 2}));
  for (size_t n = 0; n < text.size(); ++n)
    EXPECT_FALSE(CompleteMarker::Decode(text.substr(0, n)).ok()) << "prefix " << n;
  for (size_t i = 0; i < text.size(); ++i) {
    std::string bad = text;
    bad[i] ^= 0x04;
    EXPECT_FALSE(CompleteMarker::Decode(bad).ok()) << "flipped " << i;
  }
  CompleteMarker gap{"job", 1, 3, {0, 2, 1}};
  EXPECT_FALSE(CompleteMarker::Decode(gap.Encode()).ok());
}

TEST(PersistCatalog, MarkCompleteNeedsEveryRank) {
  TempDir dir;
  WriteRanks(dir.path(), 100, 3, {0, 2});
  Status st = MarkComplete(Posix(), dir.path(), "job", 100, 3);
  EXPECT_EQ(st.code(), Code::kFailedPrecondition);
  EXPECT_NE(st.message().find("(1)"), std::string::npos) << st.ToString();
  EXPECT_FALSE(IsComplete(Posix(), dir.path(), "job", 100));
  WriteRanks(dir.path(), 100, 3, {1});
  ASSERT_TRUE(MarkComplete(Posix(), dir.path(), "job", 100, 3).ok());
  ASSERT_TRUE(MarkComplete(Posix(), dir.path(), "job", 100, 3).ok());  // Idempotent.
  EXPECT_TRUE(IsComplete(Posix(), dir.path(), "job", 100));
  auto marker = CompleteMarker::Decode(ReadBytes(CompleteMarkerPath(dir.path(), "job", 100)));
  ASSERT_TRUE(marker.ok());
  EXPECT_EQ(marker->ranks, (std::vector<uint32_t>{0, 1, 2}));
  EXPECT_EQ(
      Names(IterationDir(dir.path(), "job", 100)),
      (std::vector<std::string>{"COMPLETE", "rank-0.gshard", "rank-1.gshard", "rank-2.gshard"}));
}

TEST(PersistCatalog, MarkCompleteRejectsAMisplacedOrDamagedRankFile) {
  TempDir dir;
  WriteRanks(dir.path(), 100, 2, {0, 1});
  std::string r1 = ShardPath(dir.path(), "job", 100, 1);
  std::filesystem::copy_file(ShardPath(dir.path(), "job", 100, 0), r1,
                             std::filesystem::copy_options::overwrite_existing);
  EXPECT_EQ(MarkComplete(Posix(), dir.path(), "job", 100, 2).code(), Code::kInvalidArgument);
  WriteBytes(r1, "garbage");
  EXPECT_EQ(MarkComplete(Posix(), dir.path(), "job", 100, 2).code(), Code::kDataLoss);
  EXPECT_FALSE(IsComplete(Posix(), dir.path(), "job", 100));
}

TEST(PersistCatalog, NewestCompleteIgnoresIncompleteIterations) {
  TempDir dir;
  EXPECT_EQ(NewestComplete(Posix(), dir.path(), "job").status().code(), Code::kNotFound);
  WriteComplete(dir.path(), 100);
  WriteRanks(dir.path(), 200, 2, {0});  // A rank missing, no marker.
  WriteComplete(dir.path(), 300);       // Marker, but a rank file lost afterwards.
  std::filesystem::remove(ShardPath(dir.path(), "job", 300, 1));
  WriteComplete(dir.path(), 400);  // Marker damaged.
  std::string marker = CompleteMarkerPath(dir.path(), "job", 400), text = ReadBytes(marker);
  text[text.size() / 2] ^= 1;
  WriteBytes(marker, text);
  WriteComplete(dir.path(), 500);  // Marker of another iteration copied in.
  std::filesystem::copy_file(CompleteMarkerPath(dir.path(), "job", 100),
                             CompleteMarkerPath(dir.path(), "job", 500),
                             std::filesystem::copy_options::overwrite_existing);
  std::filesystem::create_directories(dir.path() + "/job/iter-000000000600.tmp-1-1");
  EXPECT_EQ(*NewestComplete(Posix(), dir.path(), "job"), 100);
  EXPECT_EQ(*ListComplete(Posix(), dir.path(), "job"), std::vector<int64_t>{100});
  EXPECT_EQ(*ListIterations(Posix(), dir.path(), "job"),
            (std::vector<int64_t>{100, 200, 300, 400, 500}));
  EXPECT_EQ(NewestComplete(Posix(), dir.path(), "other").status().code(), Code::kNotFound);
}

TEST(PersistCatalog, RetentionKeepsTheLastKComplete) {
  TempDir dir;
  WriteRanks(dir.path(), 0, 2, {0});  // Old and incomplete.
  for (int64_t it = 1; it <= 6; ++it) WriteComplete(dir.path(), it);
  WriteRanks(dir.path(), 7, 2, {1});  // Newer and incomplete: maybe being written elsewhere.
  auto removed = ApplyRetention(Posix(), dir.path(), "job", 3, {2});
  ASSERT_TRUE(removed.ok()) << removed.status().ToString();
  EXPECT_EQ(*removed, (std::vector<int64_t>{0, 1, 3}));
  EXPECT_EQ(*ListIterations(Posix(), dir.path(), "job"), (std::vector<int64_t>{2, 4, 5, 6, 7}));
  EXPECT_EQ(*ListComplete(Posix(), dir.path(), "job"), (std::vector<int64_t>{2, 4, 5, 6}));
  removed = ApplyRetention(Posix(), dir.path(), "job", 3);
  EXPECT_EQ(*removed, std::vector<int64_t>{2});
  EXPECT_EQ(Names(dir.path() + "/job").size(), 4u);
}

TEST(PersistCatalog, RetentionNeverDeletesTheNewestComplete) {
  TempDir dir;
  WriteComplete(dir.path(), 1);
  WriteComplete(dir.path(), 2);
  WriteRanks(dir.path(), 3, 2, {0});
  EXPECT_TRUE(ApplyRetention(Posix(), dir.path(), "job", 3)->empty());  // Fewer than K.
  EXPECT_EQ(*ApplyRetention(Posix(), dir.path(), "job", 1), std::vector<int64_t>{1});
  EXPECT_EQ(*ListIterations(Posix(), dir.path(), "job"), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(*NewestComplete(Posix(), dir.path(), "job"), 2);
  EXPECT_EQ(ApplyRetention(Posix(), dir.path(), "job", 0).status().code(), Code::kInvalidArgument);
}

TEST(PersistCatalog, RetentionRemovesLeftoverTempFiles) {
  TempDir dir;
  WriteComplete(dir.path(), 1);
  WriteBytes(ShardPath(dir.path(), "job", 1, 0) + ".tmp-99-0", "partial");
  WriteComplete(dir.path(), 2);
  EXPECT_EQ(*ApplyRetention(Posix(), dir.path(), "job", 1), std::vector<int64_t>{1});
  EXPECT_EQ(Names(dir.path() + "/job"), std::vector<std::string>{"iter-000000000002"});
}

}  // namespace
}  // namespace gemini
