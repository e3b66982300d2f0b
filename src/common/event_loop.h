// EventLoop: the owner thread of all agent state. Other threads never touch that state; they
// Post() closures here. Timers run on the same thread and read the injected Clock, so a test
// with a FakeClock drives them deterministically (RunUntilIdle, RunFor) without sleeping.
//
// Executor: where blocking work (dataplane calls, etcd writes) runs. WorkQueue is the real one
// (one thread, in order, so the loop never blocks; results come back by Post()); ManualExecutor
// holds the work until a test runs it, so a test decides exactly when a dataplane call happens
// relative to everything else.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "common/clock.h"

namespace vcra {

class EventLoop {
 public:
  using Task = std::function<void()>;

  // `clock` must outlive the loop; nullptr means the system's steady clock.
  explicit EventLoop(const Clock* clock = nullptr);

  const Clock& clock() const { return *clock_; }

  // Thread-safe.
  void Post(Task task);
  // Runs `task` on the loop no earlier than `when` (on the loop's clock). Returns an id for
  // Cancel.
  uint64_t RunAt(TimePoint when, Task task);
  uint64_t RunAfter(Duration delay, Task task) {
    return RunAt(clock_->Now() + delay, std::move(task));
  }
  void Cancel(uint64_t timer_id);

  // Runs tasks and timers on the calling thread until Stop().
  void Run();
  // Thread-safe; Run() returns after the task in progress.
  void Stop();
  bool stopping() const;
  bool IsInLoopThread() const { return std::this_thread::get_id() == loop_thread_; }

  // For tests on a FakeClock (the calling thread becomes the loop thread). Runs posted tasks and
  // the timers due at the clock's current time, until none is left; at most `max_tasks`, so a
  // task that re-posts itself forever cannot hang a test. Returns the number run.
  size_t RunUntilIdle(size_t max_tasks = 100000);
  // When the earliest timer is due, if any.
  std::optional<TimePoint> NextTimerTime() const;
  // Advances `clock` (the loop's clock) by `duration`, stopping at each timer due on the way
  // and running what is due there: time passes as it would for a running loop.
  void RunFor(FakeClock& clock, Duration duration, size_t max_tasks = 100000);

 private:
  // Pops one due timer or posted task (timers first); nullopt if nothing is runnable now.
  std::optional<Task> PopRunnable(TimePoint now);

  const SystemClock system_clock_;
  const Clock* clock_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Task> tasks_;
  std::multimap<TimePoint, std::pair<uint64_t, Task>> timers_;
  uint64_t next_timer_id_ = 1;
  bool stopping_ = false;
  std::thread::id loop_thread_;
};

class Executor {
 public:
  virtual ~Executor() = default;
  // Queues `task`; tasks run one at a time, in order. Dropped after Stop().
  virtual void Post(std::function<void()> task) = 0;
  // Drops queued work, waits for the task in progress.
  virtual void Stop() = 0;
};

class WorkQueue final : public Executor {
 public:
  explicit WorkQueue(std::string name);
  ~WorkQueue() override;  // drops queued work, finishes the task in progress, joins
  void Post(std::function<void()> task) override;
  void Stop() override;

 private:
  void Run();
  std::string name_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::thread thread_;
};

// Runs nothing by itself: the test calls RunNext()/RunAll() on its own thread.
class ManualExecutor final : public Executor {
 public:
  void Post(std::function<void()> task) override;
  void Stop() override;
  size_t pending() const;
  // Runs the oldest queued task; false if there was none.
  bool RunNext();
  // Runs queued tasks (including those they queue) until none is left, at most `max_tasks`.
  size_t RunAll(size_t max_tasks = 100000);

 private:
  mutable std::mutex mu_;
  std::deque<std::function<void()>> tasks_;
  bool stopped_ = false;
};

}  // namespace vcra
