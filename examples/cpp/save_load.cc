// A C++ trainer's checkpoints in Gemini: saves a few iterations of some
// tensors into the machine's agent, reads the newest complete one back and
// checks every byte. Run with `gemini agent` up (GEMINI_SOCKET names its
// socket if not /run/gemini/agent.sock):
//
//   save_load [--job NAME] [--iterations N] [--rank R --world-size W]
//
// With W > 1, start W of them (ranks 0..W-1): each saves its own shard, and
// an iteration is complete once every rank has saved it. Exits 0 when the
// bytes read back are the bytes saved.
#include <gemini/client.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

namespace {

// The trainer's state at `iteration`: what a model and an optimizer step
// would have left (values exact in float32, so anybody can recompute them).
struct State {
  std::vector<float> weight;     // [256, 64]
  std::vector<float> bias;       // [64]
  std::vector<uint16_t> moment;  // bfloat16 [1000]: the top 16 bits of a float32
  int64_t step = 0;

  State(int64_t iteration, uint32_t rank) : weight(256 * 64), bias(64), moment(1000) {
    for (size_t i = 0; i < weight.size(); ++i)
      weight[i] = static_cast<float>(iteration * 1000 + rank * 100 + static_cast<int64_t>(i % 97));
    for (size_t i = 0; i < bias.size(); ++i) bias[i] = static_cast<float>(iteration) - i * 0.5f;
    for (size_t i = 0; i < moment.size(); ++i) {
      float f = static_cast<float>(i % 200 + iteration);
      uint32_t bits;
      std::memcpy(&bits, &f, sizeof bits);
      moment[i] = static_cast<uint16_t>(bits >> 16);  // Exact: small integers.
    }
    step = iteration;
  }

  std::vector<gemini::TensorView> Views() const {
    return {{"model.weight", "float32", {256, 64}, weight.data(), weight.size() * sizeof(float)},
            {"model.bias", "float32", {64}, bias.data(), bias.size() * sizeof(float)},
            {"optim.moment", "bfloat16", {1000}, moment.data(), moment.size() * sizeof(uint16_t)},
            {"step", "int64", {}, &step, sizeof step}};
  }
};

int Run(const std::string& job, int64_t iterations, uint32_t rank, uint32_t world_size) {
  gemini::Client client;  // $GEMINI_SOCKET, else /run/gemini/agent.sock.
  std::cout << "connected to the agent at " << client.socket_path() << " (gemini "
            << gemini::Version() << ")\n";
  for (int64_t it = 1; it <= iterations; ++it) {
    State state(it, rank);  // ... a training step would compute it ...
    std::vector<gemini::TensorView> tensors = state.Views();
    auto t0 = std::chrono::steady_clock::now();
    client.Save(job, rank, world_size, it, tensors);  // Committed when it returns.
    std::chrono::duration<double, std::milli> ms = std::chrono::steady_clock::now() - t0;
    std::cout << "saved iteration " << it << " of job '" << job << "' rank " << rank << " ("
              << tensors.size() << " tensors) in " << ms.count() << " ms\n";
  }

  // A restart: resume from the newest iteration every rank has saved.
  int64_t newest = client.WaitForIteration(job, iterations, std::chrono::seconds(60));
  gemini::Shard shard = client.Open(job, rank, newest);
  std::cout << "newest complete iteration: " << newest << "; rank " << rank << "'s shard holds "
            << shard.data_bytes() << " bytes:\n";
  State expected(newest, rank);
  int bad = 0;
  for (const gemini::TensorView& want : expected.Views()) {
    const gemini::TensorInfo& info = shard.Find(want.name);
    std::vector<unsigned char> got(info.bytes);
    shard.Read(want.name, got.data(), got.size());  // Every chunk's CRC32C checked.
    bool same = info.dtype == want.dtype && info.shape == want.shape && got.size() == want.bytes &&
                std::memcmp(got.data(), want.data, want.bytes) == 0;
    bad += !same;
    std::cout << "  " << info.name << " " << info.dtype << "[";
    for (size_t d = 0; d < info.shape.size(); ++d) std::cout << (d ? "," : "") << info.shape[d];
    std::cout << "] " << info.bytes << " bytes: " << (same ? "as saved" : "DIFFERENT") << "\n";
  }
  std::cout << (bad == 0 ? "read back iteration " + std::to_string(newest) + ": every byte as saved"
                         : std::to_string(bad) + " tensors differ")
            << "\n";
  return bad == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string job = "cpp-example";
  int64_t iterations = 3;
  uint32_t rank = 0, world_size = 1;
  for (int i = 1; i < argc; i += 2) {
    std::string flag = argv[i], value = i + 1 < argc ? argv[i + 1] : "";
    if (flag == "--job" && !value.empty()) {
      job = value;
    } else if (flag == "--iterations" && !value.empty()) {
      iterations = std::strtoll(value.c_str(), nullptr, 10);
    } else if (flag == "--rank" && !value.empty()) {
      rank = static_cast<uint32_t>(std::strtoul(value.c_str(), nullptr, 10));
    } else if (flag == "--world-size" && !value.empty()) {
      world_size = static_cast<uint32_t>(std::strtoul(value.c_str(), nullptr, 10));
    } else {
      std::cerr << "usage: save_load [--job NAME] [--iterations N] [--rank R --world-size W]\n";
      return 2;
    }
  }
  try {
    return Run(job, iterations, rank, world_size);
  } catch (const gemini::Error& e) {  // The API's one exception type.
    std::cerr << "save_load: " << e.what() << "\n";
    return 1;
  }
}
