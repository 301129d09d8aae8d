#include "common/stop_signals.h"

#include <unistd.h>

#include <cerrno>
#include <iostream>

namespace gemini {

sigset_t BlockStopSignals() {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  return stop;
}

ExitOnStopSignal::ExitOnStopSignal(std::string what) : what_(std::move(what)) {
  thread_ = std::thread([this] {
    const sigset_t stop = BlockStopSignals();
    const timespec tick{0, 100'000'000};
    while (!done_) {
      int sig = sigtimedwait(&stop, nullptr, &tick);
      if (sig > 0) {
        std::cerr << what_ << ": signal " << sig << ", exiting" << std::endl;
        _exit(128 + sig);
      }
    }
  });
}

ExitOnStopSignal::~ExitOnStopSignal() {
  done_ = true;
  thread_.join();
}

}  // namespace gemini
