// SPDX-License-Identifier: Apache-2.0
// CpuProfiler: records a CPU profile of the running process (gperftools'
// sampling profiler) and returns it in pprof's format.
#pragma once

#include <atomic>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace ortserve::observability {

// Thread-safe; one profile at a time per process (gperftools has one).
class CpuProfiler {
 public:
  // Profiles the whole process for `duration` at `frequency_hz` samples a
  // second, blocking the calling thread (call it off any event loop), and
  // returns the profile bytes (`go tool pprof` / `pprof` read them).
  // Errors: InvalidArgument for a duration outside (0, 300] s; Aborted when
  // a profile is already being recorded; Internal when the profiler fails.
  static absl::StatusOr<std::string> Capture(absl::Duration duration, int frequency_hz = 100);

  // Whether this build has the profiler.
  static bool Available();
};

}  // namespace ortserve::observability
