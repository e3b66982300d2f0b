#include "common/backoff.h"

#include <gtest/gtest.h>

#include "common/log.h"

namespace vcra {
namespace {

using std::chrono::milliseconds;

TEST(BackoffTest, DoublesUpToMaxWithoutJitter) {
  Backoff b(milliseconds(100), milliseconds(500), 0);
  EXPECT_EQ(b.Next(), milliseconds(100));
  EXPECT_EQ(b.Next(), milliseconds(200));
  EXPECT_EQ(b.Next(), milliseconds(400));
  EXPECT_EQ(b.Next(), milliseconds(500));
  EXPECT_EQ(b.Next(), milliseconds(500));
  EXPECT_EQ(b.attempts(), 5u);
  b.Reset();
  EXPECT_EQ(b.Next(), milliseconds(100));
}

TEST(BackoffTest, JitterStaysWithinBounds) {
  Backoff b(milliseconds(1000), milliseconds(1000), 0.2);
  for (int i = 0; i < 100; ++i) {
    auto d = b.Next();
    EXPECT_GE(d, milliseconds(800));
    EXPECT_LE(d, milliseconds(1200));
  }
}

TEST(RateLimiterTest, SuppressesRepeatsPerKey) {
  RateLimiter limiter(std::chrono::seconds(60));
  EXPECT_EQ(limiter.Allow("a"), 0);
  EXPECT_EQ(limiter.Allow("a"), -1);
  EXPECT_EQ(limiter.Allow("a"), -1);
  EXPECT_EQ(limiter.Allow("b"), 0);
}

}  // namespace
}  // namespace vcra

namespace vcra {
namespace {

TEST(LogTest, EscapesHostileText) {
  EXPECT_EQ(EscapeLogText("key\nFAKE LINE\x1b[31m", false), "key\\nFAKE LINE\\x1b[31m");
  EXPECT_EQ(EscapeLogText("a\"b\\c\n\x01", true), "a\\\"b\\\\c\\n\\u0001");
  EXPECT_EQ(EscapeLogText("plain 10.244.0.0/26", true), "plain 10.244.0.0/26");
}

}  // namespace
}  // namespace vcra
