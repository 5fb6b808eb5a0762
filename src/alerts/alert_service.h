// SPDX-License-Identifier: Apache-2.0
// AlertService: what the SAE endpoint calls on a serious verdict. It hashes
// the patient id (PatientKeyHasher), builds the alert's JSON once, puts it in
// the durable Outbox for every configured receiver, and wakes the
// AlertDispatcher, which delivers it.
//
// Two ways in:
//  - OnSeriousVerdict: returns at once (safe on an HTTP event-loop thread).
//    The verdict goes to a bounded intake queue; the service's intake thread
//    writes it to the outbox (fsync) and then calls `done` with the result.
//    For the "nothing lost" guarantee, answer the client only after `done`
//    said OK (post back to the event loop from `done`).
//  - EnqueueNow: blocks until the alert is on disk. Call it from a worker
//    thread, never from an event loop.
//
// The body each receiver gets (docs/alerts.md):
//   {"type":"serious_adverse_event","alertId":"<request id>","requestId":"<request id>",
//    "patientKey":"<hex HMAC-SHA256(key, patient id)>","model":"sae","modelVersion":"3",
//    "probability":0.97,"threshold":0.5,"verdictTime":"2026-12-06T22:20:01.123456Z"}
//
// Thread-safe. Stop (or the destructor): refuses new verdicts, writes the
// ones already accepted to the outbox (calling their `done`), then stops the
// dispatcher.
#pragma once

#include <deque>
#include <mutex>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "alerts/alert_dispatcher.h"
#include "alerts/outbox.h"
#include "alerts/signing.h"

namespace prometheus {
class Registry;
}

namespace ortserve::alerts {

class AlertMetrics;

// A verdict at or over its threshold, as the SAE endpoint knows it.
struct SeriousVerdict {
  std::string request_id;  // 1..128 bytes of visible ASCII (0x21..0x7E) but ','; the idempotency key.
  std::string patient_id;  // 1..4096 bytes; hashed here, never stored or sent.
  std::string model;       // At most 256 bytes.
  std::string version;     // At most 64 bytes.
  double probability = 0;  // Finite.
  double threshold = 0;    // Finite.
  absl::Time time;         // When the verdict was made (delivery delay counts from here).
};

struct AlertServiceOptions {
  OutboxOptions outbox;
  DispatcherOptions dispatcher;  // Its clock and metrics are set by the service.
  std::string patient_hash_key;  // At least 16 bytes (signing.h ReadKeyFile).
  // Verdicts accepted by OnSeriousVerdict and not yet on disk.
  size_t intake_capacity = 1024;
  // Where the alert metrics go; null: none.
  std::shared_ptr<prometheus::Registry> registry;
  Clock* clock = Clock::Real();
  // False: no delivery (only the outbox), e.g. for a tool that inspects it.
  bool start_dispatcher = true;
};

class AlertService {
 public:
  using Done = absl::AnyInvocable<void(absl::Status) &&>;

  // Opens the outbox and starts the intake thread and the dispatcher.
  // Errors: those of Outbox::Open and AlertDispatcher::Create;
  // InvalidArgument for a short patient hash key.
  static absl::StatusOr<std::unique_ptr<AlertService>> Create(AlertServiceOptions options);
  ~AlertService();

  // Returns at once. OK: accepted; `done` (if any) runs later on the intake
  // thread with the outbox's answer (OK once durable); it must not block
  // (post the answer to the connection's own thread). Errors, with `done`
  // not called: InvalidArgument for a malformed verdict, ResourceExhausted
  // when the intake queue is full, FailedPrecondition after Stop.
  absl::Status OnSeriousVerdict(SeriousVerdict verdict, Done done = nullptr);

  // Blocks until the alert is durable. Errors: InvalidArgument for a
  // malformed verdict; Outbox::Enqueue's errors (ResourceExhausted when full).
  absl::Status EnqueueNow(const SeriousVerdict& verdict);

  void Stop();

  // Operations (docs/alerts.md): Snapshot, ReplayFailed, Counts. After
  // ReplayFailed call WakeDispatcher so that replayed rows go out now.
  Outbox& outbox() { return *outbox_; }
  void WakeDispatcher();
  const std::vector<std::string>& receivers() const { return receivers_; }

  // The JSON body for `verdict` whose patient id hashes to `patient_key`.
  static std::string AlertPayload(const SeriousVerdict& verdict, std::string_view patient_key);
  static absl::Status ValidateVerdict(const SeriousVerdict& verdict);

 private:
  struct Intake {
    SeriousVerdict verdict;
    Done done;
  };
  explicit AlertService(AlertServiceOptions options);
  void IntakeLoop();

  AlertServiceOptions options_;
  PatientKeyHasher hasher_;
  std::vector<std::string> receivers_;
  std::unique_ptr<AlertMetrics> metrics_;
  std::unique_ptr<Outbox> outbox_;
  std::unique_ptr<AlertDispatcher> dispatcher_;

  absl::Mutex mu_;
  std::deque<Intake> intake_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::CondVar cv_;
  std::thread intake_thread_;
  std::once_flag stop_once_;
};

}  // namespace ortserve::alerts
