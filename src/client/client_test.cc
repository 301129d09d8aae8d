// The public C++ client (gemini/client.h) against an in-process agent: the
// Store behind a real AgentServer on a Unix socket (agent/testing.h).
#include "gemini/client.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <numeric>
#include <utility>

#include "agent/testing.h"
#include "store/client.h"

namespace gemini {
namespace {

using namespace std::chrono_literals;

class ClientTest : public InProcessAgentTest {
 protected:
  ClientTest() : InProcessAgentTest("client-test", 64 << 20) {}

  // Flips one bit of byte `offset` of (job, rank)'s newest committed shard in
  // the agent's own mapping of the slot.
  void Corrupt(const std::string& job, uint32_t rank, uint64_t offset) {
    auto shard = store_->Open(job, rank, -1);
    ASSERT_TRUE(shard.ok()) << shard.status().ToString();
    close(shard->slot.fd);
    shard->slot.data[offset] ^= 0x01;
  }
};

// What a trainer holds: tensors over several chunks, of several dtypes.
struct State {
  std::vector<float> weight;
  std::vector<int64_t> counts;
  std::vector<uint16_t> half;
  explicit State(int seed) : weight(5000), counts(300), half(77) {
    std::iota(weight.begin(), weight.end(), static_cast<float>(seed));
    std::iota(counts.begin(), counts.end(), int64_t{seed} << 32);
    std::iota(half.begin(), half.end(), static_cast<uint16_t>(seed));
  }
  std::vector<TensorView> Views() const {
    return {{"weight", "float32", {50, 100}, weight.data(), weight.size() * 4},
            {"counts", "int64", {300}, counts.data(), counts.size() * 8},
            {"half", "bfloat16", {7, 11}, half.data(), half.size() * 2}};
  }
};

Client::SaveOptions SmallChunks() {
  Client::SaveOptions o;
  o.chunk_bytes = 4096;  // Tensors span chunks, and share them.
  o.copy_threads = 2;
  return o;
}

template <typename Fn>
Error Thrown(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "no gemini::Error thrown";
  return Error(ErrorCode::kInternal, "none");
}

TEST_F(ClientTest, SaveAndReadBackEveryTensor) {
  State s(7);
  {
    Client c(path_);
    EXPECT_EQ(c.socket_path(), path_);
    EXPECT_EQ(c.CompleteIteration("job"), -1);
    c.Save("job", 0, 1, 1, State(1).Views(), SmallChunks());
    c.Save("job", 0, 1, 2, s.Views(), SmallChunks());
    EXPECT_EQ(c.CompleteIteration("job"), 2);
    EXPECT_EQ(c.WaitForIteration("job", 2, 1s), 2);
    EXPECT_NE(c.StatusJson().find("\"job\""), std::string::npos);
  }
  Client fresh(path_);  // A restarted trainer.
  Shard shard = fresh.Open("job", 0);
  EXPECT_EQ(shard.job(), "job");
  EXPECT_EQ(shard.rank(), 0u);
  EXPECT_EQ(shard.world_size(), 1u);
  EXPECT_EQ(shard.iteration(), 2);
  ASSERT_EQ(shard.tensors().size(), 3u);
  const TensorInfo& half = shard.Find("half");
  EXPECT_EQ(half.dtype, "bfloat16");
  EXPECT_EQ(half.shape, (std::vector<int64_t>{7, 11}));
  EXPECT_EQ(half.bytes, 154u);
  for (const TensorView& want : s.Views()) {
    for (int threads : {1, 3}) {
      std::vector<uint8_t> got(want.bytes);
      shard.Read(want.name, got.data(), got.size(), threads);
      EXPECT_EQ(std::memcmp(got.data(), want.data, want.bytes), 0) << want.name;
    }
  }
  std::vector<uint8_t> all(shard.data_bytes());
  shard.ReadAll(all.data(), all.size(), 2);
  EXPECT_EQ(std::memcmp(all.data() + shard.Find("counts").offset, s.counts.data(), 2400), 0);
  EXPECT_EQ(fresh.Open("job", 0, 1).iteration(), 1);  // An older iteration still held.
  EXPECT_NE(fresh.Open("job", 0, 1).crc(), shard.crc());

  // The shard outlives its client, and copies and moves share it.
  Shard kept = std::move(shard);
  fresh = Client(path_);
  std::vector<float> w(5000);
  kept.Read("weight", w.data(), w.size() * 4);
  EXPECT_EQ(w, s.weight);
  EXPECT_EQ(shard.iteration(), 2);  // Moving copied.
}

// What Python's gemini.Client saves (through the store's AgentClient) reads
// here, and the other way round.
TEST_F(ClientTest, ShardsAreThoseOfTheStoreClient) {
  auto store_client = AgentClient::Connect(path_);
  ASSERT_TRUE(store_client.ok());
  std::vector<float> w(1000, 2.5f);
  ASSERT_TRUE((*store_client)
                  ->Save("py", 0, 1, 4, {{"w", Dtype::kFloat32, {1000}, w.data(), 4000, 0}})
                  .ok());
  Client c(path_);
  std::vector<float> got(1000);
  c.Open("py", 0).Read("w", got.data(), 4000);
  EXPECT_EQ(got, w);
  c.Save("cc", 0, 1, 5, State(5).Views());
  auto shard = (*store_client)->Open("cc", 0, 5);
  ASSERT_TRUE(shard.ok()) << shard.status().ToString();
  EXPECT_EQ(shard->manifest.entries[1].name, "counts");
  EXPECT_EQ(shard->manifest.entries[1].dtype, Dtype::kInt64);
}

TEST_F(ClientTest, ACorruptedByteIsDataLossNeverWrongBytes) {
  State s(3);
  Client c(path_);
  c.Save("job", 0, 1, 1, s.Views(), SmallChunks());
  Shard shard = c.Open("job", 0);
  uint64_t at = shard.Find("weight").offset + 9000;  // In the weight's third chunk.
  Corrupt("job", 0, at);
  std::vector<float> w(5000);
  Error e = Thrown([&] { shard.Read("weight", w.data(), w.size() * 4); });
  EXPECT_EQ(e.code(), ErrorCode::kDataLoss) << e.what();
  EXPECT_NE(std::string(e.what()).find("DATA_LOSS: CRC32C mismatch in chunk 2"), std::string::npos)
      << e.what();
  std::vector<uint8_t> all(shard.data_bytes());
  EXPECT_EQ(Thrown([&] { shard.ReadAll(all.data(), all.size()); }).code(), ErrorCode::kDataLoss);
  // A tensor in other chunks still reads.
  std::vector<uint16_t> half(77);
  shard.Read("half", half.data(), half.size() * 2);
  EXPECT_EQ(half, s.half);
}

// A shard opened before two more saves of the rank: its slot now holds a newer
// iteration, and the old shard's CRCs refuse those bytes.
TEST_F(ClientTest, AShardWhoseSlotWasReusedIsDataLoss) {
  Client c(path_);
  c.Save("job", 0, 1, 1, State(1).Views(), SmallChunks());
  Shard old = c.Open("job", 0);
  c.Save("job", 0, 1, 2, State(2).Views(), SmallChunks());
  c.Save("job", 0, 1, 3, State(3).Views(), SmallChunks());
  std::vector<float> w(5000);
  EXPECT_EQ(Thrown([&] { old.Read("weight", w.data(), w.size() * 4); }).code(),
            ErrorCode::kDataLoss);
  c.Open("job", 0).Read("weight", w.data(), w.size() * 4);
  EXPECT_EQ(w, State(3).weight);
}

TEST_F(ClientTest, AWrongJobRankIterationOrTensorIsNotFound) {
  Client c(path_);
  c.Save("job", 0, 2, 1, State(1).Views());
  Error e = Thrown([&] { c.Open("other", 0); });
  EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  EXPECT_NE(std::string(e.what()).find("'other'"), std::string::npos) << e.what();
  e = Thrown([&] { c.Open("job", 1); });  // Rank 1 of 2 saved nothing.
  EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  EXPECT_NE(std::string(e.what()).find("rank 1"), std::string::npos) << e.what();
  EXPECT_EQ(Thrown([&] { c.Open("job", 0, 5); }).code(), ErrorCode::kNotFound);
  e = Thrown([&] { c.Open("job", 0).Find("nope"); });
  EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  EXPECT_NE(std::string(e.what()).find("'nope'"), std::string::npos) << e.what();
  // The iteration is not complete until rank 1 saves it.
  EXPECT_EQ(c.CompleteIteration("job"), -1);
  EXPECT_EQ(Thrown([&] { c.WaitForIteration("job", 1, 20ms); }).code(),
            ErrorCode::kDeadlineExceeded);
  c.Save("job", 1, 2, 1, State(2).Views());
  EXPECT_EQ(c.WaitForIteration("job", 1, std::chrono::milliseconds::max()), 1);
  c.DropJob("job");
  EXPECT_EQ(Thrown([&] { c.Open("job", 0); }).code(), ErrorCode::kNotFound);
}

TEST_F(ClientTest, NoAgentIsUnavailable) {
  std::string path = "/tmp/gemini-no-such-agent-" + std::to_string(getpid()) + ".sock";
  Error e = Thrown([&] { Client c(path); });
  EXPECT_EQ(e.code(), ErrorCode::kUnavailable);
  EXPECT_NE(std::string(e.what()).find("UNAVAILABLE: cannot reach the gemini agent at " + path),
            std::string::npos)
      << e.what();
  // An agent that goes away: the next call says so, and connects again once it is back.
  Client c(path_);
  server_->Stop();
  EXPECT_EQ(Thrown([&] { c.CompleteIteration("job"); }).code(), ErrorCode::kUnavailable);
}

TEST_F(ClientTest, BadInputIsInvalidArgument) {
  Client c(path_);
  State s(1);
  auto bad = [&](std::vector<TensorView> tensors, const std::string& says, uint32_t rank = 0,
                 const std::string& job = "job", Client::SaveOptions o = {}) {
    Error e = Thrown([&] { c.Save(job, rank, 2, 1, tensors, o); });
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
    EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
  };
  auto views = s.Views();
  views[0].dtype = "float33";
  bad(views, "unknown dtype");
  views = s.Views();
  views[1].data = nullptr;
  bad(views, "tensor 'counts': null data");
  views = s.Views();
  views[2].name = "weight";
  bad(views, "tensor 'weight' given twice");
  views = s.Views();
  views[2].bytes += 2;  // More than the shape holds.
  bad(views, "outside its 154-byte tensor");
  bad(s.Views(), "rank 2 not in world of 2", 2);
  bad(s.Views(), "job name", 0, "no/slashes");
  Client::SaveOptions o;
  o.copy_threads = 0;
  bad(s.Views(), "threads must be 1 to 64", 0, "job", o);
  o = {};
  o.chunk_bytes = 100;
  bad(s.Views(), "chunk size", 0, "job", o);
  EXPECT_EQ(Thrown([&] { Client(path_, 0ms); }).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(Thrown([&] { Client(path_, std::chrono::milliseconds::max()); }).code(),
            ErrorCode::kInvalidArgument);

  c.Save("job", 0, 2, 1, s.Views());
  Shard shard = c.Open("job", 0);
  std::vector<float> w(4999);
  Error e = Thrown([&] { shard.Read("weight", w.data(), w.size() * 4); });
  EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(std::string(e.what()).find("tensor 'weight' has 20000 bytes; the destination holds"),
            std::string::npos)
      << e.what();
  EXPECT_EQ(Thrown([&] { shard.Read("weight", nullptr, 20000); }).code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(Thrown([&] { shard.ReadAll(w.data(), 4); }).code(), ErrorCode::kInvalidArgument);
  w.resize(5000);
  EXPECT_EQ(Thrown([&] { shard.Read("weight", w.data(), 20000, 65); }).code(),
            ErrorCode::kInvalidArgument);

  EXPECT_EQ(ElementSize("bfloat16"), 2u);
  EXPECT_EQ(ElementSize("complex128"), 16u);
  EXPECT_EQ(Thrown([&] { ElementSize("float33"); }).code(), ErrorCode::kInvalidArgument);
  EXPECT_STREQ(ErrorCodeName(ErrorCode::kDataLoss), "DATA_LOSS");
  EXPECT_STREQ(ErrorCodeName(static_cast<ErrorCode>(99)), "UNKNOWN");
}

TEST_F(ClientTest, AMovedFromClientIsFailedPrecondition) {
  Client c(path_);
  Client other = std::move(c);
  EXPECT_EQ(Thrown([&] { c.CompleteIteration("job"); }).code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(Thrown([&] { c.socket_path(); }).code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(other.CompleteIteration("job"), -1);
}

}  // namespace
}  // namespace gemini
