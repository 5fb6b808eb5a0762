// SPDX-License-Identifier: Apache-2.0
// ObservableClock: a Clock whose time can jump (a test clock), and that tells
// subscribers when it does.
#pragma once

#include "absl/functional/any_invocable.h"
#include "core/clock.h"

namespace ortserve::scheduler {

// The scheduler waits for deadlines and batching delays in real time, measured
// on its injected Clock. A clock that does not move with real time (FakeClock)
// implements this interface so that a jump wakes those waits at once instead
// of after the real-time equivalent. The real clock never jumps and does not
// implement it.
//
// Thread-safe. `wake` may run on any thread that moves the clock; it must not
// block and must not call AddObserver/RemoveObserver.
class ObservableClock : public Clock {
 public:
  // Calls `wake` after every change of Now() until RemoveObserver(key).
  virtual void AddObserver(const void* key, absl::AnyInvocable<void()> wake) = 0;
  // Removes the observer registered under `key`; once it returns, that
  // observer's `wake` is not running and will not run again.
  virtual void RemoveObserver(const void* key) = 0;
};

}  // namespace ortserve::scheduler
