#include "common/log.h"

#include <spdlog/sinks/stdout_sinks.h>

namespace vcra {

void SetupLogging(LogFormat format, std::string_view level) {
  auto logger = spdlog::stderr_logger_mt("vcra");
  if (format == LogFormat::kJson) {
    logger->set_pattern(R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","thread":%t,"msg":"%v"})",
                        spdlog::pattern_time_type::utc);
  } else {
    logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%L%$ [%t] %v");
  }
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(std::string(level)));
  spdlog::flush_on(spdlog::level::info);
}

long RateLimiter::Allow(const std::string& key) {
  auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mu_);
  if (entries_.size() > 10000) entries_.clear();  // bounded memory under a flood of distinct keys
  auto [it, inserted] = entries_.try_emplace(key);
  Entry& e = it->second;
  if (!inserted && now - e.last < interval_) {
    ++e.suppressed;
    return -1;
  }
  long suppressed = e.suppressed;
  e.last = now;
  e.suppressed = 0;
  return suppressed;
}

RateLimiter& BadInputLogLimiter() {
  static RateLimiter limiter(std::chrono::seconds(60));
  return limiter;
}

}  // namespace vcra
