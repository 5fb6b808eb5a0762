// SPDX-License-Identifier: Apache-2.0
#include "observability/collectors.h"

#include <dirent.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>

#include "absl/time/clock.h"

namespace ortserve::observability {

std::vector<prometheus::MetricFamily> ProcessCollector::Collect() const {
  std::vector<prometheus::MetricFamily> families;
  auto gauge = [&](const char* name, const char* help, prometheus::MetricType type, double value) {
    prometheus::MetricFamily family;
    family.name = name;
    family.help = help;
    family.type = type;
    prometheus::ClientMetric metric;
    if (type == prometheus::MetricType::Counter) {
      metric.counter.value = value;
    } else {
      metric.gauge.value = value;
    }
    family.metric.push_back(std::move(metric));
    families.push_back(std::move(family));
  };
  // /proc/self/stat: fields after the command (which may hold spaces) start
  // at ')'; utime is field 14, stime 15, num_threads 20, starttime 22,
  // vsize 23, rss 24 (pages).
  std::ifstream stat_file("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
  const size_t close = stat.rfind(')');
  if (close != std::string::npos) {
    std::istringstream fields(stat.substr(close + 2));
    std::vector<std::string> f;
    for (std::string s; fields >> s;) f.push_back(s);
    // f[0] is field 3 (state).
    auto field = [&](int n) -> double {
      const size_t i = static_cast<size_t>(n - 3);
      return i < f.size() ? std::strtod(f[i].c_str(), nullptr) : 0;
    };
    const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
    const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
    gauge("process_cpu_seconds_total", "User and system CPU time the process has used, in seconds.",
          prometheus::MetricType::Counter, (field(14) + field(15)) / ticks);
    gauge("process_threads", "Threads in the process.", prometheus::MetricType::Gauge, field(20));
    gauge("process_virtual_memory_bytes", "Virtual memory size, in bytes.", prometheus::MetricType::Gauge,
          field(23));
    gauge("process_resident_memory_bytes", "Resident set size, in bytes.", prometheus::MetricType::Gauge,
          field(24) * page);
    std::ifstream uptime_file("/proc/uptime");
    double uptime = 0;
    uptime_file >> uptime;
    const double boot = static_cast<double>(absl::ToUnixSeconds(absl::Now())) - uptime;
    gauge("process_start_time_seconds", "Start time of the process since the Unix epoch, in seconds.",
          prometheus::MetricType::Gauge, boot + field(22) / ticks);
  }
  double fds = 0;
  if (DIR* dir = opendir("/proc/self/fd")) {
    while (dirent* entry = readdir(dir)) {
      if (entry->d_name[0] != '.') ++fds;
    }
    closedir(dir);
    fds -= 1;  // The directory handle itself.
  }
  gauge("process_open_fds", "Open file descriptors.", prometheus::MetricType::Gauge, fds);
  return families;
}

}  // namespace ortserve::observability
