// SPDX-License-Identifier: Apache-2.0
// ReleaseQueue: destroys model versions on a thread of its own, so that a
// version whose last handle goes away on one of its own runner threads (in a
// completion callback) is never destroyed there (STYLE: "Releasing old
// versions").
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "repository/model_version.h"

namespace ortserve::repository {

// Destroys versions whose last handle went away, on its own thread. Handles
// keep it alive through their deleters, so it outlives the manager when a
// handle does; once stopped it destroys versions inline (their schedulers are
// stopped by then, so nothing joins). Thread-safe.
class ReleaseQueue {
 public:
  explicit ReleaseQueue(std::function<void(const std::string&, const std::string&)> released)
      : released_(std::move(released)) {}

  void Start() {
    thread_ = std::thread([this] { Run(); });
  }

  void Created() {
    absl::MutexLock lock(&mu_);
    ++live_;
  }

  // The handle deleter: never blocks, never destroys on the caller's thread
  // while the queue runs.
  void Push(ModelVersion* version) {
    {
      absl::MutexLock lock(&mu_);
      if (running_) {
        pending_.push_back(version);
        return;
      }
    }
    Destroy(version);
  }

  // Destroys what is queued, then joins. Idempotent.
  void Stop() {
    {
      absl::MutexLock lock(&mu_);
      if (!running_) return;
      running_ = false;
    }
    if (thread_.joinable()) thread_.join();
    std::deque<ModelVersion*> rest;
    {
      absl::MutexLock lock(&mu_);
      rest.swap(pending_);
    }
    for (ModelVersion* version : rest) Destroy(version);
  }

  size_t live() const {
    absl::MutexLock lock(&mu_);
    return live_;
  }

  bool WaitForLive(size_t n, absl::Duration timeout) const {
    absl::MutexLock lock(&mu_);
    auto done = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return live_ <= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
  }

 private:
  void Run() {
    for (;;) {
      ModelVersion* version = nullptr;
      {
        absl::MutexLock lock(&mu_);
        auto ready = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return !pending_.empty() || !running_; };
        mu_.Await(absl::Condition(&ready));
        if (pending_.empty()) return;
        version = pending_.front();
        pending_.pop_front();
      }
      Destroy(version);
    }
  }

  void Destroy(ModelVersion* version) {
    const std::string name = released_ ? version->name : std::string();
    const std::string number = released_ ? version->version_string : std::string();
    delete version;  // Stops its scheduler: admitted requests are done by now.
    if (released_) released_(name, number);
    absl::MutexLock lock(&mu_);
    --live_;
  }

  mutable absl::Mutex mu_;
  bool running_ ABSL_GUARDED_BY(mu_) = true;
  std::deque<ModelVersion*> pending_ ABSL_GUARDED_BY(mu_);
  size_t live_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
  const std::function<void(const std::string&, const std::string&)> released_;
};

}  // namespace ortserve::repository
