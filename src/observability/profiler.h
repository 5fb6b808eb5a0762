// SPDX-License-Identifier: Apache-2.0
// CpuProfiler: records a CPU profile of the running process (gperftools'
// sampling profiler) and returns it in pprof's format. HeapProfiler: returns
// tcmalloc's sample of the live heap, in pprof's heap format.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include <functional>
#include <optional>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace ortserve::observability {

// Thread-safe; one profile at a time per process (gperftools has one).
class CpuProfiler {
 public:
  // Profiles the whole process for `duration` at Frequency() samples a
  // second, blocking the calling thread (call it off any event loop), and
  // returns the profile bytes (`go tool pprof` / `pprof` read them).
  // `frequency_hz`: 0, or the rate the caller expects (checked).
  // Errors: InvalidArgument for a duration outside (0, 300] s or a
  // frequency other than Frequency(); Aborted when a profile is already
  // being recorded; Internal when the profiler fails.
  // `stop` (optional): notified, it ends the recording early with Cancelled
  // (a server shutting down does not wait out a 5-minute profile).
  static absl::StatusOr<std::string> Capture(absl::Duration duration, int frequency_hz = 0,
                                             absl::Notification* stop = nullptr);

  // Whether this build has the profiler.
  static bool Available();
  // The sampling rate in Hz. gperftools fixes it when the process starts
  // (environment variable CPUPROFILE_FREQUENCY, default 100).
  static int Frequency();
};

// Records CPU profiles on one thread of its own, named "ortserve-profile":
// a recording blocks its thread for its whole duration, so it must not run
// on an event loop, and a thread per request would let clients start
// threads. One recording at a time (gperftools has one profiler).
//
// Thread-safe. The destructor ends a recording in progress (its callback
// gets Cancelled) and joins the thread.
class ProfileWorker {
 public:
  ProfileWorker();
  ~ProfileWorker();
  ProfileWorker(const ProfileWorker&) = delete;
  ProfileWorker& operator=(const ProfileWorker&) = delete;

  using Done = std::function<void(absl::StatusOr<std::string>)>;
  // Starts recording for `duration` at `frequency_hz` (see
  // CpuProfiler::Capture); `done` is called once, on the worker's thread,
  // with the profile or the error. Aborted (and `done` not called) when a
  // recording is already in progress or waiting.
  absl::Status Start(absl::Duration duration, int frequency_hz, Done done);

 private:
  void Run();

  absl::Mutex mu_;
  struct Job {
    absl::Duration duration;
    int frequency_hz = 0;
    Done done;
  };
  std::optional<Job> job_ ABSL_GUARDED_BY(mu_);
  bool busy_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Notification stop_;
  std::thread thread_;
};

// The live heap as tcmalloc samples it: one stack trace per sampled
// allocation still in use. Needs a build with tcmalloc (CMake option
// ORTSERVE_TCMALLOC, on by default unless ORTSERVE_SANITIZE). Sampling is off
// unless turned on: the server does so with --enable-profiling (every
// ~512 KiB allocated, one allocation's stack is recorded). It is not free: a
// sample unwinds the stack, which on a server reading 100 KB tensor bodies
// was about one unwind per request. The environment variable
// TCMALLOC_SAMPLE_PARAMETER, when set, chooses the period in bytes instead
// (0 keeps sampling off).
// Thread-safe.
class HeapProfiler {
 public:
  // The period EnableDefaultSampling sets.
  static constexpr int64_t kDefaultSamplePeriodBytes = 512 * 1024;

  // Turns sampling on at kDefaultSamplePeriodBytes, unless
  // TCMALLOC_SAMPLE_PARAMETER chose the period. No-op without tcmalloc.
  static void EnableDefaultSampling();

  // Whether this build links tcmalloc.
  static bool Available();
  // The current sampling period in bytes; 0 when sampling is off or there
  // is no tcmalloc.
  static int64_t SamplePeriod();
  // Sets the sampling period (0: off). Threads pick the new period up at
  // their next sampling point. FailedPrecondition without tcmalloc.
  static absl::Status SetSamplePeriod(int64_t bytes);

  // The heap sample in the text form `pprof` reads ("heap profile: ..."
  // header, then one line per stack, then the process's memory maps).
  // Errors: Unimplemented without tcmalloc; FailedPrecondition while
  // sampling is off (the profile would be empty).
  static absl::StatusOr<std::string> Capture();

  // After a request that held `bytes` (its body and what decoding it took)
  // has been answered: when that was large (kLargeRequestBytes or more),
  // hands the allocator's free memory back to the OS (tcmalloc's
  // ReleaseFreeMemory, glibc's malloc_trim), so that a burst of large bodies
  // does not leave the process at its peak resident size (four 60 MB JSON
  // bodies at once: 925 MB peak, 58 MB after, where it stayed at 739 MB).
  // It costs about what freeing pages costs, small next to parsing 8 MiB;
  // for smaller requests one comparison.
  static constexpr size_t kLargeRequestBytes = size_t{8} << 20;
  static void AfterRequest(size_t bytes);
};

}  // namespace ortserve::observability
