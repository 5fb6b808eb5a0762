// SPDX-License-Identifier: Apache-2.0
// The global rate limit shared through a real redis-server started here on a
// free port: two leases (two replicas) share one bucket; Redis killed in the
// middle makes the limiter fall back to its local bucket, and a restarted
// Redis takes over again.
#include "admission/redis_lease.h"

#include <chrono>
#include <functional>
#include <thread>

#include "common/redis_process.h"
#include "gtest/gtest.h"

namespace ortserve::admission {
namespace {

using testing::RedisProcess;

bool WaitFor(const std::function<bool()>& check, int seconds = 10) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < until) {
    if (check()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return check();
}

std::unique_ptr<RedisTokenLease> Lease(const RedisProcess& redis, RateSpec spec, const std::string& key) {
  RedisTokenLease::Options options;
  options.address = redis.address();
  options.key = key;
  options.spec = spec;
  options.batch = 5;
  options.min_backoff = absl::Milliseconds(20);
  options.max_backoff = absl::Milliseconds(200);
  auto lease = RedisTokenLease::Start(std::move(options));
  EXPECT_TRUE(lease.ok()) << lease.status();
  return lease.ok() ? *std::move(lease) : nullptr;
}

// Takes tokens from `lease` until it has been empty for `quiet`.
int Drain(RedisTokenLease& lease, absl::Duration quiet = absl::Milliseconds(300)) {
  int taken = 0;
  absl::Time last = absl::Now();
  while (absl::Now() - last < quiet) {
    const auto result = lease.TryTake();
    EXPECT_NE(result, GlobalTokenSource::Result::kUnavailable);
    if (result == GlobalTokenSource::Result::kTaken) {
      ++taken;
      last = absl::Now();
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  return taken;
}

class RedisLeaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!RedisProcess::Available()) GTEST_SKIP() << "redis-server is not installed (scripts/setup.sh)";
    ASSERT_TRUE(redis_.Start());
  }
  RedisProcess redis_;
};

TEST_F(RedisLeaseTest, TwoReplicasShareOneBucket) {
  // 40 tokens, refilled at 1 a second: over a few seconds both replicas
  // together get the burst plus a handful, however they split it.
  const RateSpec spec{.rate = 1, .burst = 40};
  auto a = Lease(redis_, spec, "test:shared");
  auto b = Lease(redis_, spec, "test:shared");
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(WaitFor([&] { return a->up() && b->up(); }));
  const auto start = std::chrono::steady_clock::now();
  int from_a = 0, from_b = 0;
  std::thread other([&] { from_b = Drain(*b); });
  from_a = Drain(*a);
  other.join();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_GE(from_a + from_b, 40);
  EXPECT_LE(from_a + from_b, 40 + static_cast<int>(seconds * spec.rate) + 2);
  EXPECT_GT(from_a, 0);
  EXPECT_GT(from_b, 0);
  EXPECT_EQ(a->leased_total() + b->leased_total(), static_cast<uint64_t>(from_a + from_b));
  EXPECT_EQ(a->fallback_count(), 0u);
}

TEST_F(RedisLeaseTest, FallsBackToTheLocalLimitWhileRedisIsDownAndRecovers) {
  const RateSpec spec{.rate = 1, .burst = 10};
  auto lease = Lease(redis_, spec, "test:outage");
  ASSERT_TRUE(lease);
  ASSERT_TRUE(WaitFor([&] { return lease->up(); }));
  RateLimiter::Options options;
  options.global = {.rate = 1, .burst = 3};  // The local fallback: stricter, to tell them apart.
  options.shared_global = lease.get();
  auto limiter = *RateLimiter::Create(options);
  auto take = [&](bool* fallback) {
    RateLimiter::Taken taken;
    return !limiter->TryTake("", "", &taken, fallback).has_value();
  };
  // Shared: the Redis bucket's 10 (the local one's 3 are not used).
  int allowed = 0;
  bool fallback = false;
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
  while (std::chrono::steady_clock::now() < until) {
    if (take(&fallback)) ++allowed;
    EXPECT_FALSE(fallback);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_GE(allowed, 10);
  EXPECT_LE(allowed, 12);

  redis_.Stop();
  // Within a lease round trip or two the lease is down; requests are decided
  // locally meanwhile, never failed.
  ASSERT_TRUE(WaitFor([&] {
    bool used = false;
    take(&used);
    return !lease->up() && used;
  }));
  const uint64_t fallbacks = lease->fallback_count();
  EXPECT_GT(fallbacks, 0u);
  int local = 0;
  for (int i = 0; i < 20; ++i) {
    if (take(&fallback)) ++local;
    EXPECT_TRUE(fallback);
  }
  EXPECT_LE(local, 3);  // The local bucket's burst, at most.
  EXPECT_EQ(lease->fallback_count(), fallbacks + 20);

  ASSERT_TRUE(redis_.Start());
  ASSERT_TRUE(WaitFor([&] { return lease->up(); })) << "the lease did not reconnect";
  // A fresh Redis has a full bucket again: shared tokens flow.
  ASSERT_TRUE(WaitFor([&] {
    bool used = true;
    return take(&used) && !used;
  }));
}

TEST_F(RedisLeaseTest, UnreachableFromTheStartIsLocalAndNeverBlocks) {
  redis_.Stop();
  const RateSpec spec{.rate = 100, .burst = 100};
  auto lease = Lease(redis_, spec, "test:never");
  ASSERT_TRUE(lease);
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(lease->TryTake(), GlobalTokenSource::Result::kUnavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(200));
  EXPECT_FALSE(lease->up());
}

TEST(RedisLeaseOptionsTest, RejectsBadAddressesAndAMissingRate) {
  RedisTokenLease::Options options;
  options.spec = {.rate = 1, .burst = 1};
  for (const char* bad : {"", "localhost", ":6379", "host:", "host:0", "host:70000", "host:12x"}) {
    options.address = bad;
    EXPECT_EQ(RedisTokenLease::Start(options).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  options.address = "127.0.0.1:6379";
  options.spec = {};
  EXPECT_EQ(RedisTokenLease::Start(options).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ortserve::admission
