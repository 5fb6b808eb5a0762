// SPDX-License-Identifier: Apache-2.0
// Connection: log settings, profiles and the model repository extension.
#include <cstdlib>

#include "boost/url/parse_query.hpp"
#include "alerts/alert_service.h"
#include "core/json_writer.h"
#include "core/strings.h"
#include "frontend/http/connection.h"
#include "frontend/http/rest_json.h"
#include "observability/logging.h"
#include "observability/profiler.h"
#include "simdjson.h"

namespace ortserve::frontend {

void Connection::Logging() {
  observability::Logging* logging = options_.service->telemetry().logging;
  if (logging == nullptr) return Send(Error(501, "log settings are not available"));
  if (parser_->get().method() == boost::beast::http::verb::post) {
    if (auto status = logging->UpdateSettings(parser_->get().body()); !status.ok()) return Send(Error(status));
  }
  Send(Ok(logging->SettingsJson()));
}

// POST /v2/repository/index, body empty or {"ready": bool} (only READY
// entries when true).
void Connection::RepositoryIndex() {
  const std::string& body = parser_->get().body();
  bool ready_only = false;
  if (body.find_first_not_of(" \t\r\n") != std::string::npos) {
    simdjson::dom::parser json;
    simdjson::dom::element doc;
    if (json.parse(body).get(doc) != simdjson::SUCCESS || !doc.is_object()) {
      return Send(Error(400, "repository index body is not a JSON object"));
    }
    simdjson::dom::element ready;
    if (doc["ready"].get(ready) == simdjson::SUCCESS && ready.get(ready_only) != simdjson::SUCCESS) {
      return Send(Error(400, "repository index 'ready' must be a boolean"));
    }
  }
  auto index = options_.service->Index();
  // Only the models the credential may use (all while authentication is off).
  if (identity_ && !identity_->models.AllowsAll()) {
    std::erase_if(index, [&](const auto& entry) { return !identity_->models.Allows(entry.name); });
  }
  Send(Ok(RepositoryIndexJson(index, ready_only)));
}

// Load or unload a model. Body (optional): {"parameters": {"config": "<JSON
// model config>"}} for a config override on load; "unload_dependents" is
// accepted on unload (ortserve has no ensembles). The load runs on the model
// manager's loader threads; the answer comes back on this connection's thread.
void Connection::RepositoryControl(const std::string& name, bool load) {
  const std::string& body = parser_->get().body();
  std::string config_json;
  if (body.find_first_not_of(" \t\r\n") != std::string::npos) {
    simdjson::dom::parser json;
    simdjson::dom::element doc;
    if (json.parse(body).get(doc) != simdjson::SUCCESS || !doc.is_object()) {
      return Send(Error(400, "repository load/unload body is not a JSON object"));
    }
    simdjson::dom::element parameters;
    if (doc["parameters"].get(parameters) == simdjson::SUCCESS) {
      simdjson::dom::object params;
      if (parameters.get(params) != simdjson::SUCCESS) {
        return Send(Error(400, "repository load/unload 'parameters' must be a JSON object"));
      }
      for (auto field : params) {
        const std::string_view key(field.key.data(), field.key.size());
        if (key == "config" && load) {
          std::string_view text;
          if (field.value.get(text) == simdjson::SUCCESS) {
            config_json.assign(text.data(), text.size());
          } else if (field.value.is_object()) {
            config_json = simdjson::minify(field.value);
          } else {
            return Send(Error(400, "load parameter 'config' must be a string holding the model config JSON"));
          }
        } else if (key.rfind("file:", 0) == 0) {
          return Send(Error(400, StrCat("load parameter '", key,
                                        "' (model file contents in the request) is not supported")));
        }
      }
    }
  }
  auto done = [self = shared_from_this()](absl::Status status) {
    self->Post([self, status = std::move(status)] {
      if (!status.ok()) return self->Send(Error(status));
      self->Send(Ok(""));
    });
  };
  if (load) {
    options_.service->LoadModel(name, std::move(config_json), std::move(done));
  } else {
    options_.service->UnloadModel(name, std::move(done));
  }
}

// GET /v2/admin/profile/cpu?seconds=N[&hz=F]: a pprof CPU profile of the
// whole server over the next N seconds (off unless --enable-profiling).
// The rate is fixed at start-up (CPUPROFILE_FREQUENCY); an `hz` other than
// it is refused. Recorded on the profile worker's thread: no I/O thread
// waits for it, and no request starts a thread.
void Connection::ProfileCpu(std::string_view query) {
  if (!options_.enable_profiling || context_.profiler == nullptr) {
    return Send(Error(403, "profiling is disabled; start ortserve with --enable-profiling"));
  }
  double seconds = 10;
  int hz = 0;  // The profiler's own rate.
  // Debian's libboost_url 1.81 reads its argument up to a NUL (strlen), past
  // the view's end: parse a terminated copy (the views below point into it).
  const std::string terminated(query);
  auto params = boost::urls::parse_query(terminated);
  if (!params) return Send(Error(400, StrCat("malformed query string '", query, "'")));
  for (const auto param : *params) {
    const std::string key = param.key.decode();
    if (key != "seconds" && key != "hz") continue;
    const std::string value = param.has_value ? param.value.decode() : std::string();
    char* end = nullptr;
    if (key == "seconds") {
      seconds = std::strtod(value.c_str(), &end);
    } else {
      hz = static_cast<int>(std::strtol(value.c_str(), &end, 10));
    }
    if (value.empty() || end != value.c_str() + value.size()) {
      return Send(Error(400, StrCat("profile parameter '", key, "' has bad value '", value, "'")));
    }
  }
  absl::Status started = context_.profiler->Start(
      absl::Seconds(seconds), hz, [self = shared_from_this()](absl::StatusOr<std::string> profile) {
        self->Post([self, profile = std::move(profile)]() mutable {
          if (!profile.ok()) return self->Send(Error(profile.status()));
          self->Send(Reply{200, "application/octet-stream", *std::move(profile)});
        });
      });
  if (!started.ok()) return Send(Error(started));
}

// GET /v2/admin/profile/heap: tcmalloc's sample of the live heap in pprof's
// heap format (off unless --enable-profiling; 501 in a build without
// tcmalloc). Quick (a walk of the sampled allocations), so answered inline.
void Connection::ProfileHeap() {
  if (!options_.enable_profiling) {
    return Send(Error(403, "profiling is disabled; start ortserve with --enable-profiling"));
  }
  if (!observability::HeapProfiler::Available()) {
    return Send(Error(501, "heap profiles need tcmalloc: this ortserve was built with ORTSERVE_TCMALLOC=OFF"));
  }
  auto profile = observability::HeapProfiler::Capture();
  if (!profile.ok()) return Send(Error(profile.status()));
  Send(Reply{200, "text/plain", *std::move(profile)});
}

}  // namespace ortserve::frontend

