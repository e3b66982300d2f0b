// EventLoop: the owner thread of all agent state. Other threads never touch that state; they
// Post() closures here. Timers run on the same thread.
//
// WorkQueue: one thread that runs blocking work (dataplane calls, etcd writes) in order, so the
// loop never blocks; results come back to the loop by Post().
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "common/clock.h"

namespace vcra {

class EventLoop {
 public:
  using Task = std::function<void()>;

  // Thread-safe.
  void Post(Task task);
  // Runs `task` on the loop no earlier than `when` (steady clock). Returns an id for Cancel.
  uint64_t RunAt(TimePoint when, Task task);
  uint64_t RunAfter(Duration delay, Task task) {
    return RunAt(std::chrono::steady_clock::now() + delay, std::move(task));
  }
  void Cancel(uint64_t timer_id);

  // Runs tasks and timers on the calling thread until Stop().
  void Run();
  // Thread-safe; Run() returns after the task in progress.
  void Stop();
  bool IsInLoopThread() const { return std::this_thread::get_id() == loop_thread_; }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Task> tasks_;
  std::multimap<TimePoint, std::pair<uint64_t, Task>> timers_;
  uint64_t next_timer_id_ = 1;
  bool stopping_ = false;
  std::thread::id loop_thread_;
};

class WorkQueue {
 public:
  explicit WorkQueue(std::string name);
  ~WorkQueue();  // drops queued work, finishes the task in progress, joins
  void Post(std::function<void()> task);
  void Stop();

 private:
  void Run();
  std::string name_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace vcra
