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

}  // namespace
}  // namespace vcra
