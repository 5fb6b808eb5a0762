// SPDX-License-Identifier: Apache-2.0
#include "router/circuit_breaker.h"

#include <algorithm>

namespace ortserve::router {

const char* CircuitBreaker::StateName(State state) {
  switch (state) {
    case State::kClosed: return "closed";
    case State::kOpen: return "open";
    case State::kHalfOpen: return "half_open";
  }
  return "unknown";
}

CircuitBreaker::CircuitBreaker(BreakerSettings settings, Clock* clock, Transition on_transition)
    : settings_(settings),
      slice_(std::max(settings.window / kBuckets, absl::Milliseconds(1))),
      clock_(clock),
      on_transition_(std::move(on_transition)) {}

CircuitBreaker::State CircuitBreaker::state() const {
  absl::MutexLock lock(&mu_);
  return state_;
}

void CircuitBreaker::ResetWindow() {
  for (Bucket& bucket : buckets_) bucket = Bucket();
}

void CircuitBreaker::MoveTo(State to, absl::Time now) {
  const State from = state_;
  if (from == to) return;
  state_ = to;
  probes_issued_ = 0;
  probes_succeeded_ = 0;
  if (to == State::kOpen) opened_at_ = now;
  if (to == State::kClosed) ResetWindow();
  if (on_transition_) on_transition_(from, to);
}

void CircuitBreaker::MaybeHalfOpen(absl::Time now) {
  if (state_ == State::kOpen && now - opened_at_ >= settings_.open) MoveTo(State::kHalfOpen, now);
}

CircuitBreaker::Decision CircuitBreaker::Allow() {
  const absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  MaybeHalfOpen(now);
  switch (state_) {
    case State::kClosed:
      return {};
    case State::kOpen:
      return {.allowed = false, .retry_after = settings_.open - (now - opened_at_)};
    case State::kHalfOpen:
      if (probes_issued_ < settings_.half_open_requests) {
        ++probes_issued_;
        return {.allowed = true, .probe = true};
      }
      // Every probe is out: the others wait for their verdict.
      return {.allowed = false, .retry_after = absl::Seconds(1)};
  }
  return {};
}

void CircuitBreaker::Record(bool probe, Outcome outcome, absl::Duration latency) {
  const absl::Time now = clock_->Now();
  const bool slow = settings_.slow_call > absl::ZeroDuration() && latency > settings_.slow_call;
  absl::MutexLock lock(&mu_);
  if (probe) {
    // A probe's verdict counts only in the half-open state it was let through in.
    if (state_ != State::kHalfOpen) return;
    if (outcome == Outcome::kIgnored) {
      --probes_issued_;  // Its slot goes to another request.
      return;
    }
    if (outcome == Outcome::kFailure || slow) return MoveTo(State::kOpen, now);
    if (++probes_succeeded_ >= settings_.half_open_requests) MoveTo(State::kClosed, now);
    return;
  }
  // Answers to requests let through before the breaker opened change nothing.
  if (state_ != State::kClosed || outcome == Outcome::kIgnored) return;
  const int64_t epoch = (now - absl::UnixEpoch()) / slice_;
  Bucket& bucket = buckets_[static_cast<size_t>(epoch % kBuckets)];
  if (bucket.epoch != epoch) bucket = Bucket{.epoch = epoch};
  ++bucket.total;
  if (outcome == Outcome::kFailure) ++bucket.failures;
  if (slow) ++bucket.slow;
  int64_t total = 0, failures = 0, slow_calls = 0;
  for (const Bucket& b : buckets_) {
    if (b.epoch <= epoch - kBuckets || b.epoch > epoch) continue;  // Outside the window.
    total += b.total;
    failures += b.failures;
    slow_calls += b.slow;
  }
  if (total < settings_.min_requests) return;
  const double n = static_cast<double>(total);
  if (static_cast<double>(failures) / n >= settings_.error_rate ||
      (settings_.slow_call > absl::ZeroDuration() && static_cast<double>(slow_calls) / n >= settings_.slow_call_rate)) {
    MoveTo(State::kOpen, now);
  }
}

}  // namespace ortserve::router
