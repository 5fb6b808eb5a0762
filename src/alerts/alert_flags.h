// SPDX-License-Identifier: Apache-2.0
// The server's alert flags, parsed here so that src/server adds a few lines
// (at start-up, on the main thread; nothing here is shared):
//
//   alerts::AlertFlags alert_flags;
//   alerts::AddAlertFlags(app, &alert_flags);              // before app.parse
//   ASSIGN_OR_RETURN(auto alert_options, alerts::BuildAlertServiceOptions(alert_flags));
//   if (alert_options) { alert_options->registry = metrics->registry();
//                        ASSIGN_OR_RETURN(alert_service, alerts::AlertService::Create(*std::move(alert_options))); }
//
//   --alert-webhook NAME=URL                 a receiver (repeatable); none: alerts off
//   --alert-webhook-secret-file NAME=PATH    its HMAC key (required for each webhook)
//   --alert-outbox PATH                      the SQLite outbox (required with a webhook)
//   --alert-patient-hash-key-file PATH       the patient id hash key (required with a webhook)
//   --alert-max-pending N                    pending + failed alerts kept (default 10000)
//   --alert-webhook-ca-file PATH             extra CA certificates for https receivers
//   --alert-webhook-timeout-seconds S        one delivery attempt (default 10)
//   --alert-give-up-after-seconds S          retry for this long before kFailed (default 86400)
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "alerts/alert_service.h"

namespace CLI {
class App;
}

namespace ortserve::alerts {

struct AlertFlags {
  std::vector<std::string> webhooks;      // NAME=URL
  std::vector<std::string> secret_files;  // NAME=PATH
  std::string outbox_path;
  std::string patient_hash_key_file;
  int64_t max_pending = 10000;
  std::string ca_file;
  double timeout_seconds = 10;
  double give_up_after_seconds = 86400;
};

// Registers the flags above on `app`, writing into `flags` (which must
// outlive the parse).
void AddAlertFlags(CLI::App& app, AlertFlags* flags);

// Checks the flags and reads the key files. nullopt when no webhook and no
// other alert flag is given (alerts off). Errors: InvalidArgument naming the
// flag (a webhook without a secret file, a secret for an unknown webhook, a
// duplicate name, a bad URL, a missing outbox or key file, a bound out of
// range), and ReadKeyFile's errors.
absl::StatusOr<std::optional<AlertServiceOptions>> BuildAlertServiceOptions(const AlertFlags& flags);

}  // namespace ortserve::alerts
