// Logging through spdlog. SetupLogging() chooses text or JSON lines on stderr.
// LOG_RATE_LIMITED keeps one bad etcd key from flooding the log: at most one line per key per
// interval, with the number suppressed in between.
#pragma once

#include <spdlog/spdlog.h>

#include <chrono>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/format.h"

namespace vcra {

enum class LogFormat { kText, kJson };

void SetupLogging(LogFormat format, std::string_view level);

// Control bytes escaped (\n, \x1b); with `json`, also '"' and '\\' (\u00XX for controls).
std::string EscapeLogText(std::string_view text, bool json);

// Returns how many messages were suppressed since the last allowed one, or -1 when this one is
// suppressed. Thread-safe.
class RateLimiter {
 public:
  explicit RateLimiter(std::chrono::seconds interval) : interval_(interval) {}
  long Allow(const std::string& key);

 private:
  struct Entry {
    std::chrono::steady_clock::time_point last;
    long suppressed = 0;
  };
  std::chrono::seconds interval_;
  std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;
};

RateLimiter& BadInputLogLimiter();

}  // namespace vcra

#define LOG_DEBUG(...) SPDLOG_DEBUG(__VA_ARGS__)
#define LOG_INFO(...) SPDLOG_INFO(__VA_ARGS__)
#define LOG_WARN(...) SPDLOG_WARN(__VA_ARGS__)
#define LOG_ERROR(...) SPDLOG_ERROR(__VA_ARGS__)

// Logs at warn level at most once per 60 s per key (e.g. the etcd key that was malformed).
#define LOG_WARN_ONCE_PER_KEY(key, fmt, ...)                                                \
  do {                                                                                      \
    long vcra_suppressed_ = ::vcra::BadInputLogLimiter().Allow(key);                        \
    if (vcra_suppressed_ >= 0)                                                              \
      SPDLOG_WARN(fmt " (similar messages suppressed: {})", __VA_ARGS__, vcra_suppressed_); \
  } while (0)
