// gemini/client.h: the C++ client of Gemini's in-memory checkpoint store, for
// trainers written in C++ (Python trainers use gemini.torch / gemini.Client).
//
// The machine's `gemini agent` owns the checkpoint memory. A trainer rank saves
// its tensors there every iteration, straight into a shared-memory slot (one
// copy, a CRC32C per chunk computed on the way), and reads them back after a
// restart; every chunk is checked again on the way out, and a mismatch is an
// error, never wrong bytes.
//
//   #include <gemini/client.h>
//
//   gemini::Client client;  // the agent at $GEMINI_SOCKET, else /run/gemini/agent.sock
//   std::vector<float> w(1024);
//   client.Save("myjob", /*rank=*/0, /*world_size=*/1, /*iteration=*/7,
//               {{"w", "float32", {1024}, w.data(), w.size() * sizeof(float)}});
//   gemini::Shard shard = client.Open("myjob", /*rank=*/0);  // its newest iteration
//   shard.Read("w", w.data(), w.size() * sizeof(float));     // CRC32C-checked
//
// Build with CMake against the installed Python package (docs/cpp-client.md):
//   find_package(gemini CONFIG REQUIRED)
//   target_link_libraries(app PRIVATE gemini::client)
//   cmake -DCMAKE_PREFIX_PATH="$(python -c 'import gemini; print(gemini.cmake_prefix_path)')" ...
//
// Words: a job's ranks each save one *shard* per *iteration*: (job, rank,
// iteration) names it. The agent keeps two *slots* per (job, rank): the newest
// committed shard and the one being written. An iteration is *complete* when
// every rank of the job (world_size of them) has committed it; a restart
// resumes from the newest complete iteration.
//
// Errors: every call that can fail throws gemini::Error (a std::runtime_error
// carrying an ErrorCode, the codes of Python's GeminiError.code); no other
// exception leaves this API (running out of memory is kResourceExhausted).
// Bad input (an unknown dtype, a null pointer, sizes that disagree with the
// shape, a rank outside the world, a destination too small) is a
// kInvalidArgument error, never a crash. What cannot be checked is the
// caller's promise: every pointer addresses as many bytes as it says.
//
// Threads: one Client may be used from several threads (calls to the agent are
// serialized; the data copies run in parallel). A Shard is an immutable value
// (copies share the mapping) and may be read from several threads at once.
//
// Only standard headers are used; the library is C++17-compatible and built
// with the GNU C++ library's C++11 ABI (-D_GLIBCXX_USE_CXX11_ABI=1, the default).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace gemini {

// What went wrong, and what the caller can do about it.
enum class ErrorCode {
  kInvalidArgument = 1,  // bad input: fix the call
  kNotFound,             // no such job, rank, iteration or tensor
  kFailedPrecondition,   // the state does not allow this now (e.g. a moved-from Client)
  kResourceExhausted,    // the agent's memory budget (or this process's memory) is used up
  kDataLoss,             // a CRC32C mismatch: the checkpoint is corrupted; do not use the bytes
  kUnavailable,          // the agent is not running or went away; retrying may help
  kDeadlineExceeded,     // a wait ran past its deadline
  kAborted,              // a concurrent writer or a newer timeline; start over
  kInternal,             // a bug or an unexpected OS error
};

// "INVALID_ARGUMENT", "DATA_LOSS", ...: the names Python's GeminiError.code has.
const char* ErrorCodeName(ErrorCode code) noexcept;

// The one exception type of this API. what() is "DATA_LOSS: <message>".
class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message);
  ~Error() override;
  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

// The agent's socket: $GEMINI_SOCKET, else /run/gemini/agent.sock (as Python's
// gemini.default_socket_path()).
std::string DefaultSocketPath();

// Gemini's version, e.g. "0.5.0".
const char* Version() noexcept;

// Bytes of one element of `dtype`; throws kInvalidArgument for an unknown name.
// Dtypes are torch's names without "torch.": uint8 int8 int16 int32 int64
// uint16 uint32 uint64 float16 bfloat16 float32 float64 bool complex32
// complex64 complex128 float8_e4m3fn float8_e5m2 float8_e4m3fnuz float8_e5m2fnuz
// float8_e8m0fnu.
uint64_t ElementSize(std::string_view dtype);

// A tensor to save: `bytes` bytes at `data` (not owned; they must stay
// unchanged until Save returns). For a whole tensor, `bytes` is the product of
// `shape` times ElementSize(dtype). A part of a tensor may be saved instead:
// its bytes [tensor_offset, tensor_offset + bytes) (how data-parallel ranks
// split one replicated state).
struct TensorView {
  std::string name;  // Unique within the shard.
  std::string dtype;
  std::vector<int64_t> shape;  // At most 8 dimensions.
  const void* data = nullptr;
  uint64_t bytes = 0;
  uint64_t tensor_offset = 0;
};

