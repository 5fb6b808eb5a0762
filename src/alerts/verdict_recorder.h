// SPDX-License-Identifier: Apache-2.0
// VerdictRecorder: what happens to each SAE verdict beside the client's
// answer (issue #18). Every verdict becomes one line of the audit log
// (type "sae_verdict"), and a serious one an alert in the durable outbox
// (AlertService), before the client is answered: an answered verdict is on
// disk, and its alert with it.
//
// The patient is recorded as a keyed hash (HMAC-SHA256 with the patient
// hash key, the same one alerts use), never the raw id, unless
// `audit_raw_patient_id` says so (--audit-raw-patient-id); the report text is
// never recorded.
//
// Threads: OnVerdict runs on model runner threads and only queues; `workers`
// threads write the audit line (with the log's sync policy) and enqueue the
// alert (SQLite, fsync), then call `done`. When the queue is full the caller
// does the work itself (back-pressure on the model, never a lost line).
// Thread-safe. Stop (or the destructor) finishes what is queued.
#pragma once

#include <cstddef>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "alerts/alert_service.h"
#include "observability/audit_log.h"
#include "pipeline/verdict_sink.h"

namespace ortserve::alerts {

class VerdictRecorder final : public pipeline::VerdictSink {
 public:
  struct Options {
    observability::AuditLog* audit = nullptr;  // Null: no audit lines. Not owned.
    AlertService* alerts = nullptr;            // Null: no alerts. Not owned.
    // Keys the patient hash in audit lines; empty: the patient is left out
    // (unless audit_raw_patient_id).
    std::string patient_hash_key;
    bool audit_raw_patient_id = false;
    int workers = 2;
    size_t queue_capacity = 4096;
  };
  // Errors: InvalidArgument for workers outside 1..64 or a zero capacity.
  static absl::StatusOr<std::unique_ptr<VerdictRecorder>> Create(Options options);
  ~VerdictRecorder() override;

  void OnVerdict(const pipeline::Verdict& verdict, pipeline::VerdictDone done) override;
  void Stop();

 private:
  struct Item {
    std::string request_id, patient_id, model, version, client_id, client_kind;
    uint64_t model_fingerprint = 0;
    int64_t windows = 1;
    double probability = 0, threshold = 0;
    bool is_sae = false, review = false;
    absl::Duration latency;
    absl::Time time;
    pipeline::VerdictDone done;
  };
  explicit VerdictRecorder(Options options);
  void Work();
  void Record(Item& item);

  const Options options_;
  absl::Mutex mu_;
  std::deque<Item> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;
};

}  // namespace ortserve::alerts
