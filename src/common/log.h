// Levelled logging to stderr: GEMINI_LOG(INFO) << "rank " << r << ...;
// Level from the GEMINI_LOG_LEVEL environment variable (DEBUG, INFO, WARN,
// ERROR; default WARN so the library is quiet). Thread-safe: each line is
// written with one write(2). Lines name their object: "[agent] rank 3 ...".
#pragma once

#include <atomic>
#include <cstdint>
#include <sstream>

namespace gemini {

enum class LogLevel { DEBUG = 0, INFO = 1, WARN = 2, ERROR = 3 };

LogLevel CurrentLogLevel();
// True at most once per `seconds` for one `last` (a call site's own clock).
bool LogRateLimit(std::atomic<int64_t>& last, int seconds);
void SetLogLevel(LogLevel level);

class LogLine {
 public:
  explicit LogLine(LogLevel level) : level_(level) {}
  ~LogLine();
  LogLine& self() { return *this; }
  template <typename T>
  LogLine& operator<<(const T& v) {
    os_ << v;
    return *this;
  }

 private:
  LogLevel level_;
  std::ostringstream os_;
};

}  // namespace gemini

namespace gemini {
// Makes `cond ? (void)0 : LogVoidify() & line << ...` well-typed.
struct LogVoidify {
  void operator&(LogLine&) {}
};
}  // namespace gemini

#define GEMINI_LOG(level)                                   \
  (::gemini::LogLevel::level < ::gemini::CurrentLogLevel()) \
      ? (void)0                                             \
      : ::gemini::LogVoidify() & ::gemini::LogLine(::gemini::LogLevel::level)

// GEMINI_LOG that writes at most one line per `seconds` from this call site:
// for what a hostile or broken peer can repeat as fast as it likes.
#define GEMINI_LOG_EVERY_N_SEC(level, seconds)       \
  !::gemini::LogRateLimit(                           \
      []() -> std::atomic<int64_t>& {                \
        static std::atomic<int64_t> last{INT64_MIN}; \
        return last;                                 \
      }(),                                           \
      seconds)                                       \
      ? (void)0                                      \
      : GEMINI_LOG(level)
