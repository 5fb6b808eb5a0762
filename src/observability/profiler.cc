// SPDX-License-Identifier: Apache-2.0
#include "observability/profiler.h"

#include <gperftools/profiler.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/strings.h"

namespace ortserve::observability {
namespace {
std::atomic<bool> busy{false};
}  // namespace

bool CpuProfiler::Available() { return true; }

absl::StatusOr<std::string> CpuProfiler::Capture(absl::Duration duration, int frequency_hz) {
  if (duration <= absl::ZeroDuration() || duration > absl::Seconds(300)) {
    return absl::InvalidArgumentError(
        StrCat("profile duration ", absl::ToDoubleSeconds(duration), " s is not in (0, 300]"));
  }
  if (frequency_hz < 1 || frequency_hz > 4000) {
    return absl::InvalidArgumentError(StrCat("profile frequency ", frequency_hz, " Hz is not in [1, 4000]"));
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
  // The frequency is read from the environment when the profiler starts.
  setenv("CPUPROFILE_FREQUENCY", std::to_string(frequency_hz).c_str(), 1);
  if (ProfilerStartWithOptions(path, &options) == 0) {
    std::remove(path);
    return absl::InternalError("gperftools ProfilerStart failed");
  }
  std::this_thread::sleep_for(std::chrono::nanoseconds(absl::ToInt64Nanoseconds(duration)));
  ProfilerStop();
  std::ifstream in(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  std::remove(path);
  std::string profile = bytes.str();
  if (profile.empty()) return absl::InternalError("the CPU profiler wrote no data");
  return profile;
}

}  // namespace ortserve::observability
