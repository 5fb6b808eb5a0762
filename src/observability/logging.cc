// SPDX-License-Identifier: Apache-2.0
#include "observability/logging.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <spdlog/details/log_msg.h>
#include <spdlog/formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <optional>

#include "core/json_writer.h"
#include "core/strings.h"

namespace ortserve::observability {
namespace {

constexpr std::string_view kAccessLogger = "access";
constexpr const char* kTextPattern = "%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ ortserve: %v";

std::string Timestamp(absl::Time time) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", time, absl::UTCTimeZone());
}

// Formats every record of a logger as one JSON object a line.
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const auto level = spdlog::level::to_string_view(msg.level);
    std::string line = FormatJsonLine(absl::FromChrono(msg.time), std::string_view(level.data(), level.size()),
                                      std::string_view(msg.payload.data(), msg.payload.size()));
    line.push_back('\n');
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JsonFormatter>(); }
};

// Writes the message as is: access lines are formatted before logging.
class RawFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    dest.append(msg.payload.data(), msg.payload.data() + msg.payload.size());
    dest.push_back('\n');
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<RawFormatter>(); }
};

void InstallFormat(LogFormat format) {
  if (format == LogFormat::kJson) {
    spdlog::default_logger()->set_formatter(std::make_unique<JsonFormatter>());
  } else {
    spdlog::default_logger()->set_pattern(kTextPattern);
  }
}

}  // namespace

absl::StatusOr<LogFormat> ParseLogFormat(std::string_view text) {
  if (text == "json") return LogFormat::kJson;
  if (text == "text" || text == "default" || text == "ISO8601") return LogFormat::kText;
  return absl::InvalidArgumentError(StrCat("log format '", text, "' is not one of json, text"));
}

std::string FormatJsonLine(absl::Time time, std::string_view level, std::string_view message) {
  std::string line;
  line.reserve(64 + message.size());
  // ", " and ": " separators: a space ends every field, so scripts that grep
  // "listening on [^ ]*:PORT" stop inside this line.
  line.append("{\"timestamp\": ");
  AppendJsonString(Timestamp(time), &line);
  line.append(", \"level\": ");
  AppendJsonString(level, &line);
  line.append(", \"message\": ");
  AppendJsonString(message, &line);
  line.push_back('}');
  return line;
}

std::string FormatAccessRecord(LogFormat format, const AccessRecord& r, absl::Time now) {
  const double latency_ms = absl::ToDoubleMilliseconds(r.latency);
  if (format == LogFormat::kText) {
    return StrCat(absl::FormatTime("%Y-%m-%dT%H:%M:%E3S%z", now, absl::LocalTimeZone()), " access ", r.protocol,
                  " ", r.method, " ", r.target, " status=", r.status, " latency_ms=", latency_ms,
                  " bytes=", r.response_bytes, r.model.empty() ? "" : " model=", r.model,
                  r.version.empty() ? "" : " version=", r.version, r.request_id.empty() ? "" : " request_id=",
                  r.request_id, r.trace_id.empty() ? "" : " trace_id=", r.trace_id);
  }
  std::string line;
  line.append("{\"timestamp\": ");
  AppendJsonString(Timestamp(now), &line);
  line.append(", \"level\": \"info\", \"message\": \"request\", \"protocol\": ");
  AppendJsonString(r.protocol, &line);
  line.append(", \"method\": ");
  AppendJsonString(r.method, &line);
  line.append(", \"target\": ");
  AppendJsonString(r.target, &line);
  line.append(", \"request_id\": ");
  AppendJsonString(r.request_id, &line);
  line.append(", \"model\": ");
  AppendJsonString(r.model, &line);
  line.append(", \"version\": ");
  AppendJsonString(r.version, &line);
  line.append(StrCat(", \"status\": ", r.status, ", \"latency_ms\": ", latency_ms, ", \"response_bytes\": ",
                     r.response_bytes));
  if (!r.trace_id.empty()) {
    line.append(", \"trace_id\": ");
    AppendJsonString(r.trace_id, &line);
  }
  line.push_back('}');
  return line;
}

Logging::Logging(Options options) : format_(options.format) {
  access_log_.store(options.access_log);
  access_format_.store(static_cast<int>(options.format));
}

