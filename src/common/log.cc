#include "common/log.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>

namespace gemini {
namespace {

LogLevel FromEnv() {
  const char* v = std::getenv("GEMINI_LOG_LEVEL");
  if (v == nullptr) return LogLevel::WARN;
  if (std::strcmp(v, "DEBUG") == 0) return LogLevel::DEBUG;
  if (std::strcmp(v, "INFO") == 0) return LogLevel::INFO;
  if (std::strcmp(v, "ERROR") == 0) return LogLevel::ERROR;
  return LogLevel::WARN;
}

std::atomic<int>& Level() {
  static std::atomic<int> level{static_cast<int>(FromEnv())};
  return level;
}

}  // namespace

LogLevel CurrentLogLevel() { return static_cast<LogLevel>(Level().load()); }
void SetLogLevel(LogLevel level) { Level().store(static_cast<int>(level)); }

bool LogRateLimit(std::atomic<int64_t>& last, int seconds) {
  int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::steady_clock::now().time_since_epoch())
                    .count();
  int64_t prev = last.load();
  if (prev != INT64_MIN && now - prev < int64_t{seconds} * 1000) return false;
  return last.compare_exchange_strong(prev, now);
}

LogLine::~LogLine() {
  static const char* kNames[] = {"D", "I", "W", "E"};
  auto now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  char head[64];
  std::snprintf(head, sizeof(head), "%s %.3f gemini: ", kNames[static_cast<int>(level_)], now);
  std::string line = head + os_.str() + "\n";
  ssize_t ignored = ::write(2, line.data(), line.size());
  (void)ignored;
}

}  // namespace gemini
