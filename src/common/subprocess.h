// Subprocess: a child process started with fork/exec, its stdout read line by
// line through a pipe (stderr inherited), killed and reaped by its owner.
//
// Used by the CLI to run agents and trainers. Not thread-safe; one owner.
// The destructor SIGKILLs a still-running child and reaps it, so no zombie or
// orphan outlives its Subprocess.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace gemini {

class Subprocess {
 public:
  // argv[0] is the program path. env entries are added to (or override) the
  // parent's environment. A non-empty stderr_path appends the child's stderr there (and its
  // stdout too, when not captured).
  static Result<std::unique_ptr<Subprocess>> Start(const std::vector<std::string>& argv,
                                                   const std::map<std::string, std::string>& env,
                                                   bool capture_stdout = true,
                                                   const std::string& stderr_path = "");
  ~Subprocess();

  pid_t pid() const { return pid_; }
  // Next stdout line (without '\n'). NotFound at end of output,
  // DeadlineExceeded when no full line arrives in time.
  Result<std::string> ReadLine(std::chrono::milliseconds timeout);
  void Signal(int sig);
  // Waits for exit; returns the exit code, or 128 + signal number.
  Result<int> Wait(std::chrono::milliseconds timeout);

 private:
  Subprocess(pid_t pid, int out_fd) : pid_(pid), out_fd_(out_fd) {}
  pid_t pid_;
  int out_fd_;
  std::string buffer_;
  bool exited_ = false;
  int exit_code_ = 0;
};

// A TCP port on 127.0.0.1 that was free a moment ago.
Result<int> FreeTcpPort();
// Path of the running executable (/proc/self/exe).
std::string SelfExe();

}  // namespace gemini
