// SPDX-License-Identifier: Apache-2.0
// Token buckets and the rate limiter, on a fake clock: bursts, refill,
// Retry-After, refunds, the bounded client table; and through Admission.
#include "admission/rate_limit.h"

#include <atomic>
#include <thread>
#include <vector>

#include "admission/admission.h"
#include "fakes/fake_clock.h"
#include "gtest/gtest.h"

namespace ortserve::admission {
namespace {

using testing::FakeClock;

TEST(RateSpecTest, ParsesRateAndBurst) {
  auto spec = ParseRateSpec("--x", "10:25");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_DOUBLE_EQ(spec->rate, 10);
  EXPECT_DOUBLE_EQ(spec->burst, 25);
  auto bare = ParseRateSpec("--x", "0.5");
  ASSERT_TRUE(bare.ok());
  EXPECT_DOUBLE_EQ(bare->burst, 1);  // At least one request.
  EXPECT_DOUBLE_EQ(ParseRateSpec("--x", "40")->burst, 40);
  for (const char* bad : {"", "0", "-1", "abc", "10:", "10:0", "10:x", "nan", "inf", "1e12", "10:1e12", ":5"}) {
    auto parsed = ParseRateSpec("--rate-limit-global", bad);
    EXPECT_FALSE(parsed.ok()) << bad;
    if (!parsed.ok()) EXPECT_NE(std::string(parsed.status().message()).find("--rate-limit-global"), std::string::npos);
  }
}

TEST(TokenBucketTest, AllowsTheBurstThenOneTokenPerInterval) {
  TokenBucket bucket(RateSpec{.rate = 10, .burst = 3});  // 100 ms a token.
  const int64_t t0 = 1'000'000'000'000;
  EXPECT_EQ(bucket.TryTake(t0), 0);
  EXPECT_EQ(bucket.TryTake(t0), 0);
  EXPECT_EQ(bucket.TryTake(t0), 0);
  EXPECT_EQ(bucket.TryTake(t0), 100'000'000);  // The wait until the next token.
  EXPECT_EQ(bucket.TryTake(t0 + 60'000'000), 40'000'000);
  EXPECT_EQ(bucket.TryTake(t0 + 100'000'000), 0);
  EXPECT_GT(bucket.TryTake(t0 + 100'000'000), 0);
  // Idle for long: the bucket is full again, never fuller than the burst.
  const int64_t later = t0 + 3'600'000'000'000;
  for (int i = 0; i < 3; ++i) EXPECT_EQ(bucket.TryTake(later), 0);
  EXPECT_GT(bucket.TryTake(later), 0);
  bucket.Refund();
  EXPECT_EQ(bucket.TryTake(later), 0);
}

TEST(TokenBucketTest, ConcurrentTakersNeverGetMoreThanTheBurst) {
  TokenBucket bucket(RateSpec{.rate = 1e-3, .burst = 1000});
  std::atomic<int> taken{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 500; ++i) taken += bucket.TryTake(5'000'000'000) == 0 ? 1 : 0;
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(taken.load(), 1000);
}

class RateLimiterTest : public ::testing::Test {
 protected:
  std::unique_ptr<RateLimiter> Make(RateLimiter::Options options) {
    options.clock = &clock_;
    auto limiter = RateLimiter::Create(std::move(options));
    EXPECT_TRUE(limiter.ok()) << limiter.status();
    return *std::move(limiter);
  }
  std::optional<RateLimiter::Refusal> Take(RateLimiter& limiter, std::string_view client, std::string_view model) {
    RateLimiter::Taken taken;
    bool fallback = false;
    return limiter.TryTake(client, model, &taken, &fallback);
  }
  FakeClock clock_;
};

TEST_F(RateLimiterTest, EachClientHasItsOwnBucket) {
  auto limiter = Make({.per_client = {.rate = 1, .burst = 2}});
  EXPECT_FALSE(Take(*limiter, "10.0.0.1", "m"));
  EXPECT_FALSE(Take(*limiter, "10.0.0.1", "m"));
  auto refused = Take(*limiter, "10.0.0.1", "m");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->limit, RateLimiter::Limit::kClient);
  EXPECT_EQ(refused->retry_after, absl::Seconds(1));
  EXPECT_FALSE(Take(*limiter, "10.0.0.2", "m"));  // Another client is not held back.
  clock_.Advance(absl::Milliseconds(400));
  EXPECT_EQ(Take(*limiter, "10.0.0.1", "m")->retry_after, absl::Milliseconds(600));
  clock_.Advance(absl::Milliseconds(600));
  EXPECT_FALSE(Take(*limiter, "10.0.0.1", "m"));
  EXPECT_FALSE(Take(*limiter, "", "m"));  // No key: no per-client limit.
}

TEST_F(RateLimiterTest, TheClientTableStaysBoundedUnderASprayOfAddresses) {
  auto limiter = Make({.per_client = {.rate = 1, .burst = 1}, .max_clients = 64});
  for (int i = 0; i < 20000; ++i) {
    EXPECT_FALSE(Take(*limiter, "203.0.113." + std::to_string(i), "m")) << i;
  }
  EXPECT_LE(limiter->client_count(), 64u);
  EXPECT_GE(limiter->client_evictions(), 20000u - 64u);
  // A client seen a moment ago, with traffic in between from a few others,
  // is still remembered (least recently seen goes first).
  auto small = Make({.per_client = {.rate = 1, .burst = 1}, .max_clients = 1600});
  EXPECT_FALSE(Take(*small, "regular", "m"));
  for (int i = 0; i < 20; ++i) Take(*small, "other" + std::to_string(i), "m");
  EXPECT_TRUE(Take(*small, "regular", "m"));
}

TEST_F(RateLimiterTest, PerModelLimitsByNameAndADefaultForTheRest) {
  auto limiter = Make({.per_model_default = {.rate = 1, .burst = 1},
                       .per_model = {{"big", {.rate = 1, .burst = 3}}}});
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(Take(*limiter, "c", "big"));
  auto refused = Take(*limiter, "c", "big");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->limit, RateLimiter::Limit::kModel);
  EXPECT_FALSE(Take(*limiter, "c", "small"));
  EXPECT_TRUE(Take(*limiter, "c", "small"));
  EXPECT_FALSE(Take(*limiter, "c", "other"));  // Each model its own default bucket.
  EXPECT_FALSE(Take(*limiter, "c", ""));       // A request naming no model.
}

TEST_F(RateLimiterTest, ARefusalByALaterLimitGivesEarlierTokensBack) {
  auto limiter = Make({.per_client = {.rate = 1, .burst = 1}, .per_model = {{"m", {.rate = 1, .burst = 1}}}});
  EXPECT_FALSE(Take(*limiter, "a", "m"));
  // b's token is taken, then m refuses: b keeps its token.
  EXPECT_EQ(Take(*limiter, "b", "m")->limit, RateLimiter::Limit::kModel);
  EXPECT_FALSE(Take(*limiter, "b", "other"));
}

TEST_F(RateLimiterTest, GlobalLimitIsLocalWithoutASharedSource) {
  auto limiter = Make({.global = {.rate = 2, .burst = 2}});
  EXPECT_FALSE(Take(*limiter, "a", "m"));
  EXPECT_FALSE(Take(*limiter, "b", "n"));
  auto refused = Take(*limiter, "c", "o");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->limit, RateLimiter::Limit::kGlobal);
  EXPECT_EQ(refused->retry_after, absl::Milliseconds(500));
}

