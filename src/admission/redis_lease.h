// SPDX-License-Identifier: Apache-2.0
// RedisTokenLease: the global rate limit shared by every replica through one
// Redis server. The shared bucket lives in Redis (a token bucket updated by
// one server-side Lua script, so concurrent replicas never race on it); each
// replica leases tokens from it in small batches on a background thread into
// a local counter, so a request takes a token with one atomic operation and
// never waits on the network.
//
// When Redis cannot be reached (connect or command fails or times out), the
// lease says so (GlobalTokenSource::Result::kUnavailable) and the rate
// limiter enforces the global limit locally instead: requests are never
// failed because Redis is down. The outage is logged once, counted
// (ortserve_rate_limit_redis_fallback_total, per request decided locally) and
// shown by ortserve_rate_limit_redis_up; the thread reconnects with backoff
// and the shared bucket takes over again once Redis answers.
//
// Thread-safe. One thread of its own ("the lease thread"), joined by the
// destructor.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "admission/rate_limit.h"

namespace prometheus {
class Registry;
class Counter;
class Gauge;
}  // namespace prometheus

namespace ortserve::admission {

class RedisTokenLease final : public GlobalTokenSource {
 public:
  struct Options {
    // "host:port" ("[v6]:port" for IPv6 literals).
    std::string address;
    // The Redis key of the shared bucket: replicas sharing a limit share it.
    std::string key = "ortserve:ratelimit:global";
    RateSpec spec;  // The shared bucket's rate and burst. Required.
    // Tokens asked for at a time; 0: a twentieth of a second's worth (at
    // least 4 or the burst, at most the burst). A replica holds at most this
    // many unused.
    int64_t batch = 0;
    // Connect and command timeout.
    absl::Duration timeout = absl::Milliseconds(100);
    // How often the lease thread tops up when nothing wakes it earlier.
    absl::Duration poll = absl::Milliseconds(5);
    // Reconnect backoff bounds while Redis is unreachable.
    absl::Duration min_backoff = absl::Milliseconds(50);
    absl::Duration max_backoff = absl::Seconds(2);
    // The metrics (may be null).
    prometheus::Registry* registry = nullptr;
  };
  // Starts the lease thread. Redis need not be reachable yet (the local
  // limit applies until it is). Errors: InvalidArgument for a bad address
  // or a disabled spec.
  static absl::StatusOr<std::unique_ptr<RedisTokenLease>> Start(Options options);
  ~RedisTokenLease() override;

  Result TryTake() override;
  void Refund() override;

  // Whether the last exchange with Redis succeeded.
  bool up() const { return up_.load(std::memory_order_acquire); }
  // Requests decided by the local limit because Redis was unreachable.
  uint64_t fallback_count() const { return fallbacks_.load(std::memory_order_relaxed); }
  // Tokens granted by Redis so far.
  uint64_t leased_total() const { return leased_total_.load(std::memory_order_relaxed); }
  int64_t batch() const { return batch_; }

 private:
  struct Connection;
  explicit RedisTokenLease(Options options, std::string host, int port);
  void Run();
  void Wake();
  void SetUp(bool up, const std::string& why);

  const Options options_;
  const std::string host_;
  const int port_;
  int64_t batch_ = 1;
  std::atomic<bool> up_{false};
  std::atomic<int64_t> tokens_{0};
  std::atomic<bool> wanted_{false};
  std::atomic<uint64_t> fallbacks_{0};
  std::atomic<uint64_t> leased_total_{0};
  bool ever_down_logged_ = false;  // Lease thread only.
  absl::Mutex mu_;
  absl::CondVar wake_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  prometheus::Gauge* up_gauge_ = nullptr;
  prometheus::Counter* fallback_counter_ = nullptr;
  prometheus::Counter* error_counter_ = nullptr;
  prometheus::Counter* leased_counter_ = nullptr;
  std::thread thread_;
};

}  // namespace ortserve::admission
