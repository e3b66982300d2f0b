// Exponential backoff with jitter, for reconnects and retries of failed dataplane operations.
// Not thread-safe; each user owns its own.
#pragma once

#include <algorithm>
#include <cstdint>
#include <random>

#include "common/clock.h"

namespace vcra {

class Backoff {
 public:
  Backoff(Duration initial, Duration max, double jitter = 0.2)
      : initial_(initial), max_(max), jitter_(jitter), rng_(std::random_device{}()) {}

  // The delay to wait before the next attempt; each call doubles the base up to max.
  Duration Next() {
    Duration base = current_ == Duration::zero() ? initial_ : std::min(current_ * 2, max_);
    current_ = base;
    ++attempts_;
    if (jitter_ <= 0) return base;
    std::uniform_real_distribution<double> dist(1.0 - jitter_, 1.0 + jitter_);
    return std::chrono::duration_cast<Duration>(base * dist(rng_));
  }
  void Reset() {
    current_ = Duration::zero();
    attempts_ = 0;
  }
  uint64_t attempts() const { return attempts_; }

 private:
  Duration initial_;
  Duration max_;
  double jitter_;
  Duration current_{Duration::zero()};
  uint64_t attempts_ = 0;
  std::mt19937_64 rng_;
};

}  // namespace vcra
