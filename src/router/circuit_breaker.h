// SPDX-License-Identifier: Apache-2.0
// CircuitBreaker: stops sending requests to a model version that keeps
// failing or answering too slowly, so that they go to the model's fallback
// (or are refused at once with 503) instead of queuing behind a broken
// version; after a pause, a few probe requests test whether it recovered.
//
//   closed ── error rate or slow-call rate over the window reaches its
//             threshold (with at least min_requests) ──► open
//   open ──── open_ms passed ──► half-open
//   half-open: up to half_open_requests probes go through; all succeed ──►
//             closed (a fresh window); one fails ──► open again
//
// Configured per model in config.pbtxt (`routing { circuit_breaker { ... } }`,
// docs/model_config.md); one breaker per loaded model version, kept by the
// router. Time comes from the injected Clock, so tests need no sleeping.
//
// Thread-safe: one short lock per decision and per outcome (a few
// arithmetic operations; never held while calling out, except the
// transition callback, which only updates metrics and logs).
#pragma once

#include <array>
#include <cstdint>
#include <functional>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/clock.h"

namespace ortserve::router {

struct BreakerSettings {
  absl::Duration window = absl::Seconds(10);  // Outcomes counted over this long.
  int64_t min_requests = 20;                  // Outcomes in the window before it may open.
  double error_rate = 0.5;                    // Failed fraction that opens it, in (0, 1].
  absl::Duration slow_call = absl::ZeroDuration();  // Slower answers count as slow; 0: latency ignored.
  double slow_call_rate = 0.5;                // Slow fraction that opens it, in (0, 1].
  absl::Duration open = absl::Seconds(5);     // How long it stays open before probing.
  int64_t half_open_requests = 3;             // Probes; all must succeed to close.
};

class CircuitBreaker {
 public:
  enum class State {
    kClosed,    // Requests go through; outcomes are counted.
    kOpen,      // Requests are refused (or sent to the fallback) until `open` passes.
    kHalfOpen,  // Only probes go through; their outcomes decide.
  };
  static const char* StateName(State state);  // "closed", "open", "half_open"

  enum class Outcome {
    kSuccess,  // Answered (slow or not: see latency).
    kFailure,  // The version failed, timed out or was unavailable.
    kIgnored,  // Says nothing about the version (a bad request, a cancelled client).
  };

  // Called (under the breaker's lock, so in order) on every state change.
  using Transition = std::function<void(State from, State to)>;
  CircuitBreaker(BreakerSettings settings, Clock* clock, Transition on_transition = nullptr);

  struct Decision {
    bool allowed = true;
    bool probe = false;                               // Allowed as a half-open probe.
    absl::Duration retry_after = absl::ZeroDuration();  // When refused: until probing starts.
  };
  // Whether one request may go to the version now. An allowed request must
  // be followed by exactly one Record with the same `probe`.
  Decision Allow();
  void Record(bool probe, Outcome outcome, absl::Duration latency);

  State state() const;
  const BreakerSettings& settings() const { return settings_; }

 private:
  static constexpr int kBuckets = 10;
  struct Bucket {
    int64_t epoch = -1;  // Which window slice it counts (now / slice).
    int64_t total = 0;
    int64_t failures = 0;
    int64_t slow = 0;
  };
  void MoveTo(State to, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ResetWindow() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MaybeHalfOpen(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const BreakerSettings settings_;
  const absl::Duration slice_;
  Clock* const clock_;
  const Transition on_transition_;
  mutable absl::Mutex mu_;
  State state_ ABSL_GUARDED_BY(mu_) = State::kClosed;
  absl::Time opened_at_ ABSL_GUARDED_BY(mu_);
  std::array<Bucket, kBuckets> buckets_ ABSL_GUARDED_BY(mu_);
  int64_t probes_issued_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t probes_succeeded_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace ortserve::router
