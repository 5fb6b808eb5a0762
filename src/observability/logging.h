// SPDX-License-Identifier: Apache-2.0
// Logging: spdlog set up to write JSON lines (default) or readable text, an
// access log (one line per request, off unless enabled), and the run-time log
// settings behind Triton's `GET/POST /v2/logging`.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace ortserve::observability {

enum class LogFormat {
  kJson,  // One JSON object a line: timestamp, level, message (+ request fields).
  kText,  // "2024-05-01T12:00:00.123+0000 info ortserve: message".
};
absl::StatusOr<LogFormat> ParseLogFormat(std::string_view text);  // "json" | "text"

// One line of the access log.
struct AccessRecord {
  std::string_view protocol;  // "http", "grpc".
  std::string_view method;    // HTTP method or gRPC method name.
  std::string_view target;    // Path.
  std::string_view request_id;
  std::string_view model;
  std::string_view version;
  unsigned status = 0;        // HTTP status, or gRPC code.
  absl::Duration latency;
  size_t response_bytes = 0;
  std::string_view trace_id;  // Empty when the request is not traced.
};

// Renders `record` in `format` (no trailing newline). In JSON the line is
// always valid JSON and UTF-8: strings are escaped by core/json_writer.h
// (invalid bytes become U+FFFD, control characters are escaped). Pure;
// thread-safe.
std::string FormatAccessRecord(LogFormat format, const AccessRecord& record, absl::Time now);
// Renders an ordinary log line in JSON (no trailing newline), escaped the same
// way. Pure; thread-safe.
std::string FormatJsonLine(absl::Time time, std::string_view level, std::string_view message);

// The process's logging: the default spdlog logger (server messages) and the
// access logger. Thread-safe; one per process (it installs spdlog's default).
class Logging {
 public:
  struct Options {
    LogFormat format = LogFormat::kJson;
    std::string level = "info";  // spdlog level name.
    bool access_log = false;
  };
  // Installs the formatter and level on spdlog's default logger and creates
  // the access logger (stdout). Errors: InvalidArgument for an unknown level.
  static absl::StatusOr<std::unique_ptr<Logging>> Install(Options options);

  bool access_log_enabled() const { return access_log_.load(std::memory_order_relaxed); }
  // Writes one access-log line when the access log is on.
  void Access(const AccessRecord& record);

  // Triton's log settings object:
  //   {"log_file":"","log_info":true,"log_warning":true,"log_error":true,
  //    "log_verbose_level":0,"log_format":"json"}
  // plus "access_log". GET answers SettingsJson(); POST applies a partial
  // object, then answers the result. Errors: InvalidArgument naming the field
  // with a wrong type or value (log_file cannot be changed; log_format takes
  // "json", "text", or Triton's "default"/"ISO8601", which mean text).
  std::string SettingsJson() const;
  absl::Status UpdateSettings(std::string_view json);

 private:
  explicit Logging(Options options);
  void Apply() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  bool log_info_ ABSL_GUARDED_BY(mu_) = true;
  bool log_warning_ ABSL_GUARDED_BY(mu_) = true;
  bool log_error_ ABSL_GUARDED_BY(mu_) = true;
  int verbose_level_ ABSL_GUARDED_BY(mu_) = 0;
  LogFormat format_ ABSL_GUARDED_BY(mu_);
  std::atomic<bool> access_log_{false};
  std::atomic<int> access_format_{0};  // LogFormat, read per access line.
};

}  // namespace ortserve::observability
