#include "common/log.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <cstdio>

namespace vcra {
namespace {

// The message with every control byte escaped, so that a hostile etcd key cannot forge log
// lines; in JSON mode quotes and backslashes too, so every line stays one valid JSON object.
template <bool kJson>
class EscapedMessageFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    std::string escaped =
        EscapeLogText(std::string_view(msg.payload.data(), msg.payload.size()), kJson);
    dest.append(escaped.data(), escaped.data() + escaped.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<EscapedMessageFlag>();
  }
};

}  // namespace

std::string EscapeLogText(std::string_view text, bool json) {
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (c == '\n') {
      out += "\\n";
    } else if (json && (c == '"' || c == '\\')) {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, json ? "\\u%04x" : "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

void SetupLogging(LogFormat format, std::string_view level) {
  auto logger = spdlog::stderr_logger_mt("vcra");
  if (format == LogFormat::kJson) {
    auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    formatter->add_flag<EscapedMessageFlag<true>>('*').set_pattern(
        R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","thread":%t,"msg":"%*"})");
    logger->set_formatter(std::move(formatter));
  } else {
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<EscapedMessageFlag<false>>('*').set_pattern(
        "%Y-%m-%d %H:%M:%S.%e %^%L%$ [%t] %*");
    logger->set_formatter(std::move(formatter));
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
