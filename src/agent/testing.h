// Test helper (header-only, used by *_test.cc): a fixture serving an
// in-process agent, a Store behind a real AgentServer on a Unix socket, for
// the suites of the server and of the clients. Not for production code.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <utility>

#include "agent/agent_server.h"

namespace gemini {

class InProcessAgentTest : public ::testing::Test {
 protected:
  // `name` keeps suites' sockets and segment names apart.
  explicit InProcessAgentTest(std::string name, uint64_t budget_bytes = 256 << 20)
      : name_(std::move(name)), budget_bytes_(budget_bytes) {}

  void SetUp() override {
    path_ = "/tmp/gemini-" + name_ + "-" + std::to_string(getpid()) + ".sock";
    store_ = std::make_unique<Store>(StoreOptions{
        .budget_bytes = budget_bytes_, .shm_prefix = "gemini-" + name_ + std::to_string(getpid())});
    server_ = std::make_unique<AgentServer>(store_.get(), path_);
    ASSERT_TRUE(server_->Start().ok());
  }
  void TearDown() override { server_->Stop(); }

  const std::string name_;
  const uint64_t budget_bytes_;
  std::string path_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<AgentServer> server_;
};

}  // namespace gemini
