// Handshake: mutual authentication succeeds only with the same secret and
// job on both sides; every failure is kAborted on both sides, fails the
// connection, and lets no frame through. Also: loading the secret.
#include "transport/handshake.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>

#include "transport/frame.h"
#include "transport/testing.h"

namespace gemini::transport {
namespace {

using namespace std::chrono_literals;
using testing::Handshake;
using testing::In;
using testing::RawPair;
using testing::Soon;
using testing::TestSecret;

const FrameLimits kLimits = {{1, 1024}};

// A client hello with this nonce, as the wire format in handshake.h says.
std::string ClientHello(char nonce_byte) {
  std::string h(40, nonce_byte);
  uint32_t magic = 0x48414D47, version = 1;
  std::memcpy(h.data(), &magic, 4);
  std::memcpy(h.data() + 4, &version, 4);
  return h;
}

// Asserts the pair failed on both sides and carries no frame either way.
void ExpectDeadPair(testing::Pair& p, const std::pair<Status, Status>& result) {
  EXPECT_EQ(result.first.code(), Code::kAborted) << result.first.ToString();
  EXPECT_EQ(result.second.code(), Code::kAborted) << result.second.ToString();
  EXPECT_NE(result.first.message().find("authentication"), std::string::npos);
  EXPECT_FALSE(SendFrame(*p.client, 1, "secret data", Soon()).ok());
  EXPECT_FALSE(SendFrame(*p.server, 1, "secret data", Soon()).ok());
  EXPECT_FALSE(RecvFrame(*p.server, kLimits, In(100ms)).ok());
  EXPECT_FALSE(RecvFrame(*p.client, kLimits, In(100ms)).ok());
}

TEST(TransportHandshake, SameSecretAndJobAuthenticateBothSides) {
  auto p = RawPair();
  ASSERT_TRUE(p.client && p.server);
  auto [c, s] = Handshake(p, TestSecret(), "job", TestSecret(), "job");
  ASSERT_TRUE(c.ok()) << c.ToString();
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_TRUE(SendFrame(*p.client, 1, "ping", Soon()).ok());
  auto f = RecvFrame(*p.server, kLimits, Soon());
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->payload, "ping");
  ASSERT_TRUE(SendFrame(*p.server, 1, "pong", Soon()).ok());
  EXPECT_EQ(RecvFrame(*p.client, kLimits, Soon())->payload, "pong");
}

TEST(TransportHandshake, WrongSecretOnClientFailsBothSides) {
  auto p = RawPair();
  ASSERT_TRUE(p.client && p.server);
  auto r = Handshake(p, TestSecret("another-secret-of-enough-bytes"), "job", TestSecret(), "job");
  ExpectDeadPair(p, r);
}

TEST(TransportHandshake, WrongSecretOnServerFailsBothSides) {
  auto p = RawPair();
  ASSERT_TRUE(p.client && p.server);
  auto r = Handshake(p, TestSecret(), "job", TestSecret("another-secret-of-enough-bytes"), "job");
  ExpectDeadPair(p, r);
}

TEST(TransportHandshake, WrongJobFailsBothSides) {
  auto p = RawPair();
  ASSERT_TRUE(p.client && p.server);
  auto r = Handshake(p, TestSecret(), "job-a", TestSecret(), "job-b");
  ExpectDeadPair(p, r);
}

TEST(TransportHandshake, SilentClientTimesOut) {
  auto p = RawPair();
  ASSERT_TRUE(p.client && p.server);
  Status s = ServerHandshake(*p.server, TestSecret(), "job", In(150ms));
  EXPECT_EQ(s.code(), Code::kAborted) << s.ToString();
  EXPECT_FALSE(p.server->status().ok());
}

TEST(TransportHandshake, SilentServerTimesOut) {
  auto p = RawPair();
  ASSERT_TRUE(p.client && p.server);
  Status s = ClientHandshake(*p.client, TestSecret(), "job", In(150ms));
  EXPECT_EQ(s.code(), Code::kAborted) << s.ToString();
}

TEST(TransportHandshake, GarbageHelloGetsNothingBack) {
  auto p = RawPair();
  ASSERT_TRUE(p.client && p.server);
  std::string garbage(40, '\0');
  for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<char>(i * 37 + 11);
  ASSERT_TRUE(p.client->SendAll(garbage.data(), garbage.size(), Soon()).ok());
  EXPECT_EQ(ServerHandshake(*p.server, TestSecret(), "job", Soon()).code(), Code::kAborted);
  char c;
  EXPECT_EQ(p.client->RecvAll(&c, 1, Soon()).code(), Code::kUnavailable);  // Closed, no bytes.
}

TEST(TransportHandshake, ServerRevealsOnlyNonceAndProofUntilClientProves) {
  auto p = RawPair();
  ASSERT_TRUE(p.client && p.server);
  auto server = std::async(std::launch::async,
                           [&] { return ServerHandshake(*p.server, TestSecret(), "job", Soon()); });
  std::string hello = ClientHello('\x5a');
  ASSERT_TRUE(p.client->SendAll(hello.data(), hello.size(), Soon()).ok());
  char reply[72];
  ASSERT_TRUE(p.client->RecvAll(reply, sizeof(reply), Soon()).ok());
  char extra;
  EXPECT_EQ(p.client->RecvAll(&extra, 1, In(100ms)).code(), Code::kDeadlineExceeded);
  EXPECT_EQ(server.get().code(), Code::kAborted);  // Our connection failed first.
}

TEST(TransportHandshake, ReplayedServerProofIsNotAClientProof) {
  auto p = RawPair();
  ASSERT_TRUE(p.client && p.server);
  auto server = std::async(std::launch::async,
                           [&] { return ServerHandshake(*p.server, TestSecret(), "job", Soon()); });
  std::string hello = ClientHello('\x01');
  ASSERT_TRUE(p.client->SendAll(hello.data(), hello.size(), Soon()).ok());
  char reply[72];
  ASSERT_TRUE(p.client->RecvAll(reply, sizeof(reply), Soon()).ok());
  ASSERT_TRUE(p.client->SendAll(reply + 40, 32, Soon()).ok());  // Echo its own proof.
  EXPECT_EQ(server.get().code(), Code::kAborted);
  char c;
  EXPECT_EQ(p.client->RecvAll(&c, 1, Soon()).code(), Code::kUnavailable);
}

class TransportSecret : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        std::filesystem::temp_directory_path() / ("gemini-secret-test-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    std::filesystem::remove_all(dir_);
    unsetenv(JobSecret::kEnvVar);
  }
  std::string Write(const std::string& name, const std::string& text, mode_t mode) {
    std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    chmod(path.c_str(), mode);
    return path;
  }
  std::filesystem::path dir_;
};

