#include "common/event_loop.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>

namespace vcra {
namespace {

TEST(EventLoopTest, RunsPostedTasksInOrderAndTimers) {
  EventLoop loop;
  std::vector<int> seen;
  loop.Post([&] { seen.push_back(1); });
  loop.Post([&] { seen.push_back(2); });
  loop.RunAfter(std::chrono::milliseconds(5), [&] {
    seen.push_back(3);
    loop.Stop();
  });
  uint64_t cancelled = loop.RunAfter(std::chrono::milliseconds(1), [&] { seen.push_back(99); });
  loop.Cancel(cancelled);
  loop.Run();
  EXPECT_EQ(seen, (std::vector<int>{1, 2, 3}));
}

TEST(WorkQueueTest, RunsTasksOnItsOwnThreadInOrder) {
  WorkQueue queue("test");
  std::promise<std::vector<int>> done;
  auto result = std::make_shared<std::vector<int>>();
  auto caller = std::this_thread::get_id();
  std::atomic<bool> other_thread{false};
  for (int i = 0; i < 5; ++i) {
    queue.Post([=, &other_thread] {
      result->push_back(i);
      other_thread = std::this_thread::get_id() != caller;
    });
  }
  queue.Post([&] { done.set_value(*result); });
  EXPECT_EQ(done.get_future().get(), (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_TRUE(other_thread);
}

TEST(EventLoopTest, TimersFollowTheInjectedClock) {
  FakeClock clock;
  EventLoop loop(&clock);
  std::vector<int> seen;
  loop.RunAfter(std::chrono::seconds(2), [&] { seen.push_back(2); });
  loop.RunAfter(std::chrono::seconds(1), [&] {
    seen.push_back(1);
    // A timer armed by a timer counts from the fake now, not from the steady clock.
    loop.RunAfter(std::chrono::seconds(5), [&] { seen.push_back(6); });
  });
  loop.Post([&] { seen.push_back(0); });
  EXPECT_EQ(loop.RunUntilIdle(), 1u) << "only the posted task is due";
  EXPECT_EQ(seen, (std::vector<int>{0}));
  clock.Advance(std::chrono::milliseconds(999));
  EXPECT_EQ(loop.RunUntilIdle(), 0u);
  loop.RunFor(clock, std::chrono::seconds(3));
  EXPECT_EQ(seen, (std::vector<int>{0, 1, 2}));
  ASSERT_TRUE(loop.NextTimerTime());
  EXPECT_EQ(*loop.NextTimerTime(), TimePoint(std::chrono::seconds(1006)));
  loop.RunFor(clock, std::chrono::seconds(3));
  EXPECT_EQ(seen, (std::vector<int>{0, 1, 2, 6}));
  EXPECT_FALSE(loop.NextTimerTime());
}

TEST(EventLoopTest, RunUntilIdleIsBounded) {
  FakeClock clock;
  EventLoop loop(&clock);
  std::function<void()> forever = [&] { loop.Post(forever); };
  loop.Post(forever);
  EXPECT_EQ(loop.RunUntilIdle(50), 50u);
}

TEST(ManualExecutorTest, RunsOnlyWhenAskedInOrder) {
  ManualExecutor executor;
  std::vector<int> seen;
  executor.Post([&] {
    seen.push_back(1);
    executor.Post([&] { seen.push_back(3); });
  });
  executor.Post([&] { seen.push_back(2); });
  EXPECT_TRUE(seen.empty());
  EXPECT_EQ(executor.pending(), 2u);
  EXPECT_TRUE(executor.RunNext());
  EXPECT_EQ(seen, (std::vector<int>{1}));
  EXPECT_EQ(executor.RunAll(), 2u);
  EXPECT_EQ(seen, (std::vector<int>{1, 2, 3}));
  executor.Stop();
  executor.Post([&] { seen.push_back(4); });
  EXPECT_FALSE(executor.RunNext());
}

}  // namespace
}  // namespace vcra
