// Eventually: for tests of asynchronous code (watches, threads that react to
// them): polls a condition until it holds or a deadline passes.
#pragma once

#include <chrono>
#include <thread>

namespace gemini {

// True as soon as pred() is; false if it still is not after `within`.
template <typename Pred>
bool Eventually(Pred pred, std::chrono::milliseconds within = std::chrono::milliseconds(5000)) {
  const auto end = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return pred();
}

}  // namespace gemini
