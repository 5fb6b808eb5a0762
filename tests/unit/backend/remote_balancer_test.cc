// SPDX-License-Identifier: Apache-2.0
// The remote model's endpoint choice: round-robin and least-outstanding
// picks, health, outlier ejection and its expiry on a fake clock, and the
// retry budget.
#include "backend/remote/balancer.h"

#include <set>
#include <vector>

#include "fakes/fake_clock.h"
#include "gtest/gtest.h"

namespace ortserve::backend::remote {
namespace {

using ortserve::testing::FakeClock;

TEST(RemoteBalancerTest, RoundRobinVisitsEveryEndpointInTurn) {
  FakeClock clock;
  Balancer balancer(3, {}, &clock);
  std::vector<int> picks;
  for (int i = 0; i < 6; ++i) {
    const int e = balancer.Pick();
    picks.push_back(e);
    balancer.Finish(e, false);
  }
  EXPECT_EQ(picks, (std::vector<int>{0, 1, 2, 0, 1, 2}));
}

TEST(RemoteBalancerTest, LeastOutstandingAvoidsBusyEndpoints) {
  FakeClock clock;
  Balancer balancer(3, {.policy = BalancePolicy::kLeastOutstanding}, &clock);
  const int a = balancer.Pick();
  const int b = balancer.Pick();
  const int c = balancer.Pick();
  EXPECT_EQ((std::set<int>{a, b, c}), (std::set<int>{0, 1, 2}));
  // `a` finishes: it is the only endpoint with nothing outstanding.
  balancer.Finish(a, false);
  EXPECT_EQ(balancer.Pick(), a);
  EXPECT_EQ(balancer.state(a).outstanding, 1u);
  // Everyone at one: a fourth call may go anywhere, a fifth must not pile on it.
  const int d = balancer.Pick();
  const int e = balancer.Pick();
  EXPECT_NE(d, e);
  for (int i = 0; i < 3; ++i) EXPECT_LE(balancer.state(i).outstanding, 2u);
}

TEST(RemoteBalancerTest, UnhealthyEndpointsAreSkippedAndNoneLeftIsMinusOne) {
  FakeClock clock;
  Balancer balancer(2, {}, &clock);
  balancer.SetHealthy(0, false);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(balancer.Pick(), 1);
    balancer.Finish(1, false);
  }
  balancer.SetHealthy(1, false);
  EXPECT_EQ(balancer.Pick(), -1);
  balancer.SetHealthy(0, true);
  EXPECT_EQ(balancer.Pick(), 0);
}

TEST(RemoteBalancerTest, ExcludedEndpointsAreNotPicked) {
  FakeClock clock;
  Balancer balancer(3, {}, &clock);
  EXPECT_EQ(balancer.Pick(/*exclude=*/0b011), 2);
  EXPECT_EQ(balancer.Pick(0b111), -1);
}

TEST(RemoteBalancerTest, ConsecutiveFailuresEjectForAPeriod) {
  FakeClock clock;
  Balancer balancer(2, {.eject_after_failures = 3, .eject_for = absl::Seconds(10)}, &clock);
  // Two failures, then a success: the count starts over.
  EXPECT_FALSE(balancer.Finish(balancer.Pick(0b10), true));
  EXPECT_FALSE(balancer.Finish(balancer.Pick(0b10), true));
  EXPECT_FALSE(balancer.Finish(balancer.Pick(0b10), false));
  EXPECT_FALSE(balancer.Finish(balancer.Pick(0b10), true));
  EXPECT_FALSE(balancer.Finish(balancer.Pick(0b10), true));
  EXPECT_TRUE(balancer.Finish(balancer.Pick(0b10), true));  // Third in a row.
  EXPECT_EQ(balancer.state(0).ejections, 1u);
  // Ejected: every pick goes to endpoint 1 until the period ends.
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(balancer.Pick(), 1);
    balancer.Finish(1, false);
  }
  EXPECT_EQ(balancer.Pick(0b10), -1);
  clock.Advance(absl::Seconds(9));
  EXPECT_EQ(balancer.Pick(0b10), -1);
  clock.Advance(absl::Seconds(1));
  EXPECT_EQ(balancer.Pick(0b10), 0);  // Back in rotation.
}

TEST(RemoteBalancerTest, FailuresOfCallsInFlightDoNotExtendAnEjection) {
  FakeClock clock;
  Balancer balancer(1, {.eject_after_failures = 1, .eject_for = absl::Seconds(5)}, &clock);
  const int first = balancer.Pick();
  const int second = balancer.Pick();
  EXPECT_TRUE(balancer.Finish(first, true));
  clock.Advance(absl::Seconds(4));
  EXPECT_FALSE(balancer.Finish(second, true));  // Was in flight when ejected.
  clock.Advance(absl::Seconds(1));
  EXPECT_EQ(balancer.Pick(), 0);
  EXPECT_EQ(balancer.state(0).ejections, 1u);
}

TEST(RemoteBalancerTest, RetryBudgetAllowsAFractionOfCalls) {
  RetryBudget budget(0.25, /*initial=*/2, /*cap=*/5);
  EXPECT_TRUE(budget.TryRetry());
  EXPECT_TRUE(budget.TryRetry());
  EXPECT_FALSE(budget.TryRetry());  // Spent.
  for (int i = 0; i < 3; ++i) budget.OnCall();
  EXPECT_FALSE(budget.TryRetry());  // 0.75 tokens.
  budget.OnCall();
  EXPECT_TRUE(budget.TryRetry());  // Four calls earn one retry.
  for (int i = 0; i < 1000; ++i) budget.OnCall();
  EXPECT_DOUBLE_EQ(budget.tokens(), 5);  // Capped: a quiet spell does not bank a storm of retries.
}

}  // namespace
}  // namespace ortserve::backend::remote
