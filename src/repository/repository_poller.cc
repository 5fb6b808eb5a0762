// SPDX-License-Identifier: Apache-2.0
#include "repository/repository_poller.h"

#include "core/strings.h"
#include "scheduler/observable_clock.h"

namespace ortserve::repository {

absl::StatusOr<std::unique_ptr<RepositoryPoller>> RepositoryPoller::Start(Options options) {
  if (!options.poll) return absl::InvalidArgumentError("RepositoryPoller needs a poll function");
  if (options.interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        StrCat("repository poll interval must be positive, got ", absl::FormatDuration(options.interval)));
  }
  return std::unique_ptr<RepositoryPoller>(new RepositoryPoller(std::move(options)));
}

RepositoryPoller::RepositoryPoller(Options options)
    : options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock : Clock::Real()),
      first_poll_(clock_->Now() + options_.interval) {
  if (auto* observable = dynamic_cast<scheduler::ObservableClock*>(clock_)) {
    observable->AddObserver(this, [this] { Wake(); });
  }
  thread_ = std::thread([this] { Loop(); });
}

RepositoryPoller::~RepositoryPoller() { Stop(); }

void RepositoryPoller::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
  if (auto* observable = dynamic_cast<scheduler::ObservableClock*>(clock_)) observable->RemoveObserver(this);
}

void RepositoryPoller::Wake() {
  absl::MutexLock lock(&mu_);
  ++wakeups_;
}

void RepositoryPoller::Loop() {
  absl::Time next = first_poll_;
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      // Waits in the clock's time: a jump of an observable clock wakes the
      // wait (Wake), and the loop measures again.
      for (;;) {
        if (stop_) return;
        const absl::Time now = clock_->Now();
        if (now >= next) break;
        const uint64_t seen = wakeups_;
        auto woken = [this, seen]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stop_ || wakeups_ != seen; };
        mu_.AwaitWithTimeout(absl::Condition(&woken), next - now);
      }
    }
    if (absl::Status status = options_.poll(); !status.ok() && options_.error) {
      options_.error(StrCat("repository poll failed: ", status.message()));
    }
    // Polls keep to the interval's grid; one that overran its slot moves
    // the grid, so a slow poll never runs back to back with the next.
    next += options_.interval;
    if (const absl::Time now = clock_->Now(); next < now) next = now + options_.interval;
  }
}

}  // namespace ortserve::repository
