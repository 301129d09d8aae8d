#include "agent/agent_server.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <nlohmann/json.hpp>
#include <random>

#include "agent/testing.h"
#include "common/unix_socket.h"
#include "store/client.h"
#include "store/protocol.h"

namespace gemini {
namespace {

class AgentServerTest : public InProcessAgentTest {
 protected:
  AgentServerTest() : InProcessAgentTest("test") {}

  std::unique_ptr<AgentClient> Client() {
    auto c = AgentClient::Connect(path_);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return std::move(c).value();
  }
};

// Finding 8: the socket checked no peer credentials (it hands out shm fds).
TEST_F(AgentServerTest, AnotherUserIsRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to act as another user";
  chmod(path_.c_str(), 0777);  // Even if the socket file's mode was opened up.
  pid_t child = fork();
  if (child == 0) {
    if (setuid(65534) != 0) _exit(3);
    auto c = AgentClient::Connect(path_, std::chrono::seconds(10));
    if (!c.ok()) _exit(4);
    auto st = (*c)->StatusJson();
    _exit(st.ok() ? 1 : 0);  // Refused: the agent closed the connection.
  }
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "another user's call was answered (or setup failed)";
  EXPECT_TRUE(Client()->StatusJson().ok());  // The agent's own user still is.
}

std::vector<float> Pattern(size_t n, int seed) {
  std::vector<float> v(n);
  std::mt19937 g(seed);
  for (auto& x : v) x = static_cast<float>(g()) / 1e6f;
  return v;
}

TEST_F(AgentServerTest, SaveLoadRoundTripIsBitIdentical) {
  auto c = Client();
  auto a = Pattern(300000, 1), b = Pattern(1001, 2);
  std::vector<TensorSource> src{{"a", Dtype::kFloat32, {300000}, a.data(), a.size() * 4, 0},
                                {"b", Dtype::kFloat32, {1001}, b.data(), b.size() * 4, 0}};
  SaveOptions opts;
  opts.chunk_size = 64 << 10;
  opts.copy_threads = 2;
  ASSERT_TRUE(c->Save("job", 0, 1, 3, src, opts).ok());
  EXPECT_EQ(*c->CompleteIteration("job"), 3);
  auto fresh = Client();  // A restarted trainer.
  auto shard = fresh->Open("job", 0, -1);
  ASSERT_TRUE(shard.ok()) << shard.status().ToString();
  ASSERT_EQ(shard->manifest.entries.size(), 2u);
  std::vector<uint8_t> out(shard->manifest.data_bytes);
  ASSERT_TRUE(AgentClient::ReadInto(*shard, out.data(), 2).ok());
  const auto& eb = shard->manifest.entries[1];
  EXPECT_EQ(std::memcmp(out.data(), a.data(), a.size() * 4), 0);
  EXPECT_EQ(std::memcmp(out.data() + eb.offset, b.data(), b.size() * 4), 0);
}

TEST_F(AgentServerTest, CorruptedSlotIsRefusedOnLoad) {
  auto c = Client();
  auto a = Pattern(100000, 3);
  ASSERT_TRUE(
      c->Save("job", 0, 1, 1, {{"a", Dtype::kFloat32, {100000}, a.data(), 400000, 0}}).ok());
  auto shard = c->Open("job", 0, 1);
  ASSERT_TRUE(shard.ok());
  const_cast<uint8_t*>(shard->data)[12345] ^= 0x01;  // A bit flip in memory.
  std::vector<uint8_t> out(shard->manifest.data_bytes);
  Status s = AgentClient::ReadInto(*shard, out.data());
  EXPECT_EQ(s.code(), Code::kDataLoss) << s.ToString();
}

TEST_F(AgentServerTest, GarbageOnTheSocketDoesNotHurtOthers) {
  auto good = Client();
  auto a = Pattern(1000, 4);
  ASSERT_TRUE(good->Save("job", 0, 1, 1, {{"a", Dtype::kFloat32, {1000}, a.data(), 4000, 0}}).ok());
  std::mt19937 g(5);
  for (int round = 0; round < 20; ++round) {
    auto fd = UnixConnect(path_);
    ASSERT_TRUE(fd.ok());
    std::string junk(1 + g() % 4096, '\0');
    for (auto& ch : junk) ch = static_cast<char>(g());
    if (round % 4 == 0) junk = std::string("\x01\0\0\0\xff\xff\xff\xff", 8);  // Oversized length.
    if (round % 4 == 1) junk = std::string("\x01\0\0\0\x10\0\0\0abc", 11);    // Truncated frame.
    ssize_t w = write(*fd, junk.data(), junk.size());
    (void)w;
    if (round % 2 == 0) close(*fd);  // Sometimes leave it half-open.
  }
  // Unknown type with a well-formed frame: a clear error reply.
  auto fd = UnixConnect(path_);
  ASSERT_TRUE(SendFrame(*fd, 77, "hello").ok());
  auto reply = RecvFrame(*fd, DeadlineIn(std::chrono::seconds(5)));
  ASSERT_TRUE(reply.ok());
  EXPECT_NE(reply->payload.find("unknown request type"), std::string::npos);
  close(*fd);
  // The committed checkpoint is intact and the agent keeps serving.
  auto shard = good->Open("job", 0, -1);
  ASSERT_TRUE(shard.ok());
  std::vector<uint8_t> out(shard->manifest.data_bytes);
  EXPECT_TRUE(AgentClient::ReadInto(*shard, out.data()).ok());
  EXPECT_EQ(std::memcmp(out.data(), a.data(), 4000), 0);
  ASSERT_TRUE(good->Save("job", 0, 1, 2, {{"a", Dtype::kFloat32, {1000}, a.data(), 4000, 0}}).ok());
}

TEST_F(AgentServerTest, BadManifestFromTrainerIsAClearError) {
  auto c = Client();
  std::vector<uint8_t> x(10);
  Status s = c->Save("", 0, 1, 1, {{"x", Dtype::kUint8, {10}, x.data(), 10, 0}});
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  s = c->Save("job", 5, 2, 1, {{"x", Dtype::kUint8, {10}, x.data(), 10, 0}});
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
}

// The trainer's checkpoint frequency (overhead budget) shows in the agent's
// status; forged or out-of-range reports are clear errors and change nothing.
TEST_F(AgentServerTest, CadenceShowsInStatusAndBadReportsAreRefused) {
  auto c = Client();
  EXPECT_EQ(c->SetCadence("job", 0, 5, "too slow").code(), Code::kNotFound);  // No job yet.
  auto a = Pattern(1000, 6);
  for (uint32_t rank = 0; rank < 2; ++rank) {
    auto w = Client();
    ASSERT_TRUE(
        w->Save("job", rank, 2, 1, {{"a", Dtype::kFloat32, {1000}, a.data(), 4000, 0}}).ok());
  }
  ASSERT_TRUE(c->SetCadence("job", 1, 7, "a checkpoint costs 9 ms against 2% of 20 ms").ok());
  EXPECT_EQ(c->SetCadence("job", 2, 3, "").code(), Code::kInvalidArgument);  // Outside the world.
  EXPECT_EQ(c->SetCadence("job", 0, 0, "").code(), Code::kInvalidArgument);
  EXPECT_EQ(c->SetCadence("job", 0, Store::kMaxEveryK + 1, "").code(), Code::kInvalidArgument);
  EXPECT_EQ(c->SetCadence("job", 0, 2, std::string(Store::kMaxCadenceReason + 1, 'x')).code(),
            Code::kInvalidArgument);
  auto text = c->StatusJson();
  ASSERT_TRUE(text.ok());
  auto j = nlohmann::json::parse(*text)["jobs"][0];
  EXPECT_EQ(j["every_k"], 7);  // The job checkpoints what every rank does: the largest k.
  EXPECT_FALSE(j["ranks"][0].contains("every_k"));
  EXPECT_EQ(j["ranks"][1]["every_k"], 7);
  EXPECT_EQ(j["ranks"][1]["every_k_reason"], "a checkpoint costs 9 ms against 2% of 20 ms");
  // A truncated cadence frame: a clear error, the connection's next call still answered.
  auto fd = UnixConnect(path_);
  ASSERT_TRUE(SendFrame(*fd, kCadence, std::string("\x03\0\0\0job", 7)).ok());
  auto reply = RecvFrame(*fd, DeadlineIn(std::chrono::seconds(5)));
  ASSERT_TRUE(reply.ok());
  std::string body;
  EXPECT_EQ(DecodeReply(reply->payload, &body).code(), Code::kInvalidArgument);
  close(*fd);
  EXPECT_TRUE(c->StatusJson().ok());
}

TEST_F(AgentServerTest, MissingAgentIsUnavailable) {
  auto c = AgentClient::Connect("/tmp/gemini-no-such-agent.sock");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Code::kUnavailable);
}

}  // namespace
}  // namespace gemini
