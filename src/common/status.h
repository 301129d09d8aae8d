// Status and Result<T>: errors as values.
//
// Every fallible call in the library returns a Status (or a Result<T> holding
// either a value or a non-OK Status). Codes say what the caller can do about it:
//   kUnavailable        peer or service down; retry may help
//   kDeadlineExceeded   a wait ran past its deadline
//   kAborted            lease lost, stale epoch, concurrent writer; start over
//   kDataLoss           checksum mismatch or corrupted bytes; do not use the data
//   kFailedPrecondition the state does not allow this now (e.g. nothing committed)
//   kInvalidArgument    bad input from a user or a peer
//   kResourceExhausted  memory budget or disk full
//   kNotFound           no such job / rank / iteration
//   kInternal           a bug or an unexpected OS error
// Status is a small value type; copying it is cheap. Not thread-safe to mutate
// one instance from several threads (as for any value).
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace gemini {

enum class Code {
  kOk = 0,
  kInvalidArgument,
  kNotFound,
  kFailedPrecondition,
  kResourceExhausted,
  kDataLoss,
  kUnavailable,
  kDeadlineExceeded,
  kAborted,
  kInternal,
};

const char* CodeName(Code code);

class Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // "DATA_LOSS: chunk 3 CRC32C mismatch ..." or "OK".
  std::string ToString() const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
inline Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
inline Status FailedPrecondition(std::string m) {
  return {Code::kFailedPrecondition, std::move(m)};
}
inline Status ResourceExhausted(std::string m) { return {Code::kResourceExhausted, std::move(m)}; }
inline Status DataLoss(std::string m) { return {Code::kDataLoss, std::move(m)}; }
inline Status Unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }
inline Status DeadlineExceeded(std::string m) { return {Code::kDeadlineExceeded, std::move(m)}; }
inline Status Aborted(std::string m) { return {Code::kAborted, std::move(m)}; }
inline Status Internal(std::string m) { return {Code::kInternal, std::move(m)}; }
// An OS error: "<what>: <strerror(err)>", code chosen from errno.
Status ErrnoStatus(const std::string& what, int err);

template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {}  // NOLINT: must be non-OK

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace gemini

#define GEMINI_RETURN_IF_ERROR(expr) \
  do {                               \
    ::gemini::Status _st = (expr);   \
    if (!_st.ok()) return _st;       \
  } while (0)

#define GEMINI_CONCAT_INNER(a, b) a##b
#define GEMINI_CONCAT(a, b) GEMINI_CONCAT_INNER(a, b)
#define GEMINI_ASSIGN_OR_RETURN(lhs, expr) \
  GEMINI_ASSIGN_OR_RETURN_IMPL(GEMINI_CONCAT(_res_, __LINE__), lhs, expr)
#define GEMINI_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return tmp.status();                \
  lhs = std::move(tmp).value()
