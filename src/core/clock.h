// SPDX-License-Identifier: Apache-2.0
// Clock: the source of time, injected so that tests can drive it.
#pragma once

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace ortserve {

// Thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;

  // The process-wide real clock.
  static Clock* Real();
};

class RealClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
};

inline Clock* Clock::Real() {
  static RealClock clock;
  return &clock;
}

}  // namespace ortserve
