// The public C++ client (include/gemini/client.h) over the store's
// AgentClient: dtype names to Dtype, Status to gemini::Error, the checks
// AgentClient leaves to its callers (null pointers, duplicate names, thread
// counts), and shards that keep their slot mapped while they live.
#include "gemini/client.h"

#include <algorithm>
#include <new>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "common/crc32c.h"
#include "common/paths.h"
#include "store/chunks.h"
#include "store/client.h"

namespace gemini {
namespace {

// ErrorCode is Code without kOk, value for value: a cast converts them.
static_assert(
    static_cast<int>(ErrorCode::kInvalidArgument) == static_cast<int>(Code::kInvalidArgument) &&
    static_cast<int>(ErrorCode::kNotFound) == static_cast<int>(Code::kNotFound) &&
    static_cast<int>(ErrorCode::kFailedPrecondition) ==
        static_cast<int>(Code::kFailedPrecondition) &&
    static_cast<int>(ErrorCode::kResourceExhausted) == static_cast<int>(Code::kResourceExhausted) &&
    static_cast<int>(ErrorCode::kDataLoss) == static_cast<int>(Code::kDataLoss) &&
    static_cast<int>(ErrorCode::kUnavailable) == static_cast<int>(Code::kUnavailable) &&
    static_cast<int>(ErrorCode::kDeadlineExceeded) == static_cast<int>(Code::kDeadlineExceeded) &&
    static_cast<int>(ErrorCode::kAborted) == static_cast<int>(Code::kAborted) &&
    static_cast<int>(ErrorCode::kInternal) == static_cast<int>(Code::kInternal));

constexpr int kMaxThreads = 64;
// Longer waits are this long (a deadline beyond steady_clock's range would overflow).
constexpr std::chrono::hours kForever(24 * 365 * 10);

// A non-OK status as the API's exception.
Error ToError(const Status& st) { return Error(static_cast<ErrorCode>(st.code()), st.message()); }

void Check(const Status& st) {
  if (!st.ok()) throw ToError(st);
}

template <typename T>
T Unwrap(Result<T> r) {
  if (!r.ok()) throw ToError(r.status());
  return std::move(r).value();
}

// fn(), letting no exception but gemini::Error out.
template <typename Fn>
auto Guard(Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Error&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw Error(ErrorCode::kResourceExhausted, "out of memory");
  } catch (const std::exception& e) {
    throw Error(ErrorCode::kInternal, e.what());
  } catch (...) {
    throw Error(ErrorCode::kInternal, "unknown exception");
  }
}

void CheckThreads(int threads) {
  if (threads < 1 || threads > kMaxThreads)
    throw Error(ErrorCode::kInvalidArgument, "threads must be 1 to " + std::to_string(kMaxThreads) +
                                                 ", not " + std::to_string(threads));
}

// dst of dst_bytes must take `need` bytes.
void CheckDestination(const void* dst, uint64_t dst_bytes, uint64_t need, const std::string& what) {
  if (dst_bytes < need)
    throw Error(ErrorCode::kInvalidArgument, what + " has " + std::to_string(need) +
                                                 " bytes; the destination holds " +
                                                 std::to_string(dst_bytes));
  if (dst == nullptr && need > 0)
    throw Error(ErrorCode::kInvalidArgument, "null destination for " + what);
}

std::vector<TensorSource> Sources(const std::vector<TensorView>& tensors) {
  std::vector<TensorSource> out;
  out.reserve(tensors.size());
  std::unordered_set<std::string_view> names;
  for (const TensorView& t : tensors) {
    if (!names.insert(t.name).second)
      throw Error(ErrorCode::kInvalidArgument, "tensor '" + t.name + "' given twice");
    if (t.data == nullptr && t.bytes > 0)
      throw Error(ErrorCode::kInvalidArgument, "tensor '" + t.name + "': null data");
    auto dtype = DtypeFromName(t.dtype);
    if (!dtype.ok())
      throw Error(ErrorCode::kInvalidArgument,
                  "tensor '" + t.name + "': " + dtype.status().message());
    out.push_back({t.name, *dtype, t.shape, t.data, t.bytes, t.tensor_offset});
  }
  return out;
}

}  // namespace

