// SPDX-License-Identifier: Apache-2.0
// LoaderPool: the manager's load/unload threads, a fixed pool running tasks
// in order, with a bounded stop (issue #14.3: shutdown never waits forever
// for a load).
#pragma once

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace ortserve::repository {

// The loader threads: a fixed pool running load and unload tasks in order.
// Thread-safe.
class LoaderPool {
 public:
  explicit LoaderPool(int threads) {
    {
      absl::MutexLock lock(&mu_);
      running_ = threads;
    }
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Run(); });
  }
  ~LoaderPool() { Stop(); }

  // False once stopped (the task is not run).
  bool Submit(std::function<void()> task) {
    absl::MutexLock lock(&mu_);
    if (stopped_) return false;
    tasks_.push_back(std::move(task));
    return true;
  }

  // Refuses new tasks, lets the threads finish the queued ones and waits for
  // them at most `timeout`: true when every thread has ended (and is joined),
  // false when some still run a task (they are joined by a later Stop or the
  // destructor). Idempotent.
  bool Stop(absl::Duration timeout = absl::InfiniteDuration()) {
    {
      absl::MutexLock lock(&mu_);
      stopped_ = true;
      auto ended = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return running_ == 0; };
      if (!mu_.AwaitWithTimeout(absl::Condition(&ended), timeout)) return false;
    }
    for (auto& thread : threads_) {
      if (thread.joinable()) thread.join();
    }
    return true;
  }

 private:
  void Run() {
    for (;;) {
      std::function<void()> task;
      {
        absl::MutexLock lock(&mu_);
        auto ready = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return !tasks_.empty() || stopped_; };
        mu_.Await(absl::Condition(&ready));
        if (tasks_.empty()) {
          --running_;
          return;
        }
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
  }

  absl::Mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  int running_ ABSL_GUARDED_BY(mu_) = 0;  // Threads not yet ended.
  std::deque<std::function<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_;
};

}  // namespace ortserve::repository
