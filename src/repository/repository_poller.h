// SPDX-License-Identifier: Apache-2.0
// RepositoryPoller: the thread that asks for a repository poll at a fixed
// interval (--model-control-mode=poll). What a poll does is the caller's
// (ModelManager::PollOnce: the source says what changed, the manager loads).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/clock.h"

namespace ortserve::repository {

// Calls `poll` every `interval` of the injected clock until stopped: the
// first one interval after Start, then on that grid (a poll that overruns
// its slot moves the grid: polls never run back to back). A poll that fails
// is reported through `error`; polling goes on.
//
// Thread-safe. Threads owned: one poller thread, which runs `poll` and
// `error` (never with a lock of this class held).
class RepositoryPoller {
 public:
  struct Options {
    absl::Duration interval;  // Required, > 0.
    // Not owned; null: Clock::Real(). A scheduler::ObservableClock (tests'
    // FakeClock) wakes the wait whenever it moves, so tests advance time.
    Clock* clock = nullptr;
    std::function<absl::Status()> poll;                   // Required.
    std::function<void(const std::string&)> error;        // May be empty.
  };
  // Starts the thread. Errors: InvalidArgument (no poll, interval not > 0).
  static absl::StatusOr<std::unique_ptr<RepositoryPoller>> Start(Options options);
  ~RepositoryPoller();  // Stop().

  // Ends the thread once a poll in progress returns. Idempotent.
  void Stop();

 private:
  explicit RepositoryPoller(Options options);
  void Loop();
  void Wake();

  const Options options_;
  Clock* const clock_;
  const absl::Time first_poll_;  // One interval after Start.
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t wakeups_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

}  // namespace ortserve::repository
