// SPDX-License-Identifier: Apache-2.0
// RepositoryPoller on a FakeClock: polls come one interval of the clock
// apart, failures are reported and polling goes on, Stop ends the thread.
#include "repository/repository_poller.h"

#include <gtest/gtest.h>

#include "absl/synchronization/mutex.h"
#include "fakes/fake_clock.h"

namespace ortserve::repository {
namespace {

constexpr absl::Duration kWait = absl::Seconds(20);  // Upper bound; tests finish far sooner.

// Counts polls and errors. Thread-safe.
class Counter {
 public:
  absl::Status Poll() {
    absl::MutexLock lock(&mu_);
    ++polls_;
    return result_;
  }
  void Error(const std::string& text) {
    absl::MutexLock lock(&mu_);
    errors_.push_back(text);
  }
  void Fail(absl::Status status) {
    absl::MutexLock lock(&mu_);
    result_ = std::move(status);
  }
  bool WaitForPolls(int n) {
    absl::MutexLock lock(&mu_);
    auto reached = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return polls_ >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&reached), kWait);
  }
  bool WaitForErrors(size_t n) {
    absl::MutexLock lock(&mu_);
    auto reached = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return errors_.size() >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&reached), kWait);
  }
  int polls() {
    absl::MutexLock lock(&mu_);
    return polls_;
  }
  std::vector<std::string> errors() {
    absl::MutexLock lock(&mu_);
    return errors_;
  }

 private:
  absl::Mutex mu_;
  int polls_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status result_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> errors_ ABSL_GUARDED_BY(mu_);
};

std::unique_ptr<RepositoryPoller> StartPoller(Clock* clock, Counter* counter) {
  RepositoryPoller::Options options;
  options.interval = absl::Seconds(5);
  options.clock = clock;
  options.poll = [counter] { return counter->Poll(); };
  options.error = [counter](const std::string& text) { counter->Error(text); };
  return *RepositoryPoller::Start(std::move(options));
}

TEST(RepositoryPollerTest, PollsOnceEachIntervalOfItsClock) {
  ::ortserve::testing::FakeClock clock;
  Counter counter;
  auto poller = StartPoller(&clock, &counter);
  clock.Advance(absl::Seconds(4));
  EXPECT_EQ(counter.polls(), 0);
  clock.Advance(absl::Seconds(1));
  ASSERT_TRUE(counter.WaitForPolls(1));
  clock.Advance(absl::Seconds(5));
  ASSERT_TRUE(counter.WaitForPolls(2));
  poller->Stop();
  const int polls = counter.polls();
  clock.Advance(absl::Seconds(50));
  EXPECT_EQ(counter.polls(), polls);  // Stopped: no poll after Stop returned.
}

TEST(RepositoryPollerTest, AFailedPollIsReportedAndPollingGoesOn) {
  ::ortserve::testing::FakeClock clock;
  Counter counter;
  counter.Fail(absl::NotFoundError("repository '/models' is not a directory"));
  auto poller = StartPoller(&clock, &counter);
  clock.Advance(absl::Seconds(5));
  ASSERT_TRUE(counter.WaitForErrors(1));
  EXPECT_EQ(counter.errors()[0], "repository poll failed: repository '/models' is not a directory");
  counter.Fail(absl::OkStatus());
  clock.Advance(absl::Seconds(5));
  ASSERT_TRUE(counter.WaitForPolls(2));
  EXPECT_EQ(counter.errors().size(), 1u);
}

TEST(RepositoryPollerTest, RefusesAMissingPollOrANonPositiveInterval) {
  RepositoryPoller::Options no_poll;
  no_poll.interval = absl::Seconds(1);
  EXPECT_EQ(RepositoryPoller::Start(std::move(no_poll)).status().code(), absl::StatusCode::kInvalidArgument);
  RepositoryPoller::Options zero;
  zero.poll = [] { return absl::OkStatus(); };
  EXPECT_EQ(RepositoryPoller::Start(std::move(zero)).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ortserve::repository
