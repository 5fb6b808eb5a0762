// SPDX-License-Identifier: Apache-2.0
// FakeClock: a clock that moves only when a test moves it.
#pragma once

#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "scheduler/observable_clock.h"

namespace ortserve::testing {

// Starts at a fixed instant and moves only by Advance/SetTime, which then wake
// the observers (schedulers waiting for a deadline or a batching delay).
//
// Thread-safe.
class FakeClock final : public scheduler::ObservableClock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1700000000)) : now_(start) {}

  absl::Time Now() const override {
    absl::MutexLock lock(&time_mu_);
    return now_;
  }

  void Advance(absl::Duration d) {
    {
      absl::MutexLock lock(&time_mu_);
      now_ += d;
    }
    Notify();
  }

  void SetTime(absl::Time t) {
    {
      absl::MutexLock lock(&time_mu_);
      now_ = t;
    }
    Notify();
  }

  void AddObserver(const void* key, absl::AnyInvocable<void()> wake) override {
    absl::MutexLock lock(&observers_mu_);
    observers_.emplace_back(key, std::move(wake));
  }

  void RemoveObserver(const void* key) override {
    absl::MutexLock lock(&observers_mu_);
    for (auto it = observers_.begin(); it != observers_.end(); ++it) {
      if (it->first == key) {
        observers_.erase(it);
        return;
      }
    }
  }

 private:
  void Notify() {
    absl::MutexLock lock(&observers_mu_);
    for (auto& [key, wake] : observers_) wake();
  }

  mutable absl::Mutex time_mu_;
  absl::Time now_ ABSL_GUARDED_BY(time_mu_);
  // Held while observers run, so that RemoveObserver waits for a running one.
  absl::Mutex observers_mu_;
  std::vector<std::pair<const void*, absl::AnyInvocable<void()>>> observers_ ABSL_GUARDED_BY(observers_mu_);
};

}  // namespace ortserve::testing