const char* ErrorCodeName(ErrorCode code) noexcept {
  int c = static_cast<int>(code);
  return c >= static_cast<int>(ErrorCode::kInvalidArgument) &&
                 c <= static_cast<int>(ErrorCode::kInternal)
             ? CodeName(static_cast<Code>(c))
             : "UNKNOWN";
}

Error::Error(ErrorCode code, const std::string& message)
    : std::runtime_error(std::string(ErrorCodeName(code)) + ": " + message), code_(code) {}

Error::~Error() = default;

const char* Version() noexcept { return GEMINI_VERSION; }

uint64_t ElementSize(std::string_view dtype) {
  return Guard([&] { return static_cast<uint64_t>(DtypeSize(Unwrap(DtypeFromName(dtype)))); });
}

// --- Shard ---

struct Shard::Impl {
  OpenShard shard;
  std::vector<TensorInfo> tensors;
  std::unordered_map<std::string_view, size_t> by_name;  // Views of tensors[i].name.
};

Shard::Shard(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

const std::string& Shard::job() const noexcept { return impl_->shard.manifest.job; }
uint32_t Shard::rank() const noexcept { return impl_->shard.manifest.rank; }
uint32_t Shard::world_size() const noexcept { return impl_->shard.manifest.world_size; }
int64_t Shard::iteration() const noexcept { return impl_->shard.manifest.iteration; }
const std::vector<TensorInfo>& Shard::tensors() const noexcept { return impl_->tensors; }
uint64_t Shard::data_bytes() const noexcept { return impl_->shard.manifest.data_bytes; }

uint32_t Shard::crc() const noexcept {
  const std::vector<uint32_t>& crcs = impl_->shard.crcs;
  return Crc32c(crcs.data(), crcs.size() * sizeof(uint32_t), 0);
}

const TensorInfo& Shard::Find(std::string_view name) const {
  return Guard([&]() -> const TensorInfo& {
    auto it = impl_->by_name.find(name);
    if (it == impl_->by_name.end())
      throw Error(ErrorCode::kNotFound, "no tensor '" + std::string(name) + "' in rank " +
                                            std::to_string(rank()) + "'s shard of iteration " +
                                            std::to_string(iteration()) + " of job '" + job() +
                                            "'");
    return impl_->tensors[it->second];
  });
}

void Shard::Read(std::string_view name, void* dst, uint64_t dst_bytes, int threads) const {
  Guard([&] {
    const TensorInfo& t = Find(name);
    CheckDestination(dst, dst_bytes, t.bytes, "tensor '" + t.name + "'");
    CheckThreads(threads);
    const OpenShard& s = impl_->shard;
    Check(CopyRangeVerified(static_cast<uint8_t*>(dst), s.data, s.manifest.data_bytes,
                            s.manifest.chunk_size, s.crcs, t.offset, t.bytes, threads));
  });
}

void Shard::ReadAll(void* dst, uint64_t dst_bytes, int threads) const {
  Guard([&] {
    CheckDestination(dst, dst_bytes, data_bytes(), "the shard");
    CheckThreads(threads);
    Check(AgentClient::ReadInto(impl_->shard, static_cast<uint8_t*>(dst), threads));
  });
}

// --- Client ---

struct Client::Impl {
  std::string socket_path;
  std::unique_ptr<AgentClient> agent;
};

namespace {

// The Client's Impl, or kFailedPrecondition for a moved-from Client. (A
// template: Client::Impl is private.)
template <typename Impl>
Impl& Live(const std::unique_ptr<Impl>& impl) {
  if (!impl) throw Error(ErrorCode::kFailedPrecondition, "the Client was moved from");
  return *impl;
}

}  // namespace

Client::Client(const std::string& socket_path, std::chrono::milliseconds call_timeout) {
  Guard([&] {
    if (call_timeout.count() <= 0 || call_timeout > std::chrono::hours(24))
      throw Error(ErrorCode::kInvalidArgument, "call_timeout must be 1 ms to 24 h");
    std::string path = socket_path.empty() ? DefaultSocketPath() : socket_path;
    auto agent = Unwrap(AgentClient::Connect(path, call_timeout));
    impl_ = std::make_unique<Impl>(Impl{std::move(path), std::move(agent)});
  });
}

Client::~Client() = default;
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;

const std::string& Client::socket_path() const {
  return Guard([&]() -> const std::string& { return Live(impl_).socket_path; });
}

void Client::Save(const std::string& job, uint32_t rank, uint32_t world_size, int64_t iteration,
                  const std::vector<TensorView>& tensors) {
  Save(job, rank, world_size, iteration, tensors, SaveOptions{});
}

void Client::Save(const std::string& job, uint32_t rank, uint32_t world_size, int64_t iteration,
                  const std::vector<TensorView>& tensors, const SaveOptions& options) {
  Guard([&] {
    AgentClient& agent = *Live(impl_).agent;
    CheckThreads(options.copy_threads);
    if (options.wait.count() < 0 || options.wait.count() > UINT32_MAX)
      throw Error(ErrorCode::kInvalidArgument, "wait must be 0 to 2^32-1 ms");
    ::gemini::SaveOptions o;
    o.copy_threads = options.copy_threads;
    o.chunk_size = options.chunk_bytes;
    o.wait = options.wait;
    Check(agent.Save(job, rank, world_size, iteration, Sources(tensors), o));
  });
}

int64_t Client::CompleteIteration(const std::string& job) {
  return Guard([&] { return Unwrap(Live(impl_).agent->CompleteIteration(job)); });
}

int64_t Client::WaitForIteration(const std::string& job, int64_t iteration,
                                 std::chrono::milliseconds timeout) {
  return Guard([&] {
    auto deadline = std::chrono::steady_clock::now() +
                    std::clamp<std::chrono::milliseconds>(timeout, timeout.zero(), kForever);
    auto pause = std::chrono::milliseconds(1);
    for (;;) {
      int64_t complete = CompleteIteration(job);
      if (complete >= iteration) return complete;
      auto now = std::chrono::steady_clock::now();
      if (now >= deadline)
        throw Error(ErrorCode::kDeadlineExceeded, "job '" + job + "' has completed iteration " +
                                                      std::to_string(complete) + ", not yet " +
                                                      std::to_string(iteration) + ", after " +
                                                      std::to_string(timeout.count()) + " ms");
      std::this_thread::sleep_for(
          std::min<std::chrono::steady_clock::duration>(pause, deadline - now));
      pause = std::min(pause * 2, std::chrono::milliseconds(50));
    }
  });
}

Shard Client::Open(const std::string& job, uint32_t rank, int64_t iteration) {
  return Guard([&] {
    auto impl = std::make_shared<Shard::Impl>();
    impl->shard = Unwrap(Live(impl_).agent->Open(job, rank, iteration));
    const Manifest& m = impl->shard.manifest;
    if (m.is_fragment())  // The agent rebuilds fragments (Fetch) rather than lend them.
      throw Error(ErrorCode::kFailedPrecondition,
                  "rank " + std::to_string(rank) + "'s shard of job '" + job +
                      "' is held here as a Reed-Solomon fragment; Fetch it first");
    impl->tensors.reserve(m.entries.size());
    for (const TensorEntry& e : m.entries)
      impl->tensors.push_back(
          {e.name, DtypeName(e.dtype), e.shape, e.length, e.tensor_offset, e.offset});
    for (size_t i = 0; i < impl->tensors.size(); ++i)
      impl->by_name.emplace(impl->tensors[i].name, i);  // The first of a name wins.
    return Shard(std::move(impl));
  });
}

int64_t Client::Fetch(const std::string& job, uint32_t rank, int64_t iteration) {
  return Guard([&] { return Unwrap(Live(impl_).agent->Fetch(job, rank, iteration)); });
}

void Client::DropJob(const std::string& job) {
  Guard([&] { Check(Live(impl_).agent->DropJob(job)); });
}

std::string Client::StatusJson() {
  return Guard([&] { return Unwrap(Live(impl_).agent->StatusJson()); });
}

}  // namespace gemini
