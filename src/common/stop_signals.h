// Stop signals (SIGTERM, SIGINT) for processes that take them in one thread
// (sigtimedwait) and act on them: the agent, the per-node launcher.
//
// A signal sent to a process goes to any of its threads that does not block
// it, and libraries start threads of their own (gRPC does, on first use): a
// stop signal landing in such a thread would end the process with no cleanup.
// So such a process blocks the stop signals first thing, before any library
// starts a thread (every later thread inherits the mask), and takes them
// where it chooses.
#pragma once

#include <signal.h>

#include <atomic>
#include <string>
#include <thread>

namespace gemini {

// Blocks SIGTERM and SIGINT in the calling thread (and so in every thread it
// starts from now on); returns that set, for sigtimedwait.
sigset_t BlockStopSignals();

// While it lives, a stop signal ends the process at once (status 128 + the
// signal), after printing `what` to stderr: for the phases in which nothing
// has been started that needs stopping (waiting for a rendezvous, a standby
// waiting for its assignment).
class ExitOnStopSignal {
 public:
  explicit ExitOnStopSignal(std::string what);
  ~ExitOnStopSignal();
  ExitOnStopSignal(const ExitOnStopSignal&) = delete;
  ExitOnStopSignal& operator=(const ExitOnStopSignal&) = delete;

 private:
  const std::string what_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

}  // namespace gemini