absl::StatusOr<std::unique_ptr<Logging>> Logging::Install(Options options) {
  const auto level = spdlog::level::from_str(options.level);
  if (level == spdlog::level::off && options.level != "off") {
    return absl::InvalidArgumentError(StrCat("log level '", options.level, "' is not one of trace, debug, info, "
                                             "warn, error, critical, off"));
  }
  std::unique_ptr<Logging> logging(new Logging(options));
  spdlog::set_level(level);
  InstallFormat(options.format);
  {
    absl::MutexLock lock(&logging->mu_);
    logging->log_info_ = level <= spdlog::level::info;
    logging->log_warning_ = level <= spdlog::level::warn;
    logging->log_error_ = level <= spdlog::level::err;
    logging->verbose_level_ = level == spdlog::level::trace ? 2 : level == spdlog::level::debug ? 1 : 0;
  }
  if (!spdlog::get(std::string(kAccessLogger))) {
    auto access = spdlog::stdout_logger_mt(std::string(kAccessLogger));
    access->set_formatter(std::make_unique<RawFormatter>());
    access->set_level(spdlog::level::info);
  }
  return logging;
}

void Logging::Access(const AccessRecord& record) {
  if (!access_log_enabled()) return;
  auto logger = spdlog::get(std::string(kAccessLogger));
  if (!logger) return;
  logger->info(FormatAccessRecord(static_cast<LogFormat>(access_format_.load(std::memory_order_relaxed)), record,
                                  absl::Now()));
}

std::string Logging::SettingsJson() const {
  absl::MutexLock lock(&mu_);
  return StrCat("{\"log_file\":\"\",\"log_info\":", log_info_, ",\"log_warning\":", log_warning_,
                ",\"log_error\":", log_error_, ",\"log_verbose_level\":", verbose_level_, ",\"log_format\":\"",
                format_ == LogFormat::kJson ? "json" : "text", "\",\"access_log\":", access_log_enabled(), "}");
}

void Logging::Apply() {
  spdlog::level::level_enum level = spdlog::level::off;
  if (verbose_level_ >= 2) {
    level = spdlog::level::trace;
  } else if (verbose_level_ == 1) {
    level = spdlog::level::debug;
  } else if (log_info_) {
    level = spdlog::level::info;
  } else if (log_warning_) {
    level = spdlog::level::warn;
  } else if (log_error_) {
    level = spdlog::level::err;
  }
  spdlog::set_level(level);
  InstallFormat(format_);
  access_format_.store(static_cast<int>(format_));
}

absl::Status Logging::UpdateSettings(std::string_view json) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return absl::InvalidArgumentError("log settings must be a JSON object");
  }
  // Check everything before changing anything.
  for (const char* field : {"log_info", "log_warning", "log_error", "access_log"}) {
    if (doc.HasMember(field) && !doc[field].IsBool()) {
      return absl::InvalidArgumentError(StrCat("log setting '", field, "' must be a boolean"));
    }
  }
  if (doc.HasMember("log_verbose_level") &&
      (!doc["log_verbose_level"].IsInt() || doc["log_verbose_level"].GetInt() < 0)) {
    return absl::InvalidArgumentError("log setting 'log_verbose_level' must be a non-negative integer");
  }
  std::optional<LogFormat> format;
  if (doc.HasMember("log_format")) {
    if (!doc["log_format"].IsString()) return absl::InvalidArgumentError("log setting 'log_format' must be a string");
    auto parsed = ParseLogFormat(doc["log_format"].GetString());
    if (!parsed.ok()) return parsed.status();
    format = *parsed;
  }
  if (doc.HasMember("log_file") &&
      (!doc["log_file"].IsString() || std::string_view(doc["log_file"].GetString()) != "")) {
    return absl::InvalidArgumentError("log setting 'log_file' cannot be changed: ortserve logs to stdout");
  }
  absl::MutexLock lock(&mu_);
  if (doc.HasMember("log_info")) log_info_ = doc["log_info"].GetBool();
  if (doc.HasMember("log_warning")) log_warning_ = doc["log_warning"].GetBool();
  if (doc.HasMember("log_error")) log_error_ = doc["log_error"].GetBool();
  if (doc.HasMember("log_verbose_level")) verbose_level_ = doc["log_verbose_level"].GetInt();
  if (doc.HasMember("access_log")) access_log_.store(doc["access_log"].GetBool());
  if (format) format_ = *format;
  Apply();
  return absl::OkStatus();
}

}  // namespace ortserve::observability
