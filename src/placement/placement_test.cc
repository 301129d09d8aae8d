// Tests of placement construction (group / ring / mixed) and its lookups.
#include "gemini/placement.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace gemini {
namespace {

using V = std::vector<int>;

Placement Make(int n, int m, PlacementStrategy s) {
  auto p = MakePlacement(n, m, s);
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  return p.ok() ? std::move(p).value() : Placement{};
}

TEST(PlacementTest, GroupHoldersAreTheGroup) {
  Placement p = Make(6, 2, PlacementStrategy::kGroup);
  ASSERT_EQ(p.blocks.size(), 3u);
  EXPECT_EQ(p.holders[0], (V{0, 1}));
  EXPECT_EQ(p.holders[1], (V{0, 1}));
  EXPECT_EQ(p.holders[4], (V{4, 5}));
  Placement q = Make(9, 3, PlacementStrategy::kGroup);
  EXPECT_EQ(q.holders[5], (V{3, 4, 5}));
}

TEST(PlacementTest, RingHoldersWrapAround) {
  Placement p = Make(5, 3, PlacementStrategy::kRing);
  ASSERT_EQ(p.blocks.size(), 1u);
  EXPECT_EQ(p.blocks[0].kind, PlacementBlock::Kind::kRing);
  EXPECT_EQ(p.holders[0], (V{0, 1, 2}));
  EXPECT_EQ(p.holders[3], (V{0, 3, 4}));
  EXPECT_EQ(p.holders[4], (V{0, 1, 4}));
}

TEST(PlacementTest, MixedIsGroupWhenReplicasDivide) {
  Placement mixed = Make(12, 3, PlacementStrategy::kMixed);
  Placement group = Make(12, 3, PlacementStrategy::kGroup);
  EXPECT_EQ(mixed.holders, group.holders);
  EXPECT_EQ(mixed.blocks.size(), 4u);
}

TEST(PlacementTest, MixedEndsWithARing) {
  // 7 machines, m = 2: groups {0,1} {2,3}, then ring 4 -> 5 -> 6 -> 4.
  Placement p = Make(7, 2, PlacementStrategy::kMixed);
  ASSERT_EQ(p.blocks.size(), 3u);
  EXPECT_EQ(p.blocks[2].kind, PlacementBlock::Kind::kRing);
  EXPECT_EQ(p.blocks[2].machines, (V{4, 5, 6}));
  EXPECT_EQ(p.holders[3], (V{2, 3}));
  EXPECT_EQ(p.holders[4], (V{4, 5}));
  EXPECT_EQ(p.holders[5], (V{5, 6}));
  EXPECT_EQ(p.holders[6], (V{4, 6}));
  // 11 machines, m = 3: two groups, then a ring of 5.
  Placement q = Make(11, 3, PlacementStrategy::kMixed);
  ASSERT_EQ(q.blocks.size(), 3u);
  EXPECT_EQ(q.blocks[2].machines, (V{6, 7, 8, 9, 10}));
  EXPECT_EQ(q.holders[9], (V{6, 9, 10}));
}

TEST(PlacementTest, MixedWithFewMachinesIsOneRing) {
  Placement p = Make(5, 3, PlacementStrategy::kMixed);  // floor(5/3) - 1 = 0 groups
  ASSERT_EQ(p.blocks.size(), 1u);
  EXPECT_EQ(p.blocks[0].kind, PlacementBlock::Kind::kRing);
  EXPECT_EQ(p.holders, Make(5, 3, PlacementStrategy::kRing).holders);
}

TEST(PlacementTest, EveryShardHasMSortedHoldersAndEveryMachineHoldsM) {
  for (auto s : {PlacementStrategy::kGroup, PlacementStrategy::kRing, PlacementStrategy::kMixed}) {
    for (int n = 1; n <= 24; ++n) {
      for (int m = 1; m <= n; ++m) {
        auto p = MakePlacement(n, m, s);
        if (!p.ok()) continue;  // group with m not dividing n
        for (int i = 0; i < n; ++i) {
          const V& h = p->holders[i];
          ASSERT_EQ(static_cast<int>(h.size()), m) << n << " " << m << " " << i;
          EXPECT_TRUE(std::is_sorted(h.begin(), h.end()));
          EXPECT_EQ(std::adjacent_find(h.begin(), h.end()), h.end());
          EXPECT_TRUE(std::binary_search(h.begin(), h.end(), i));
          auto held = ShardsHeldBy(*p, i);
          ASSERT_TRUE(held.ok());
          EXPECT_EQ(static_cast<int>(held->size()), m);
          EXPECT_TRUE(std::binary_search(held->begin(), held->end(), i));
        }
      }
    }
  }
}

TEST(PlacementTest, InvalidInputIsAnError) {
  EXPECT_EQ(MakePlacement(0, 1, PlacementStrategy::kMixed).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(MakePlacement(4, 0, PlacementStrategy::kMixed).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(MakePlacement(4, 5, PlacementStrategy::kRing).status().code(), Code::kInvalidArgument);
  auto bad_group = MakePlacement(10, 3, PlacementStrategy::kGroup);
  EXPECT_EQ(bad_group.status().code(), Code::kInvalidArgument);
  EXPECT_NE(bad_group.status().message().find("divide"), std::string::npos);
  EXPECT_FALSE(MakePlacement(kMaxPlacementMachines + 1, 1, PlacementStrategy::kRing).ok());
  EXPECT_FALSE(MakePlacement(65536, 65536, PlacementStrategy::kRing).ok());  // too many holders
}

TEST(PlacementTest, ParseStrategy) {
  EXPECT_EQ(*ParsePlacementStrategy("group"), PlacementStrategy::kGroup);
  EXPECT_EQ(*ParsePlacementStrategy("ring"), PlacementStrategy::kRing);
  EXPECT_EQ(*ParsePlacementStrategy("mixed"), PlacementStrategy::kMixed);
  EXPECT_EQ(ParsePlacementStrategy("Ring").status().code(), Code::kInvalidArgument);
  EXPECT_STREQ(PlacementStrategyName(PlacementStrategy::kMixed), "mixed");
}

TEST(PlacementTest, LostShards) {
  Placement p = Make(8, 2, PlacementStrategy::kGroup);
  EXPECT_EQ(*LostShards(p, {0, 2, 4}), V{});
  EXPECT_EQ(*LostShards(p, {3, 2, 7}), (V{2, 3}));
  EXPECT_EQ(LostShards(p, {1, 1}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(LostShards(p, {8}).status().code(), Code::kInvalidArgument);
  Placement r = Make(8, 3, PlacementStrategy::kRing);
  EXPECT_EQ(*LostShards(r, {7, 0, 1}), V{7});  // holders of 7: 7, 0, 1
  EXPECT_EQ(ShardsHeldBy(r, 9).status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace gemini
