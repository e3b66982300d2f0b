// Time as a dependency: every timer in the agent (backoff, resync, retry) reads a Clock, so that
// tests drive time with FakeClock instead of sleeping.
#pragma once

#include <chrono>
#include <mutex>

namespace vcra {

using Duration = std::chrono::steady_clock::duration;
using TimePoint = std::chrono::steady_clock::time_point;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint Now() const = 0;
};

class SystemClock final : public Clock {
 public:
  TimePoint Now() const override { return std::chrono::steady_clock::now(); }
};

// Thread-safe: tests advance it from the test thread while components read it elsewhere.
class FakeClock final : public Clock {
 public:
  TimePoint Now() const override {
    std::lock_guard lock(mu_);
    return now_;
  }
  void Advance(Duration d) {
    std::lock_guard lock(mu_);
    now_ += d;
  }

 private:
  mutable std::mutex mu_;
  TimePoint now_{std::chrono::seconds(1000)};
};

}  // namespace vcra
