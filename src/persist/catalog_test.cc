#include "persist/catalog.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "common/crc32c.h"
#include "persist/layout.h"
#include "persist/shard_file.h"
#include "persist/test_util.h"

namespace gemini {
namespace {

using persist_test::At;
using persist_test::IterationsOf;
using persist_test::MakeShard;
using persist_test::Names;
using persist_test::ReadBytes;
using persist_test::TempDir;
using persist_test::TestShard;
using persist_test::WriteBytes;

PersistEnv* Posix() { return PersistEnv::Posix(); }

void WriteRanks(const std::string& root, int64_t iteration, uint32_t world,
                std::vector<uint32_t> ranks, int64_t epoch = 0) {
  for (uint32_t r : ranks) {
    TestShard s = MakeShard("job", iteration, r, world, 100);
    ASSERT_TRUE(WriteShard(Posix(), root, epoch, s.manifest, s.crcs, s.data.data()).ok());
  }
}

void WriteComplete(const std::string& root, int64_t iteration, uint32_t world = 2,
                   int64_t epoch = 0) {
  std::vector<uint32_t> all;
  for (uint32_t r = 0; r < world; ++r) all.push_back(r);
  WriteRanks(root, iteration, world, all, epoch);
  ASSERT_TRUE(MarkComplete(Posix(), root, "job", At(iteration, epoch), world).ok());
}

TEST(PersistLayout, NamesAndParsing) {
  EXPECT_EQ(IterationDirName(At(42, 3)), "iter-000000000042-epoch-3");
  EXPECT_EQ(ParseIterationDirName("iter-000000000042-epoch-3"), At(42, 3));
  EXPECT_EQ(ParseIterationDirName("iter-1234567890123-epoch-0"), At(1234567890123, 0));
  EXPECT_EQ(ParseIterationDirName("iter-000000000042-epoch-12"), At(42, 12));
  EXPECT_FALSE(ParseIterationDirName("iter-000000000042"));  // Version-1 layout: no epoch.
  EXPECT_FALSE(ParseIterationDirName("iter-42-epoch-3"));
  EXPECT_FALSE(ParseIterationDirName("iter-00000000004x-epoch-3"));
  EXPECT_FALSE(ParseIterationDirName("iter-0000000000042-epoch-3"));  // Not canonical.
  EXPECT_FALSE(ParseIterationDirName("iter-000000000042-epoch-03"));  // Not canonical.
  EXPECT_FALSE(ParseIterationDirName("iter-000000000042-epoch-"));
  EXPECT_FALSE(ParseIterationDirName("iter-000000000042-epoch--1"));
  EXPECT_FALSE(ParseIterationDirName("iter-000000000042-epoch-3.tmp-h-1-2"));
  EXPECT_LT(At(5, 9), At(6, 0));  // Ordered by iteration, then epoch.
  EXPECT_LT(At(6, 0), At(6, 1));
  EXPECT_EQ(ShardFileName(3), "rank-3.gshard");
  EXPECT_TRUE(ValidateJobName("gpt2-10B_run.3").ok());
  for (const char* bad : {"", ".", "..", ".hidden", "a/b", "a b", "x\n"})
    EXPECT_EQ(ValidateJobName(bad).code(), Code::kInvalidArgument) << bad;
  EXPECT_FALSE(ValidateJobName(std::string(257, 'a')).ok());
}

TEST(PersistCatalog, MarkerRoundTripsAndRejectsDamage) {
  CompleteMarker m{"job", 300, 7, 3, {0, 1, 2}};
  std::string text = m.Encode();
  EXPECT_NE(text.find("ranks 0 1 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nepoch 7\n"), std::string::npos) << text;
  auto d = CompleteMarker::Decode(text);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->job, "job");
  EXPECT_EQ(d->iteration, 300);
  EXPECT_EQ(d->epoch, 7);
  EXPECT_EQ(d->ranks, (std::vector<uint32_t>{0, 1, 2}));
  for (size_t n = 0; n < text.size(); ++n)
    EXPECT_FALSE(CompleteMarker::Decode(text.substr(0, n)).ok()) << "prefix " << n;
  for (size_t i = 0; i < text.size(); ++i) {
    std::string bad = text;
    bad[i] ^= 0x04;
    EXPECT_FALSE(CompleteMarker::Decode(bad).ok()) << "flipped " << i;
  }
  CompleteMarker gap{"job", 1, 0, 3, {0, 2, 1}};
  EXPECT_FALSE(CompleteMarker::Decode(gap.Encode()).ok());
}

TEST(PersistCatalog, OldVersionMarkersAreUnsupported) {
  std::string v1 = "gemini-complete 1\njob job\niteration 5\nworld_size 1\nranks 0\n";
  char crc[32];
  std::snprintf(crc, sizeof(crc), "crc32c %08x\n", Crc32c(v1.data(), v1.size()));
  auto d = CompleteMarker::Decode(v1 + crc);
  EXPECT_EQ(d.status().code(), Code::kInvalidArgument);
  EXPECT_NE(d.status().message().find("unsupported COMPLETE marker version 1"), std::string::npos)
      << d.status().ToString();
}

// A recovery resumed an earlier iteration in epoch 2; epoch 1 had written
// iteration 100 on two of three ranks before it was abandoned. Epoch 2's
// iteration 100 is complete only with its own three files.
TEST(PersistCatalog, TimelinesNeverMix) {
  TempDir dir;
  WriteRanks(dir.path(), 100, 3, {0, 1}, /*epoch=*/1);
  WriteRanks(dir.path(), 100, 3, {2}, /*epoch=*/2);
  Status st = MarkComplete(Posix(), dir.path(), "job", At(100, 2), 3);
  EXPECT_EQ(st.code(), Code::kFailedPrecondition) << st.ToString();  // Ranks 0, 1 of epoch 2.
  EXPECT_NE(st.message().find("(0, 1)"), std::string::npos) << st.ToString();
  EXPECT_EQ(MarkComplete(Posix(), dir.path(), "job", At(100, 1), 3).code(),
            Code::kFailedPrecondition);
  // Epoch 1's file put where epoch 2's rank 0 belongs: intact, but not it.
  std::filesystem::copy_file(ShardPath(dir.path(), "job", At(100, 1), 0),
                             ShardPath(dir.path(), "job", At(100, 2), 0));
  WriteRanks(dir.path(), 100, 3, {1}, /*epoch=*/2);
  st = MarkComplete(Posix(), dir.path(), "job", At(100, 2), 3);
  EXPECT_EQ(st.code(), Code::kInvalidArgument) << st.ToString();
  EXPECT_NE(st.message().find("epoch (timeline) differs"), std::string::npos) << st.ToString();
  EXPECT_FALSE(IsComplete(Posix(), dir.path(), "job", At(100, 2)));
  WriteRanks(dir.path(), 100, 3, {0}, /*epoch=*/2);  // Replaces the misplaced file.
  ASSERT_TRUE(MarkComplete(Posix(), dir.path(), "job", At(100, 2), 3).ok());
  EXPECT_EQ(*NewestComplete(Posix(), dir.path(), "job"), At(100, 2));
  EXPECT_FALSE(IsComplete(Posix(), dir.path(), "job", At(100, 1)));
  // A marker copied from the other timeline does not complete it either.
  std::filesystem::copy_file(CompleteMarkerPath(dir.path(), "job", At(100, 2)),
                             CompleteMarkerPath(dir.path(), "job", At(100, 1)));
  WriteRanks(dir.path(), 100, 3, {2}, /*epoch=*/1);
  EXPECT_FALSE(IsComplete(Posix(), dir.path(), "job", At(100, 1)));
  EXPECT_EQ(IterationsOf(*ListComplete(Posix(), dir.path(), "job")), std::vector<int64_t>{100});
}

TEST(PersistCatalog, RetentionOrdersKeysByIterationThenEpoch) {
  TempDir dir;
  WriteComplete(dir.path(), 100, 2, /*epoch=*/1);
  WriteRanks(dir.path(), 150, 2, {0}, /*epoch=*/1);  // Abandoned with its timeline.
  WriteComplete(dir.path(), 120, 2, /*epoch=*/2);
  WriteComplete(dir.path(), 160, 2, /*epoch=*/2);
  EXPECT_EQ(*NewestComplete(Posix(), dir.path(), "job"), At(160, 2));
  auto removed = ApplyRetention(Posix(), dir.path(), "job", 1);
  ASSERT_TRUE(removed.ok()) << removed.status().ToString();
  EXPECT_EQ(*removed, (std::vector<IterationKey>{At(100, 1), At(120, 2), At(150, 1)}));
  EXPECT_EQ(*ListIterations(Posix(), dir.path(), "job"), std::vector<IterationKey>{At(160, 2)});
}

TEST(PersistCatalog, MarkCompleteNeedsEveryRank) {
  TempDir dir;
  WriteRanks(dir.path(), 100, 3, {0, 2});
  Status st = MarkComplete(Posix(), dir.path(), "job", At(100), 3);
  EXPECT_EQ(st.code(), Code::kFailedPrecondition);
  EXPECT_NE(st.message().find("(1)"), std::string::npos) << st.ToString();
  EXPECT_FALSE(IsComplete(Posix(), dir.path(), "job", At(100)));
  WriteRanks(dir.path(), 100, 3, {1});
  ASSERT_TRUE(MarkComplete(Posix(), dir.path(), "job", At(100), 3).ok());
  ASSERT_TRUE(MarkComplete(Posix(), dir.path(), "job", At(100), 3).ok());  // Idempotent.
  EXPECT_TRUE(IsComplete(Posix(), dir.path(), "job", At(100)));
  auto marker = CompleteMarker::Decode(ReadBytes(CompleteMarkerPath(dir.path(), "job", At(100))));
  ASSERT_TRUE(marker.ok());
  EXPECT_EQ(marker->ranks, (std::vector<uint32_t>{0, 1, 2}));
  EXPECT_EQ(
      Names(IterationDir(dir.path(), "job", At(100))),
      (std::vector<std::string>{"COMPLETE", "rank-0.gshard", "rank-1.gshard", "rank-2.gshard"}));
}

TEST(PersistCatalog, MarkCompleteRejectsAMisplacedOrDamagedRankFile) {
  TempDir dir;
  WriteRanks(dir.path(), 100, 2, {0, 1});
  std::string r1 = ShardPath(dir.path(), "job", At(100), 1);
  std::filesystem::copy_file(ShardPath(dir.path(), "job", At(100), 0), r1,
                             std::filesystem::copy_options::overwrite_existing);
  EXPECT_EQ(MarkComplete(Posix(), dir.path(), "job", At(100), 2).code(), Code::kInvalidArgument);
  WriteBytes(r1, "garbage");
  EXPECT_EQ(MarkComplete(Posix(), dir.path(), "job", At(100), 2).code(), Code::kDataLoss);
  EXPECT_FALSE(IsComplete(Posix(), dir.path(), "job", At(100)));
}

TEST(PersistCatalog, NewestCompleteIgnoresIncompleteIterations) {
  TempDir dir;
  EXPECT_EQ(NewestComplete(Posix(), dir.path(), "job").status().code(), Code::kNotFound);
  WriteComplete(dir.path(), 100);
  WriteRanks(dir.path(), 200, 2, {0});  // A rank missing, no marker.
  WriteComplete(dir.path(), 300);       // Marker, but a rank file lost afterwards.
  std::filesystem::remove(ShardPath(dir.path(), "job", At(300), 1));
  WriteComplete(dir.path(), 400);  // Marker damaged.
  std::string marker = CompleteMarkerPath(dir.path(), "job", At(400)), text = ReadBytes(marker);
  text[text.size() / 2] ^= 1;
  WriteBytes(marker, text);
  WriteComplete(dir.path(), 500);  // Marker of another iteration copied in.
  std::filesystem::copy_file(CompleteMarkerPath(dir.path(), "job", At(100)),
                             CompleteMarkerPath(dir.path(), "job", At(500)),
                             std::filesystem::copy_options::overwrite_existing);
  std::filesystem::create_directories(dir.path() + "/job/iter-000000000600-epoch-0.tmp-1-1");
  EXPECT_EQ(*NewestComplete(Posix(), dir.path(), "job"), At(100));
  EXPECT_EQ(IterationsOf(*ListComplete(Posix(), dir.path(), "job")), std::vector<int64_t>{100});
  EXPECT_EQ(IterationsOf(*ListIterations(Posix(), dir.path(), "job")),
            (std::vector<int64_t>{100, 200, 300, 400, 500}));
  EXPECT_EQ(NewestComplete(Posix(), dir.path(), "other").status().code(), Code::kNotFound);
}

TEST(PersistCatalog, RetentionKeepsTheLastKComplete) {
  TempDir dir;
  WriteRanks(dir.path(), 0, 2, {0});  // Old and incomplete.
  for (int64_t it = 1; it <= 6; ++it) WriteComplete(dir.path(), it);
  WriteRanks(dir.path(), 7, 2, {1});  // Newer and incomplete: maybe being written elsewhere.
  auto removed = ApplyRetention(Posix(), dir.path(), "job", 3, {At(2)});
  ASSERT_TRUE(removed.ok()) << removed.status().ToString();
  EXPECT_EQ(IterationsOf(*removed), (std::vector<int64_t>{0, 1, 3}));
  EXPECT_EQ(IterationsOf(*ListIterations(Posix(), dir.path(), "job")),
            (std::vector<int64_t>{2, 4, 5, 6, 7}));
  EXPECT_EQ(IterationsOf(*ListComplete(Posix(), dir.path(), "job")),
            (std::vector<int64_t>{2, 4, 5, 6}));
  removed = ApplyRetention(Posix(), dir.path(), "job", 3);
  EXPECT_EQ(IterationsOf(*removed), std::vector<int64_t>{2});
  EXPECT_EQ(Names(dir.path() + "/job").size(), 4u);
}

TEST(PersistCatalog, RetentionNeverDeletesTheNewestComplete) {
  TempDir dir;
  WriteComplete(dir.path(), 1);
  WriteComplete(dir.path(), 2);
  WriteRanks(dir.path(), 3, 2, {0});
  EXPECT_TRUE(ApplyRetention(Posix(), dir.path(), "job", 3)->empty());  // Fewer than K.
  EXPECT_EQ(IterationsOf(*ApplyRetention(Posix(), dir.path(), "job", 1)), std::vector<int64_t>{1});
  EXPECT_EQ(IterationsOf(*ListIterations(Posix(), dir.path(), "job")),
            (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(*NewestComplete(Posix(), dir.path(), "job"), At(2));
  EXPECT_EQ(ApplyRetention(Posix(), dir.path(), "job", 0).status().code(), Code::kInvalidArgument);
}

TEST(PersistCatalog, RetentionRemovesLeftoverTempFiles) {
  TempDir dir;
  WriteComplete(dir.path(), 1);
  WriteBytes(ShardPath(dir.path(), "job", At(1), 0) + ".tmp-otherhost-99-0123456789abcdef",
             "partial");
  WriteComplete(dir.path(), 2);
  EXPECT_EQ(IterationsOf(*ApplyRetention(Posix(), dir.path(), "job", 1)), std::vector<int64_t>{1});
  EXPECT_EQ(Names(dir.path() + "/job"), std::vector<std::string>{"iter-000000000002-epoch-0"});
}

}  // namespace
}  // namespace gemini