// A tensor held by a shard, as saved.
struct TensorInfo {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  uint64_t bytes = 0;          // As saved (the whole tensor, or a part).
  uint64_t tensor_offset = 0;  // Where the saved bytes start in the whole tensor.
  uint64_t offset = 0;         // Where they lie in the shard (the layout ReadAll writes).
};

// A committed shard opened for reading (Client::Open). Reads copy bytes out of
// the agent's slot, checking the CRC32C of every chunk they touch (kDataLoss
// on a mismatch; the destination must then be discarded). The slot stays
// mapped while a Shard (or a copy) lives, even after its Client is gone: read
// soon and drop it. The agent reuses a slot for a newer iteration two saves of
// the rank later; reads of the older Shard then fail with kDataLoss: Open again.
class Shard {
 public:
  // Copies share the mapping. Moving copies too, so that no Shard is ever empty.
  Shard(const Shard&) = default;
  Shard& operator=(const Shard&) = default;

  const std::string& job() const noexcept;
  uint32_t rank() const noexcept;
  uint32_t world_size() const noexcept;
  int64_t iteration() const noexcept;
  const std::vector<TensorInfo>& tensors() const noexcept;
  // Size of the shard's data: the tensors at their offsets, 64-byte aligned.
  uint64_t data_bytes() const noexcept;
  // A CRC32C of the shard's chunk CRCs: equal shards, equal values (Python's
  // Shard.crc).
  uint32_t crc() const noexcept;

  // The tensor named `name`; kNotFound naming the shard if there is none.
  const TensorInfo& Find(std::string_view name) const;
  // Copies the tensor's saved bytes (Find(name).bytes of them) to dst, which
  // holds dst_bytes. `threads` (1 to 64) split the copy.
  void Read(std::string_view name, void* dst, uint64_t dst_bytes, int threads = 1) const;
  // Copies the whole shard (data_bytes(); each tensor at its offset) to dst.
  void ReadAll(void* dst, uint64_t dst_bytes, int threads = 1) const;

 private:
  friend class Client;
  struct Impl;
  explicit Shard(std::shared_ptr<const Impl> impl);
  std::shared_ptr<const Impl> impl_;
};

// A connection to the machine's agent.
class Client {
 public:
  struct SaveOptions {
    int copy_threads = 1;            // Threads copying into the slot (1 to 64).
    uint64_t chunk_bytes = 4 << 20;  // Bytes per CRC32C (4 KiB to 1 GiB).
    // How long a save may wait for slower ranks to complete the iteration it
    // would overwrite before failing with kDeadlineExceeded.
    std::chrono::milliseconds wait = std::chrono::minutes(2);
  };

  // Connects to the agent at socket_path (empty: DefaultSocketPath()); throws
  // kUnavailable naming the path when no agent listens there. `call_timeout`
  // (1 ms to 24 h): how long a short call (commit, open, query) waits for its
  // reply.
  explicit Client(const std::string& socket_path = "",
                  std::chrono::milliseconds call_timeout = std::chrono::seconds(30));
  ~Client();
  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const std::string& socket_path() const;

  // Saves `tensors` as the shard (job, rank, iteration) of a job of world_size
  // ranks and commits it: when Save returns, the agent holds it. Job names are
  // 1 to 256 of [A-Za-z0-9._-], not starting with '.'. A job has one world
  // size. Saving an iteration at or below the rank's newest drops the newer
  // ones (a restart from an earlier iteration). kResourceExhausted when the
  // agent's budget cannot hold the shard.
  void Save(const std::string& job, uint32_t rank, uint32_t world_size, int64_t iteration,
            const std::vector<TensorView>& tensors);
  void Save(const std::string& job, uint32_t rank, uint32_t world_size, int64_t iteration,
            const std::vector<TensorView>& tensors, const SaveOptions& options);

  // The newest iteration every rank of the job has committed, or -1.
  int64_t CompleteIteration(const std::string& job);
  // Waits until the job's complete iteration is at least `iteration` and
  // returns it; kDeadlineExceeded after `timeout`.
  int64_t WaitForIteration(const std::string& job, int64_t iteration,
                           std::chrono::milliseconds timeout);

  // Opens rank's committed shard of `iteration` (-1: the rank's newest); to
  // resume, open CompleteIteration(job). kNotFound naming the job, rank or
  // iteration the agent does not hold.
  Shard Open(const std::string& job, uint32_t rank, int64_t iteration = -1);
  // On several machines: has the agent fetch rank's shard of `iteration` (-1:
  // the newest) from a peer that holds a copy, CRC32C-checked, so that Open
  // finds it here; returns the iteration fetched.
  int64_t Fetch(const std::string& job, uint32_t rank, int64_t iteration = -1);
  // Drops every shard of the job from the agent's memory.
  void DropJob(const std::string& job);
  // The agent's status as JSON text (the fields `gemini status --json` prints).
  std::string StatusJson();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gemini
