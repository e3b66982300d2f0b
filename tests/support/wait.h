// Polling for state another thread changes, bounded in time: every test that waits on a server,
// a simulator or the agent uses this one.
#pragma once

#include <chrono>
#include <functional>
#include <thread>

namespace vcra::testing {

// True as soon as done() holds; false if it still does not after `timeout`.
inline bool WaitFor(const std::function<bool()>& done,
                    std::chrono::milliseconds timeout = std::chrono::milliseconds(10000)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}

}  // namespace vcra::testing
