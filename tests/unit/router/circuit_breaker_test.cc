// SPDX-License-Identifier: Apache-2.0
// The circuit breaker's state machine on a fake clock: no sleeping.
#include "router/circuit_breaker.h"

#include <utility>
#include <vector>

#include "fakes/fake_clock.h"
#include "gtest/gtest.h"

namespace ortserve::router {
namespace {

using Outcome = CircuitBreaker::Outcome;
using State = CircuitBreaker::State;
using testing::FakeClock;

class CircuitBreakerTest : public ::testing::Test {
 protected:
  std::unique_ptr<CircuitBreaker> Make(BreakerSettings settings) {
    return std::make_unique<CircuitBreaker>(settings, &clock_, [this](State from, State to) {
      transitions_.emplace_back(from, to);
    });
  }
  // One request through the breaker: false when it refused it.
  bool Send(CircuitBreaker& breaker, Outcome outcome, absl::Duration latency = absl::Milliseconds(1)) {
    const auto decision = breaker.Allow();
    if (!decision.allowed) return false;
    breaker.Record(decision.probe, outcome, latency);
    return true;
  }
  BreakerSettings Settings() {
    BreakerSettings s;
    s.window = absl::Seconds(10);
    s.min_requests = 4;
    s.error_rate = 0.5;
    s.open = absl::Seconds(5);
    s.half_open_requests = 2;
    return s;
  }
  FakeClock clock_;
  std::vector<std::pair<State, State>> transitions_;
};

TEST_F(CircuitBreakerTest, OpensAtTheErrorRateOnlyOnceItHasEnoughRequests) {
  auto breaker = Make(Settings());
  EXPECT_TRUE(Send(*breaker, Outcome::kFailure));
  EXPECT_TRUE(Send(*breaker, Outcome::kFailure));
  EXPECT_TRUE(Send(*breaker, Outcome::kFailure));  // 3 of 3 failed, but fewer than min_requests.
  EXPECT_EQ(breaker->state(), State::kClosed);
  EXPECT_TRUE(Send(*breaker, Outcome::kSuccess));  // 3 of 4: over 0.5.
  EXPECT_EQ(breaker->state(), State::kOpen);
  const auto refused = breaker->Allow();
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after, absl::Seconds(5));
  clock_.Advance(absl::Seconds(2));
  EXPECT_EQ(breaker->Allow().retry_after, absl::Seconds(3));
  ASSERT_EQ(transitions_.size(), 1u);
  EXPECT_EQ(transitions_[0], std::make_pair(State::kClosed, State::kOpen));
}

TEST_F(CircuitBreakerTest, StaysClosedBelowTheErrorRate) {
  auto breaker = Make(Settings());
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(Send(*breaker, i % 3 == 2 ? Outcome::kFailure : Outcome::kSuccess));
  EXPECT_EQ(breaker->state(), State::kClosed);
}

TEST_F(CircuitBreakerTest, HalfOpenLetsTheProbesThroughAndClosesWhenAllSucceed) {
  auto breaker = Make(Settings());
  for (int i = 0; i < 4; ++i) Send(*breaker, Outcome::kFailure);
  ASSERT_EQ(breaker->state(), State::kOpen);
  clock_.Advance(absl::Seconds(5));
  const auto first = breaker->Allow();
  const auto second = breaker->Allow();
  EXPECT_TRUE(first.allowed && first.probe);
  EXPECT_TRUE(second.allowed && second.probe);
  EXPECT_EQ(breaker->state(), State::kHalfOpen);
  EXPECT_FALSE(breaker->Allow().allowed);  // Only two probes at a time.
  breaker->Record(true, Outcome::kSuccess, absl::Milliseconds(1));
  EXPECT_EQ(breaker->state(), State::kHalfOpen);
  breaker->Record(true, Outcome::kSuccess, absl::Milliseconds(1));
  EXPECT_EQ(breaker->state(), State::kClosed);
  // Closed with a fresh window: the old failures are forgotten.
  EXPECT_TRUE(Send(*breaker, Outcome::kFailure));
  EXPECT_TRUE(Send(*breaker, Outcome::kSuccess));
  EXPECT_EQ(breaker->state(), State::kClosed);
  const std::vector<std::pair<State, State>> expected = {
      {State::kClosed, State::kOpen}, {State::kOpen, State::kHalfOpen}, {State::kHalfOpen, State::kClosed}};
  EXPECT_EQ(transitions_, expected);
}

TEST_F(CircuitBreakerTest, AFailedProbeOpensItAgainForAnotherFullPause) {
  auto breaker = Make(Settings());
  for (int i = 0; i < 4; ++i) Send(*breaker, Outcome::kFailure);
  clock_.Advance(absl::Seconds(5));
  const auto probe = breaker->Allow();
  ASSERT_TRUE(probe.probe);
  breaker->Record(true, Outcome::kFailure, absl::Milliseconds(1));
  EXPECT_EQ(breaker->state(), State::kOpen);
  clock_.Advance(absl::Seconds(4));
  EXPECT_FALSE(breaker->Allow().allowed);
  clock_.Advance(absl::Seconds(1));
  EXPECT_TRUE(breaker->Allow().probe);
}

TEST_F(CircuitBreakerTest, AnIgnoredProbeFreesItsSlot) {
  auto breaker = Make(Settings());
  for (int i = 0; i < 4; ++i) Send(*breaker, Outcome::kFailure);
  clock_.Advance(absl::Seconds(5));
  const auto a = breaker->Allow();
  const auto b = breaker->Allow();
  ASSERT_TRUE(a.probe && b.probe);
  breaker->Record(true, Outcome::kIgnored, absl::ZeroDuration());  // A bad request: says nothing.
  EXPECT_TRUE(breaker->Allow().probe);
  EXPECT_EQ(breaker->state(), State::kHalfOpen);
}

TEST_F(CircuitBreakerTest, FailuresOutsideTheWindowAgeOut) {
  auto breaker = Make(Settings());
  Send(*breaker, Outcome::kFailure);
  Send(*breaker, Outcome::kFailure);
  Send(*breaker, Outcome::kFailure);
  clock_.Advance(absl::Seconds(11));  // Past the 10 s window.
  EXPECT_TRUE(Send(*breaker, Outcome::kFailure));
  EXPECT_EQ(breaker->state(), State::kClosed);  // One failure in the window, not four.
  Send(*breaker, Outcome::kFailure);
  Send(*breaker, Outcome::kFailure);
  Send(*breaker, Outcome::kFailure);
  EXPECT_EQ(breaker->state(), State::kOpen);
}

TEST_F(CircuitBreakerTest, SlowAnswersOpenItWhenLatencyIsWatched) {
  BreakerSettings settings = Settings();
  settings.slow_call = absl::Milliseconds(100);
  settings.slow_call_rate = 0.75;
  auto breaker = Make(settings);
  Send(*breaker, Outcome::kSuccess, absl::Milliseconds(500));
  Send(*breaker, Outcome::kSuccess, absl::Milliseconds(500));
  Send(*breaker, Outcome::kSuccess, absl::Milliseconds(10));
  Send(*breaker, Outcome::kSuccess, absl::Milliseconds(500));
  EXPECT_EQ(breaker->state(), State::kOpen);  // 3 of 4 slow.
  // Without slow_call, latency is not judged.
  auto relaxed = Make(Settings());
  for (int i = 0; i < 10; ++i) Send(*relaxed, Outcome::kSuccess, absl::Seconds(30));
  EXPECT_EQ(relaxed->state(), State::kClosed);
}

TEST_F(CircuitBreakerTest, IgnoredOutcomesAndLateAnswersChangeNothing) {
  auto breaker = Make(Settings());
  for (int i = 0; i < 10; ++i) Send(*breaker, Outcome::kIgnored);
  EXPECT_EQ(breaker->state(), State::kClosed);
  // Requests let through while closed, answered after it opened.
  std::vector<CircuitBreaker::Decision> early;
  for (int i = 0; i < 3; ++i) early.push_back(breaker->Allow());
  for (int i = 0; i < 4; ++i) Send(*breaker, Outcome::kFailure);
  ASSERT_EQ(breaker->state(), State::kOpen);
  for (const auto& d : early) breaker->Record(d.probe, Outcome::kSuccess, absl::Milliseconds(1));
  EXPECT_EQ(breaker->state(), State::kOpen);
}

}  // namespace
}  // namespace ortserve::router
