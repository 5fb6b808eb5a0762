// SPDX-License-Identifier: Apache-2.0
#include "backend/remote/balancer.h"

#include <algorithm>
#include <limits>

namespace ortserve::backend::remote {

Balancer::Balancer(size_t endpoints, BalancerOptions options, const Clock* clock)
    : size_(endpoints), options_(options), clock_(clock), states_(endpoints) {}

int Balancer::Pick(uint64_t exclude) {
  const absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  int chosen = -1;
  uint32_t fewest = std::numeric_limits<uint32_t>::max();
  for (size_t k = 0; k < size_; ++k) {
    const size_t i = (next_ + k) % size_;
    if ((exclude >> i) & 1) continue;
    const EndpointState& s = states_[i];
    if (!Available(s, now)) continue;
    if (options_.policy == BalancePolicy::kRoundRobin) {
      chosen = static_cast<int>(i);
      break;
    }
    if (s.outstanding < fewest) {  // Strictly fewer: ties go to the first in round-robin order.
      fewest = s.outstanding;
      chosen = static_cast<int>(i);
    }
  }
  if (chosen < 0) return -1;
  next_ = (static_cast<size_t>(chosen) + 1) % size_;
  ++states_[chosen].outstanding;
  return chosen;
}

bool Balancer::Finish(int endpoint, bool failure) {
  const absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  EndpointState& s = states_[endpoint];
  if (s.outstanding > 0) --s.outstanding;
  if (!failure) {
    s.consecutive_failures = 0;
    return false;
  }
  // Failures of calls that were in flight when it was ejected do not extend
  // the ejection.
  if (s.ejected_until > now) return false;
  if (++s.consecutive_failures < std::max<uint32_t>(1, options_.eject_after_failures)) return false;
  s.consecutive_failures = 0;
  s.ejected_until = now + options_.eject_for;
  ++s.ejections;
  return true;
}

void Balancer::SetHealthy(int endpoint, bool healthy) {
  absl::MutexLock lock(&mu_);
  states_[endpoint].healthy = healthy;
}

Balancer::EndpointState Balancer::state(int endpoint) const {
  absl::MutexLock lock(&mu_);
  return states_[endpoint];
}

void RetryBudget::OnCall() {
  absl::MutexLock lock(&mu_);
  tokens_ = std::min(cap_, tokens_ + ratio_);
}

bool RetryBudget::TryRetry() {
  absl::MutexLock lock(&mu_);
  if (tokens_ < 1) return false;
  tokens_ -= 1;
  return true;
}

double RetryBudget::tokens() const {
  absl::MutexLock lock(&mu_);
  return tokens_;
}

}  // namespace ortserve::backend::remote