TEST_F(RateLimiterTest, RejectsBadPerModelEntries) {
  RateLimiter::Options repeated;
  repeated.per_model = {{"m", {.rate = 1, .burst = 1}}, {"m", {.rate = 2, .burst = 2}}};
  EXPECT_EQ(RateLimiter::Create(repeated).status().code(), absl::StatusCode::kInvalidArgument);
  RateLimiter::Options unnamed;
  unnamed.per_model = {{"", {.rate = 1, .burst = 1}}};
  EXPECT_EQ(RateLimiter::Create(unnamed).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(RateLimiterTest, AdmissionRefusesWith429AndARetryAfterFromTheBucket) {
  auto limiter = Make({.per_client = {.rate = 0.1, .burst = 1}});  // One request per 10 s.
  Admission::Options options;
  options.rate_limiter = limiter.get();
  auto admission = *Admission::Create(options);
  auto first = admission->TryAdmit({.model = "m", .client = "198.51.100.7"});
  ASSERT_TRUE(first.ok());
  auto second = admission->TryAdmit({.model = "m", .client = "198.51.100.7"});
  ASSERT_EQ(second.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(std::string(second.status().message()).find("--rate-limit-per-client"), std::string::npos);
  EXPECT_EQ(std::string(*second.status().GetPayload("ortserve/retry-after")), "10");
  clock_.Advance(absl::Milliseconds(9500));
  auto third = admission->TryAdmit({.model = "m", .client = "198.51.100.7"});
  EXPECT_EQ(std::string(*third.status().GetPayload("ortserve/retry-after")), "1");  // 0.5 s, rounded up.
  // A budget refusal gives the token back.
  Admission::Options tight;
  tight.rate_limiter = limiter.get();
  tight.max_inflight_requests = 1;
  auto bounded = *Admission::Create(tight);
  auto held = bounded->TryAdmit({.client = "x"});
  ASSERT_TRUE(held.ok());
  EXPECT_EQ(bounded->TryAdmit({.client = "y"}).status().code(), absl::StatusCode::kUnavailable);
  held->Release();
  EXPECT_TRUE(bounded->TryAdmit({.client = "y"}).ok());  // y's token was not spent on the refusal.
}

TEST(RefusalNameTest, RateLimitReasons) {
  EXPECT_EQ(RefusalName(Refusal::kRateClient), "rate_client");
  EXPECT_EQ(RefusalName(Refusal::kRateModel), "rate_model");
  EXPECT_EQ(RefusalName(Refusal::kRateGlobal), "rate_global");
}

}  // namespace
}  // namespace ortserve::admission
