// SPDX-License-Identifier: Apache-2.0
#include "observability/profiler.h"

#include "absl/time/clock.h"

#include <gperftools/profiler.h>
#include <pthread.h>
#include <malloc.h>
#include <unistd.h>

#if ORTSERVE_TCMALLOC
#include <gperftools/malloc_extension.h>
#endif

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/strings.h"

#if ORTSERVE_TCMALLOC
// tcmalloc's sampling period. gperftools has no API to set it, only this
// flag (exported by libtcmalloc, initialised from TCMALLOC_SAMPLE_PARAMETER);
// its sampler rereads the flag at every sampling point, and while sampling
// is off it still stops by every few MiB a thread allocates, so a change
// takes effect at run time.
namespace FLAG__namespace_do_not_use_directly_use_DECLARE_int64_instead {
extern int64_t FLAGS_tcmalloc_sample_parameter;
}  // namespace FLAG__namespace_do_not_use_directly_use_DECLARE_int64_instead
#endif

namespace ortserve::observability {
namespace {
std::atomic<bool> busy{false};

#if ORTSERVE_TCMALLOC
int64_t& SampleParameter() {
  return FLAG__namespace_do_not_use_directly_use_DECLARE_int64_instead::FLAGS_tcmalloc_sample_parameter;
}

#endif
}  // namespace

bool HeapProfiler::Available() { return ORTSERVE_TCMALLOC != 0; }

void HeapProfiler::AfterRequest(size_t bytes) {
  if (bytes < kLargeRequestBytes) return;
#if ORTSERVE_TCMALLOC
  MallocExtension::instance()->ReleaseFreeMemory();
#elif defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__)
  malloc_trim(0);
#endif
}

void HeapProfiler::EnableDefaultSampling() {
#if ORTSERVE_TCMALLOC
  if (std::getenv("TCMALLOC_SAMPLE_PARAMETER") == nullptr) SampleParameter() = kDefaultSamplePeriodBytes;
#endif
}

int64_t HeapProfiler::SamplePeriod() {
#if ORTSERVE_TCMALLOC
  return SampleParameter();
#else
  return 0;
#endif
}

absl::Status HeapProfiler::SetSamplePeriod(int64_t bytes) {
  if (bytes < 0) return absl::InvalidArgumentError(StrCat("heap sample period ", bytes, " is negative"));
#if ORTSERVE_TCMALLOC
  SampleParameter() = bytes;
  return absl::OkStatus();
#else
  return absl::FailedPreconditionError("this ortserve is built without tcmalloc (ORTSERVE_TCMALLOC=OFF)");
#endif
}

absl::StatusOr<std::string> HeapProfiler::Capture() {
#if ORTSERVE_TCMALLOC
  if (SampleParameter() <= 0) {
    return absl::FailedPreconditionError(
        "tcmalloc heap sampling is off: start ortserve with --enable-profiling (and without "
        "TCMALLOC_SAMPLE_PARAMETER=0)");
  }
  std::string profile;
  MallocExtension::instance()->GetHeapSample(&profile);
  if (profile.empty()) return absl::InternalError("tcmalloc returned an empty heap sample");
  return profile;
#else
  return absl::UnimplementedError(
      "heap profiles need tcmalloc: this ortserve was built with ORTSERVE_TCMALLOC=OFF");
#endif
}

bool CpuProfiler::Available() { return true; }

int CpuProfiler::Frequency() {
  // gperftools reads CPUPROFILE_FREQUENCY once, when it loads (its default is
  // 100 Hz; values outside [1, 4000] fall back to it); later changes to the
  // environment do nothing.
  static const int frequency = [] {
    const char* value = std::getenv("CPUPROFILE_FREQUENCY");
    const int hz = value != nullptr ? std::atoi(value) : 0;
    return hz >= 1 && hz <= 4000 ? hz : 100;
  }();
  return frequency;
}

absl::StatusOr<std::string> CpuProfiler::Capture(absl::Duration duration, int frequency_hz,
                                                 absl::Notification* stop) {
  if (duration <= absl::ZeroDuration() || duration > absl::Seconds(300)) {
    return absl::InvalidArgumentError(
        StrCat("profile duration ", absl::ToDoubleSeconds(duration), " s is not in (0, 300]"));
  }
  if (frequency_hz != 0 && frequency_hz != Frequency()) {
    return absl::InvalidArgumentError(StrCat("profile frequency ", frequency_hz, " Hz cannot be honoured: the CPU profiler samples at ",
                                             Frequency(), " Hz, fixed at start-up by CPUPROFILE_FREQUENCY"));
  }
  if (busy.exchange(true)) return absl::AbortedError("a CPU profile is already being recorded");
  struct Release {
    ~Release() { busy.store(false); }
  } release;
  char path[] = "/tmp/ortserve-cpu-XXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) return absl::InternalError("cannot create a temporary file for the CPU profile");
  close(fd);
  ProfilerOptions options{};
  if (ProfilerStartWithOptions(path, &options) == 0) {
    std::remove(path);
    return absl::InternalError("gperftools ProfilerStart failed");
  }
  bool stopped = false;
  if (stop != nullptr) {
    stopped = stop->WaitForNotificationWithTimeout(duration);
  } else {
    absl::SleepFor(duration);
  }
  ProfilerStop();
  if (stopped) {
    std::remove(path);
    return absl::CancelledError("the CPU profile was cut short: the server is shutting down");
  }
  std::ifstream in(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  std::remove(path);
  std::string profile = bytes.str();
  if (profile.empty()) return absl::InternalError("the CPU profiler wrote no data");
  return profile;
}

ProfileWorker::ProfileWorker() : thread_([this] { Run(); }) {}

ProfileWorker::~ProfileWorker() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  stop_.Notify();
  thread_.join();
}

absl::Status ProfileWorker::Start(absl::Duration duration, int frequency_hz, Done done) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return absl::UnavailableError("the server is shutting down");
  if (busy_) return absl::AbortedError("a CPU profile is already being recorded");
  busy_ = true;
  job_ = Job{duration, frequency_hz, std::move(done)};
  return absl::OkStatus();
}

void ProfileWorker::Run() {
  pthread_setname_np(pthread_self(), "ortserve-profile");
  for (;;) {
    Job job;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](ProfileWorker* self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(self->mu_) {
            return self->stopping_ || self->job_.has_value();
          },
          this));
      if (!job_) return;  // Stopping, nothing left.
      job = *std::move(job_);
      job_.reset();
    }
    absl::StatusOr<std::string> profile = CpuProfiler::Capture(job.duration, job.frequency_hz, &stop_);
    // Free before answering: a client that sends its next profile request
    // as soon as it has this answer must not find the worker still busy.
    {
      absl::MutexLock lock(&mu_);
      busy_ = false;
    }
    job.done(std::move(profile));
  }
}

}  // namespace ortserve::observability
