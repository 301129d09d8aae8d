#include "launch/node.h"

#include <gtest/gtest.h>

namespace gemini {
namespace {

TEST(Node, ParsesNnodes) {
  auto one = ParseNnodes("4");
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  EXPECT_EQ(*one, std::make_pair(4u, 4u));
  auto range = ParseNnodes("2:8");
  ASSERT_TRUE(range.ok()) << range.status().ToString();
  EXPECT_EQ(*range, std::make_pair(2u, 8u));
  const std::string too_many = std::to_string(static_cast<uint64_t>(kMaxHosts) + 1);
  for (const std::string& bad :
       std::vector<std::string>{"", "0", "x", "3:", ":3", "4:2", "1:2:3", "-1", too_many})
    EXPECT_EQ(ParseNnodes(bad).status().code(), Code::kInvalidArgument) << bad;
}

TEST(Node, RefusesOptionsThatMakeNoJob) {
  NodeOptions o;  // No command.
  EXPECT_EQ(RunNode(o), 2);
  o.command = {"true"};  // No --rdzv-endpoint.
  EXPECT_EQ(RunNode(o), 2);
}

}  // namespace
}  // namespace gemini
