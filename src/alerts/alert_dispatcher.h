// SPDX-License-Identifier: Apache-2.0
// AlertDispatcher: worker threads that take due alerts from the Outbox and
// POST them to their webhooks, signed, with the alert id as Idempotency-Key.
//
// Delivery is at least once: a row is marked delivered only after a 2xx, so
// a crash between the receiver's 2xx and the mark sends it again, with the
// same Idempotency-Key; a receiver that keeps the keys it has seen (for the
// outbox's retention) applies each alert exactly once.
//
// Per (receiver, patient key) at most one attempt is in flight, and only the
// group's oldest pending alert is attempted (Outbox::DueHeads): a patient's
// alerts reach a receiver in verdict order, and a failing alert holds back
// the patient's later ones until it is delivered or given up (kFailed).
// Different patients and receivers proceed in parallel, `workers` at a time.
//
// Every HTTP answer other than 2xx, and every network error or timeout, is a
// failed attempt: rescheduled by the outbox's BackoffPolicy until
// max_attempts or give_up_after.
//
// Thread-safe. Start once; Stop (or the destructor) stops taking attempts,
// lets the ones in flight finish (each bounded by request_timeout) and joins.
// Pending alerts stay in the outbox for the next start.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "alerts/outbox.h"
#include "alerts/webhook_client.h"
#include "core/clock.h"

namespace ortserve::alerts {

class AlertMetrics;

// A configured receiver.
struct WebhookTarget {
  std::string name;    // [A-Za-z0-9_-]{1,64}: the outbox's `receiver` and the metrics' label.
  std::string url;     // http:// or https://
  std::string secret;  // The HMAC-SHA256 key of X-Ortserve-Signature.
};

struct DispatcherOptions {
  std::vector<WebhookTarget> receivers;
  size_t workers = 4;
  // One attempt, connect to response.
  absl::Duration request_timeout = absl::Seconds(10);
  // Extra CA certificates for HTTPS receivers (WebhookClient::Options).
  std::string ca_file;
  // The longest a worker sleeps before it looks at the outbox again.
  absl::Duration max_idle_wait = absl::Seconds(1);
  // How often one worker calls Outbox::Purge.
  absl::Duration purge_interval = absl::Minutes(10);
  Clock* clock = Clock::Real();
  AlertMetrics* metrics = nullptr;  // Optional; must outlive the dispatcher.
};

class AlertDispatcher {
 public:
  // `outbox` must outlive the dispatcher. Errors: InvalidArgument for a bad
  // URL, name or CA file, or no receivers.
  static absl::StatusOr<std::unique_ptr<AlertDispatcher>> Create(DispatcherOptions options, Outbox* outbox);
  ~AlertDispatcher();

  void Start();
  // New alerts are in the outbox (or failed ones were replayed): look now.
  void Wake();
  void Stop();

  std::vector<std::string> receiver_names() const;

 private:
  struct Target {
    WebhookUrl url;
    std::string secret;
  };
  AlertDispatcher(DispatcherOptions options, Outbox* outbox) : options_(std::move(options)), outbox_(outbox) {}
  void WorkerLoop(size_t index, std::unique_ptr<WebhookClient> client);
  void Deliver(WebhookClient& client, const OutboxEntry& entry);
  void RefreshPending(const std::string& receiver);

  const DispatcherOptions options_;
  Outbox* const outbox_;
  std::map<std::string, Target, std::less<>> targets_;
  std::vector<std::unique_ptr<WebhookClient>> clients_;  // Moved to the workers at Start.

  absl::Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t wake_seq_ ABSL_GUARDED_BY(mu_) = 0;
  // "receiver\npatient key" of each attempt in flight.
  std::set<std::string> busy_ ABSL_GUARDED_BY(mu_);
  absl::CondVar cv_;
  absl::Time last_purge_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  std::vector<std::thread> threads_;
};

}  // namespace ortserve::alerts