namespace ortserve::frontend {
namespace {

// The query's `state` (pending, failed, delivered; default: pending and
// failed), `receiver` and `limit` (1..1000, default 100).
struct AlertQuery {
  std::vector<alerts::AlertState> states = {alerts::AlertState::kPending, alerts::AlertState::kFailed};
  std::string receiver;
  std::string alert_id;
  size_t limit = 100;
};

absl::StatusOr<AlertQuery> ParseAlertQuery(std::string_view query) {
  AlertQuery parsed;
  // Debian's libboost_url 1.81 reads its argument up to a NUL (strlen), past
  // the view's end: parse a terminated copy (the views below point into it).
  const std::string terminated(query);
  auto params = boost::urls::parse_query(terminated);
  if (!params) return absl::InvalidArgumentError(StrCat("malformed query string '", query, "'"));
  for (const auto param : *params) {
    const std::string key = param.key.decode();
    const std::string value = param.has_value ? param.value.decode() : std::string();
    if (key == "state") {
      if (value == "pending") {
        parsed.states = {alerts::AlertState::kPending};
      } else if (value == "failed") {
        parsed.states = {alerts::AlertState::kFailed};
      } else if (value == "delivered") {
        parsed.states = {alerts::AlertState::kDelivered};
      } else {
        return absl::InvalidArgumentError(
            StrCat("alerts: state '", value, "' is not one of pending, failed, delivered"));
      }
    } else if (key == "receiver") {
      parsed.receiver = value;
    } else if (key == "alertId") {
      parsed.alert_id = value;
    } else if (key == "limit") {
      char* end = nullptr;
      const long limit = std::strtol(value.c_str(), &end, 10);
      if (value.empty() || end != value.c_str() + value.size() || limit < 1 || limit > 1000) {
        return absl::InvalidArgumentError(StrCat("alerts: limit '", value, "' is not in 1..1000"));
      }
      parsed.limit = static_cast<size_t>(limit);
    } else {
      return absl::InvalidArgumentError(
          StrCat("alerts: unknown parameter '", key, "' (state, receiver, alertId, limit)"));
    }
  }
  return parsed;
}

}  // namespace

// GET /v2/admin/alerts[?state=&receiver=&limit=]: counts per state and the
// rows asked for (newest last), each with its attempts and last error. The
// payload is not shown (it is what the receiver got; the outbox keeps it).
void Connection::Alerts(std::string_view query) {
  if (options_.alerts == nullptr) return Send(Error(404, "alerts are off: no --alert-webhook is configured"));
  auto parsed = ParseAlertQuery(query);
  if (!parsed.ok()) return Send(Error(parsed.status()));
  alerts::Outbox& outbox = options_.alerts->outbox();
  auto counts = outbox.Counts(parsed->receiver);
  if (!counts.ok()) return Send(Error(counts.status()));
  std::string out;
  JsonStringStream stream(&out);
  JsonWriter w(stream);
  w.StartObject();
  w.Key("counts");
  w.StartObject();
  for (auto state : {alerts::AlertState::kPending, alerts::AlertState::kFailed, alerts::AlertState::kDelivered}) {
    w.Key(alerts::AlertStateName(state));
    auto it = counts->find(state);
    w.Int64(it == counts->end() ? 0 : it->second);
  }
  w.EndObject();
  w.Key("alerts");
  w.StartArray();
  for (auto state : parsed->states) {
    alerts::SnapshotQuery snapshot = alerts::SnapshotQuery::Of(state, parsed->limit);
    snapshot.receiver = parsed->receiver;
    auto rows = outbox.Snapshot(snapshot);
    if (!rows.ok()) return Send(Error(rows.status()));
    for (const alerts::OutboxEntry& row : *rows) {
      if (!parsed->alert_id.empty() && row.alert_id != parsed->alert_id) continue;
      w.StartObject();
      w.Key("alertId");
      w.String(row.alert_id);
      w.Key("receiver");
      w.String(row.receiver);
      w.Key("state");
      w.String(alerts::AlertStateName(row.state));
      w.Key("patientKey");
      w.String(row.patient_key);
      w.Key("created");
      w.String(absl::FormatTime(absl::RFC3339_full, row.created, absl::UTCTimeZone()));
      w.Key("attempts");
      w.Int(row.attempts);
      if (row.state == alerts::AlertState::kPending) {
        w.Key("nextAttempt");
        w.String(absl::FormatTime(absl::RFC3339_full, row.next_attempt, absl::UTCTimeZone()));
      }
      if (row.state == alerts::AlertState::kDelivered) {
        w.Key("deliveredAt");
        w.String(absl::FormatTime(absl::RFC3339_full, row.delivered_at, absl::UTCTimeZone()));
      }
      if (!row.last_error.empty()) {
        w.Key("lastError");
        w.String(row.last_error);
      }
      w.EndObject();
    }
  }
  w.EndArray();
  w.EndObject();
  Send(Ok(std::move(out)));
}

// POST /v2/admin/alerts/replay[?receiver=&alertId=]: failed alerts become
// pending again, due now; answers how many.
void Connection::AlertsReplay(std::string_view query) {
  if (options_.alerts == nullptr) return Send(Error(404, "alerts are off: no --alert-webhook is configured"));
  auto parsed = ParseAlertQuery(query);
  if (!parsed.ok()) return Send(Error(parsed.status()));
  auto replayed = options_.alerts->outbox().ReplayFailed(parsed->receiver, parsed->alert_id);
  if (!replayed.ok()) return Send(Error(replayed.status()));
  options_.alerts->WakeDispatcher();
  Send(Ok(StrCat("{\"replayed\":", *replayed, "}")));
}

}  // namespace ortserve::frontend