TEST_F(TransportSecret, PrivateFileLoadsWithoutTrailingNewline) {
  auto s = JobSecret::FromFile(Write("ok", "0123456789abcdef-file\n", 0600));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->bytes(), "0123456789abcdef-file");
}

TEST_F(TransportSecret, GroupOrOtherAccessibleFileIsRefused) {
  EXPECT_EQ(JobSecret::FromFile(Write("a", "0123456789abcdef", 0644)).status().code(),
            Code::kFailedPrecondition);
  EXPECT_EQ(JobSecret::FromFile(Write("b", "0123456789abcdef", 0640)).status().code(),
            Code::kFailedPrecondition);
  EXPECT_EQ(JobSecret::FromFile(Write("c", "0123456789abcdef", 0604)).status().code(),
            Code::kFailedPrecondition);
}

TEST_F(TransportSecret, MissingFileShortSecretAndDirectoryAreRefused) {
  EXPECT_EQ(JobSecret::FromFile((dir_ / "none").string()).status().code(), Code::kNotFound);
  EXPECT_EQ(JobSecret::FromFile(Write("short", "tiny\n", 0600)).status().code(),
            Code::kInvalidArgument);
  chmod(dir_.c_str(), 0700);
  EXPECT_EQ(JobSecret::FromFile(dir_.string()).status().code(), Code::kFailedPrecondition);
}

TEST_F(TransportSecret, LoadFallsBackToEnvironment) {
  EXPECT_EQ(JobSecret::Load("").status().code(), Code::kNotFound);
  setenv(JobSecret::kEnvVar, "0123456789abcdef-env\n", 1);
  auto s = JobSecret::Load("");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->bytes(), "0123456789abcdef-env");
  auto f = JobSecret::Load(Write("f", "0123456789abcdef-file", 0600));
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->bytes(), "0123456789abcdef-file");
}

}  // namespace
}  // namespace gemini::transport
