// AgentClient against a misbehaving agent (a scripted one on a real Unix
// socket): late replies and answers to another question.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <future>
#include <thread>

#include "common/unix_socket.h"
#include "common/wire.h"
#include "store/client.h"
#include "store/protocol.h"

namespace gemini {
namespace {

using namespace std::chrono_literals;

class ScriptedAgent {
 public:
  ScriptedAgent() : path_("/tmp/gemini-scripted-" + std::to_string(getpid())) {
    unlink(path_.c_str());
    listen_ = *UnixListen(path_);
  }
  ~ScriptedAgent() {
    close(listen_);
    unlink(path_.c_str());
  }
  const std::string& path() const { return path_; }
  int Accept() { return *UnixAccept(listen_); }

 private:
  std::string path_;
  int listen_ = -1;
};

std::string QueryReply(int64_t iteration) {
  Writer w;
  w.PutI64(iteration);
  return EncodeReply(Status::Ok(), w.Take());
}

// Finding 9: after a timeout the late reply was read as the next call's answer.
TEST(ClientHardening, ALateReplyIsNeverTheNextCallsAnswer) {
  ScriptedAgent agent;
  std::promise<void> first_timed_out;
  auto server = std::async(std::launch::async, [&] {
    int a = agent.Accept();
    auto q1 = RecvFrame(a, DeadlineIn(30s));
    first_timed_out.get_future().wait();
    (void)SendFrame(a, kReply, QueryReply(111));  // Too late.
    int b = agent.Accept();                       // The client connected again.
    auto q2 = RecvFrame(b, DeadlineIn(30s));
    (void)SendFrame(b, kReply, QueryReply(222));
    close(a);
    close(b);
    return q1.ok() && q2.ok();
  });
  auto c = AgentClient::Connect(agent.path(), 200ms);
  ASSERT_TRUE(c.ok());
  auto first = (*c)->CompleteIteration("j");
  EXPECT_EQ(first.status().code(), Code::kDeadlineExceeded) << first.status().ToString();
  first_timed_out.set_value();
  std::this_thread::sleep_for(50ms);  // Let the late reply arrive on the old connection.
  auto c2 = (*c)->CompleteIteration("j");
  ASSERT_TRUE(c2.ok()) << c2.status().ToString();
  EXPECT_EQ(*c2, 222);
  ASSERT_EQ(server.wait_for(30s), std::future_status::ready);
  EXPECT_TRUE(server.get());
}

// Finding 9: Open did not check that the shard returned is the one asked for.
TEST(ClientHardening, OpenRefusesAnotherShard) {
  ScriptedAgent agent;
  auto server = std::async(std::launch::async, [&] {
    int a = agent.Accept();
    auto q = RecvFrame(a, DeadlineIn(30s));
    Manifest m;
    m.job = "j";
    m.rank = 5;  // Asked for rank 0.
    m.iteration = 3;
    m.world_size = 8;
    m.entries.push_back({"t", Dtype::kUint8, {100}, 0, 100, 0});
    m.AssignOffsets();
    int fd = memfd_create("scripted", MFD_CLOEXEC);
    (void)ftruncate(fd, 4096);
    Writer w;
    w.PutString(m.Encode());
    PutCrcs(w, std::vector<uint32_t>(m.NumChunks(), 0));
    w.PutU32(0);
    w.PutString("scripted");
    w.PutU64(4096);
    (void)SendFrame(a, kReply, EncodeReply(Status::Ok(), w.Take()), fd);
    close(fd);
    auto closed = RecvFrame(a, DeadlineIn(30s));  // Waits for the client to go.
    close(a);
    return q.ok();
  });
  {
    auto c = AgentClient::Connect(agent.path(), 5s);
    ASSERT_TRUE(c.ok());
    auto shard = (*c)->Open("j", 0, 3);
    ASSERT_FALSE(shard.ok());
    EXPECT_NE(shard.status().message().find("rank 5"), std::string::npos)
        << shard.status().ToString();
  }
  ASSERT_EQ(server.wait_for(30s), std::future_status::ready);
  EXPECT_TRUE(server.get());
}

}  // namespace
}  // namespace gemini
