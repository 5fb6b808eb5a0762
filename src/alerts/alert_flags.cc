// SPDX-License-Identifier: Apache-2.0
#include "alerts/alert_flags.h"

#include <CLI/CLI.hpp>
#include <cmath>
#include <map>

#include "core/strings.h"
#include "alerts/webhook_client.h"
#include "core/status.h"

namespace ortserve::alerts {
namespace {

absl::StatusOr<std::pair<std::string, std::string>> SplitNameValue(std::string_view flag, const std::string& text) {
  const size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == text.size()) {
    return absl::InvalidArgumentError(ortserve::StrCat(flag, " wants NAME=VALUE, got '", text, "'"));
  }
  return std::make_pair(text.substr(0, eq), text.substr(eq + 1));
}

absl::StatusOr<absl::Duration> Seconds(std::string_view flag, double seconds, double max) {
  if (!std::isfinite(seconds) || seconds <= 0 || seconds > max) {
    return absl::InvalidArgumentError(ortserve::StrCat(flag, " must be in (0, ", max, "], got ", seconds));
  }
  return absl::Seconds(seconds);
}

}  // namespace

void AddAlertFlags(CLI::App& app, AlertFlags* flags) {
  app.add_option("--alert-webhook", flags->webhooks,
                 "NAME=URL: deliver serious-verdict alerts to this http(s) webhook (repeatable; docs/alerts.md)");
  app.add_option("--alert-webhook-secret-file", flags->secret_files,
                 "NAME=PATH: the HMAC-SHA256 key signing NAME's alerts (X-Ortserve-Signature; repeatable)");
  app.add_option("--alert-outbox", flags->outbox_path, "SQLite file of the durable alert outbox");
  app.add_option("--alert-patient-hash-key-file", flags->patient_hash_key_file,
                 "Key of the HMAC-SHA256 that replaces patient ids in alerts");
  app.add_option("--alert-max-pending", flags->max_pending,
                 "Alerts pending or failed the outbox holds; beyond it new alerts are refused")
      ->capture_default_str();
  app.add_option("--alert-webhook-ca-file", flags->ca_file, "Extra CA certificates (PEM) for https webhooks");
  app.add_option("--alert-webhook-timeout-seconds", flags->timeout_seconds, "One delivery attempt's deadline")
      ->capture_default_str();
  app.add_option("--alert-give-up-after-seconds", flags->give_up_after_seconds,
                 "How long an alert is retried before it is marked failed (replayable)")
      ->capture_default_str();
}

absl::StatusOr<std::optional<AlertServiceOptions>> BuildAlertServiceOptions(const AlertFlags& flags) {
  const bool any = !flags.webhooks.empty() || !flags.secret_files.empty() || !flags.outbox_path.empty() ||
                   !flags.patient_hash_key_file.empty() || !flags.ca_file.empty();
  if (!any) return std::optional<AlertServiceOptions>();
  if (flags.webhooks.empty()) {
    return absl::InvalidArgumentError("alert flags given without any --alert-webhook NAME=URL");
  }
  if (flags.outbox_path.empty()) return absl::InvalidArgumentError("--alert-webhook needs --alert-outbox PATH");
  if (flags.patient_hash_key_file.empty()) {
    return absl::InvalidArgumentError("--alert-webhook needs --alert-patient-hash-key-file PATH");
  }
  if (flags.max_pending < 1 || flags.max_pending > 10'000'000) {
    return absl::InvalidArgumentError(
        ortserve::StrCat("--alert-max-pending must be 1 to 10000000, got ", flags.max_pending));
  }
  std::map<std::string, std::string> secrets;
  for (const std::string& text : flags.secret_files) {
    ASSIGN_OR_RETURN(auto nv, SplitNameValue("--alert-webhook-secret-file", text));
    if (secrets.count(nv.first) > 0) {
      return absl::InvalidArgumentError(ortserve::StrCat("--alert-webhook-secret-file: ", nv.first, " given twice"));
    }
    secrets.emplace(nv.first, nv.second);
  }
  AlertServiceOptions options;
  std::map<std::string, bool> seen;
  for (const std::string& text : flags.webhooks) {
    ASSIGN_OR_RETURN(auto nv, SplitNameValue("--alert-webhook", text));
    if (seen.count(nv.first) > 0) {
      return absl::InvalidArgumentError(ortserve::StrCat("--alert-webhook: the name ", nv.first, " is given twice"));
    }
    seen[nv.first] = true;
    if (auto url = ParseWebhookUrl(nv.second); !url.ok()) {
      return absl::InvalidArgumentError(ortserve::StrCat("--alert-webhook ", nv.first, ": ", url.status().message()));
    }
    auto secret_path = secrets.find(nv.first);
    if (secret_path == secrets.end()) {
      return absl::InvalidArgumentError(
          ortserve::StrCat("--alert-webhook ", nv.first, " has no --alert-webhook-secret-file ", nv.first, "=PATH"));
    }
    ASSIGN_OR_RETURN(std::string secret,
                     ReadKeyFile(ortserve::StrCat("--alert-webhook-secret-file ", nv.first), secret_path->second));
    options.dispatcher.receivers.push_back(WebhookTarget{nv.first, nv.second, std::move(secret)});
  }
  for (const auto& [name, path] : secrets) {
    if (seen.count(name) == 0) {
      return absl::InvalidArgumentError(
          ortserve::StrCat("--alert-webhook-secret-file names ", name, ", which no --alert-webhook defines"));
    }
  }
  ASSIGN_OR_RETURN(options.patient_hash_key,
                   ReadKeyFile("--alert-patient-hash-key-file", flags.patient_hash_key_file));
  ASSIGN_OR_RETURN(options.dispatcher.request_timeout,
                   Seconds("--alert-webhook-timeout-seconds", flags.timeout_seconds, 300));
  ASSIGN_OR_RETURN(options.outbox.give_up_after,
                   Seconds("--alert-give-up-after-seconds", flags.give_up_after_seconds, 30 * 86400));
  options.outbox.path = flags.outbox_path;
  options.outbox.max_undelivered = static_cast<size_t>(flags.max_pending);
  options.dispatcher.ca_file = flags.ca_file;
  return std::optional<AlertServiceOptions>(std::move(options));
}

}  // namespace ortserve::alerts
