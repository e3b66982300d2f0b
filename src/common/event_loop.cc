#include "common/event_loop.h"

#include <pthread.h>

namespace vcra {

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

void EventLoop::Run() {
  loop_thread_ = std::this_thread::get_id();
  std::unique_lock lock(mu_);
  while (!stopping_) {
    auto now = std::chrono::steady_clock::now();
    if (!timers_.empty() && timers_.begin()->first <= now) {
      Task task = std::move(timers_.begin()->second.second);
      timers_.erase(timers_.begin());
      lock.unlock();
      task();
      lock.lock();
      continue;
    }
    if (!tasks_.empty()) {
      Task task = std::move(tasks_.front());
      tasks_.pop_front();
      lock.unlock();
      task();
      lock.lock();
      continue;
    }
    if (timers_.empty()) {
      cv_.wait(lock);
    } else {
      cv_.wait_until(lock, timers_.begin()->first);
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

}  // namespace vcra
