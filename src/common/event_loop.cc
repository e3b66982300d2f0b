#include "common/event_loop.h"

#include <pthread.h>

namespace vcra {

EventLoop::EventLoop(const Clock* clock) : clock_(clock ? clock : &system_clock_) {}

void EventLoop::Post(Task task) {
  {
    std::lock_guard lock(mu_);
    tasks_.push_back(std::move(task));
  }
  cv_.notify_one();
}

uint64_t EventLoop::RunAt(TimePoint when, Task task) {
  uint64_t id;
  {
    std::lock_guard lock(mu_);
    id = next_timer_id_++;
    timers_.emplace(when, std::make_pair(id, std::move(task)));
  }
  cv_.notify_one();
  return id;
}

void EventLoop::Cancel(uint64_t timer_id) {
  std::lock_guard lock(mu_);
  for (auto it = timers_.begin(); it != timers_.end(); ++it) {
    if (it->second.first == timer_id) {
      timers_.erase(it);
      return;
    }
  }
}

std::optional<EventLoop::Task> EventLoop::PopRunnable(TimePoint now) {
  if (!timers_.empty() && timers_.begin()->first <= now) {
    Task task = std::move(timers_.begin()->second.second);
    timers_.erase(timers_.begin());
    return task;
  }
  if (!tasks_.empty()) {
    Task task = std::move(tasks_.front());
    tasks_.pop_front();
    return task;
  }
  return std::nullopt;
}

void EventLoop::Run() {
  loop_thread_ = std::this_thread::get_id();
  std::unique_lock lock(mu_);
  while (!stopping_) {
    if (auto task = PopRunnable(clock_->Now())) {
      lock.unlock();
      (*task)();
      lock.lock();
      continue;
    }
    if (timers_.empty()) {
      cv_.wait(lock);
    } else {
      // The loop's clock need not be the steady clock: wait for the remaining duration.
      Duration remaining = timers_.begin()->first - clock_->Now();
      cv_.wait_until(lock, std::chrono::steady_clock::now() + remaining);
    }
  }
}

void EventLoop::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
}

bool EventLoop::stopping() const {
  std::lock_guard lock(mu_);
  return stopping_;
}

size_t EventLoop::RunUntilIdle(size_t max_tasks) {
  loop_thread_ = std::this_thread::get_id();
  size_t ran = 0;
  std::unique_lock lock(mu_);
  while (ran < max_tasks && !stopping_) {
    auto task = PopRunnable(clock_->Now());
    if (!task) break;
    lock.unlock();
    (*task)();
    ++ran;
    lock.lock();
  }
  return ran;
}

std::optional<TimePoint> EventLoop::NextTimerTime() const {
  std::lock_guard lock(mu_);
  if (timers_.empty()) return std::nullopt;
  return timers_.begin()->first;
}

void EventLoop::RunFor(FakeClock& clock, Duration duration, size_t max_tasks) {
  TimePoint end = clock.Now() + duration;
  size_t ran = RunUntilIdle(max_tasks);
  while (ran < max_tasks && !stopping()) {
    auto next = NextTimerTime();
    if (!next || *next > end) break;
    if (*next > clock.Now()) clock.Advance(*next - clock.Now());
    ran += RunUntilIdle(max_tasks - ran);
  }
  if (clock.Now() < end) clock.Advance(end - clock.Now());
  RunUntilIdle(max_tasks);
}

WorkQueue::WorkQueue(std::string name) : name_(std::move(name)), thread_([this] { Run(); }) {}

WorkQueue::~WorkQueue() { Stop(); }

void WorkQueue::Post(std::function<void()> task) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    tasks_.push_back(std::move(task));
  }
  cv_.notify_one();
}

void WorkQueue::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    tasks_.clear();
  }
  cv_.notify_all();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void WorkQueue::Run() {
  pthread_setname_np(pthread_self(), name_.substr(0, 15).c_str());
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
    if (stopping_) return;
    auto task = std::move(tasks_.front());
    tasks_.pop_front();
    lock.unlock();
    task();
    lock.lock();
  }
}

void ManualExecutor::Post(std::function<void()> task) {
  std::lock_guard lock(mu_);
  if (!stopped_) tasks_.push_back(std::move(task));
}

void ManualExecutor::Stop() {
  std::lock_guard lock(mu_);
  stopped_ = true;
  tasks_.clear();
}

size_t ManualExecutor::pending() const {
  std::lock_guard lock(mu_);
  return tasks_.size();
}

bool ManualExecutor::RunNext() {
  std::function<void()> task;
  {
    std::lock_guard lock(mu_);
    if (tasks_.empty()) return false;
    task = std::move(tasks_.front());
    tasks_.pop_front();
  }
  task();
  return true;
}

size_t ManualExecutor::RunAll(size_t max_tasks) {
  size_t ran = 0;
  while (ran < max_tasks && RunNext()) ++ran;
  return ran;
}

}  // namespace vcra
