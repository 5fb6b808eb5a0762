// SPDX-License-Identifier: Apache-2.0
// Which endpoint of a remote model gets the next call: load balancing
// (round-robin or least outstanding), active health (set by the health
// checker) and passive outlier ejection (consecutive failures take an
// endpoint out for a while), plus the retry budget. Pure logic on an injected
// clock, so tests drive it without sockets or sleeps.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/clock.h"

namespace ortserve::backend::remote {

enum class BalancePolicy { kRoundRobin, kLeastOutstanding };

// At most this many endpoints per remote model (Pick's exclusion mask).
inline constexpr size_t kMaxEndpoints = 64;

struct BalancerOptions {
  BalancePolicy policy = BalancePolicy::kRoundRobin;
  uint32_t eject_after_failures = 5;  // Consecutive failures; >= 1.
  absl::Duration eject_for = absl::Seconds(10);
};

// Thread-safe.
class Balancer {
 public:
  struct EndpointState {
    uint32_t outstanding = 0;           // Calls picked and not finished.
    uint32_t consecutive_failures = 0;  // Since the last success or ejection.
    absl::Time ejected_until = absl::InfinitePast();
    bool healthy = true;                // The last health check's verdict.
    uint64_t ejections = 0;
  };

  // `endpoints` in [1, kMaxEndpoints] (the caller checks).
  Balancer(size_t endpoints, BalancerOptions options, const Clock* clock);

  // An endpoint that is healthy, not ejected and not in `exclude` (bit i:
  // endpoint i), counted as outstanding until Finish; -1 when none is.
  // Round-robin starts each pick after the last one; least-outstanding takes
  // the fewest outstanding, ties broken round-robin.
  int Pick(uint64_t exclude = 0);
  // Ends a call Pick returned. `failure`: the endpoint failed it
  // (unreachable, timed out, 5xx); enough of them in a row eject it for
  // eject_for. Returns true when this call ejected it.
  bool Finish(int endpoint, bool failure);
  // The health checker's verdict on `endpoint`.
  void SetHealthy(int endpoint, bool healthy);

  EndpointState state(int endpoint) const;
  size_t size() const { return size_; }

 private:
  bool Available(const EndpointState& s, absl::Time now) const { return s.healthy && s.ejected_until <= now; }

  const size_t size_;
  const BalancerOptions options_;
  const Clock* const clock_;
  mutable absl::Mutex mu_;
  std::vector<EndpointState> states_ ABSL_GUARDED_BY(mu_);
  size_t next_ ABSL_GUARDED_BY(mu_) = 0;
};

// Retries may add at most `ratio` of the calls made (plus a few to start
// with): each call deposits `ratio` tokens (up to `cap`), each retry takes
// one. Keeps a failing remote from being hit with (1 + max_retries) times
// the traffic. Thread-safe.
class RetryBudget {
 public:
  explicit RetryBudget(double ratio, double initial = 3, double cap = 10)
      : ratio_(ratio), cap_(cap), tokens_(initial) {}
  void OnCall();
  // Takes a token; false when the budget is spent.
  bool TryRetry();
  double tokens() const;

 private:
  const double ratio_;
  const double cap_;
  mutable absl::Mutex mu_;
  double tokens_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ortserve::backend::remote
