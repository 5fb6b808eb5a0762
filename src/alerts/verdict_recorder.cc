// SPDX-License-Identifier: Apache-2.0
#include "alerts/verdict_recorder.h"

#include <spdlog/spdlog.h>

#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "alerts/signing.h"
#include "core/strings.h"

namespace ortserve::alerts {

absl::StatusOr<std::unique_ptr<VerdictRecorder>> VerdictRecorder::Create(Options options) {
  if (options.workers < 1 || options.workers > 64) {
    return absl::InvalidArgumentError(absl::StrCat("verdict recorder workers ", options.workers, " not in 1..64"));
  }
  if (options.queue_capacity == 0) return absl::InvalidArgumentError("verdict recorder queue capacity 0");
  std::unique_ptr<VerdictRecorder> recorder(new VerdictRecorder(std::move(options)));
  for (int i = 0; i < recorder->options_.workers; ++i) {
    recorder->workers_.emplace_back([r = recorder.get()] { r->Work(); });
  }
  return recorder;
}

VerdictRecorder::VerdictRecorder(Options options) : options_(std::move(options)) {}

VerdictRecorder::~VerdictRecorder() { Stop(); }

void VerdictRecorder::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ && workers_.empty()) return;
    stopping_ = true;
  }
  for (auto& worker : workers_) worker.join();
  workers_.clear();
}

void VerdictRecorder::OnVerdict(const pipeline::Verdict& verdict, pipeline::VerdictDone done) {
  Item item;
  item.request_id = std::string(verdict.request_id);
  item.patient_id = std::string(verdict.patient_id);
  item.model = std::string(verdict.model);
  item.version = std::string(verdict.version);
  item.client_id = std::string(verdict.client_id);
  item.client_kind = std::string(verdict.client_kind);
  item.model_fingerprint = verdict.model_fingerprint;
  item.windows = verdict.windows;
  item.probability = verdict.serious_probability;
  item.threshold = verdict.threshold;
  item.is_sae = verdict.is_sae;
  item.review = verdict.review_recommended;
  item.latency = verdict.latency;
  item.time = absl::Now();
  item.done = std::move(done);
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_ && queue_.size() < options_.queue_capacity) {
      queue_.push_back(std::move(item));
      return;
    }
  }
  Record(item);  // Full (or stopping): the caller's thread does it.
}

void VerdictRecorder::Work() {
  for (;;) {
    Item item;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](VerdictRecorder* r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(r->mu_) { return r->stopping_ || !r->queue_.empty(); },
          this));
      if (queue_.empty()) return;  // Stopping, and nothing left.
      item = std::move(queue_.front());
      queue_.pop_front();
    }
    Record(item);
  }
}

void VerdictRecorder::Record(Item& item) {
  pipeline::VerdictOutcome outcome;
  if (item.is_sae && options_.alerts != nullptr) {
    SeriousVerdict serious;
    serious.request_id = item.request_id;
    serious.patient_id = item.patient_id;
    serious.model = item.model;
    serious.version = item.version;
    serious.probability = item.probability;
    serious.threshold = item.threshold;
    serious.time = item.time;
    if (absl::Status queued = options_.alerts->EnqueueNow(serious); queued.ok()) {
      outcome.alert_queued = true;
      outcome.alert_id = item.request_id;
    } else {
      outcome.alert_error = std::string(ToStd(queued.message()));
      spdlog::error("SAE alert for request {} not queued: {}", item.request_id, outcome.alert_error);
    }
  }
  if (options_.audit != nullptr) {
    std::string patient;
    std::string_view patient_field = "patientKey";
    if (options_.audit_raw_patient_id) {
      patient = item.patient_id;
      patient_field = "patientId";
    } else if (!options_.patient_hash_key.empty()) {
      patient = HmacSha256Hex(options_.patient_hash_key, item.patient_id);
    }
    const std::string probability = absl::StrFormat("%.6f", item.probability);
    const std::string threshold = absl::StrFormat("%.6f", item.threshold);
    const std::string windows = absl::StrCat(item.windows);
    const std::string latency_ms = absl::StrFormat("%.3f", absl::ToDoubleMilliseconds(item.latency));
    const std::string digest = absl::StrFormat("%016x", item.model_fingerprint);
    const std::string_view verdict = item.is_sae ? "serious" : item.review ? "review" : "not_serious";
    const std::string_view alert = !item.is_sae || options_.alerts == nullptr ? "none"
                                   : outcome.alert_queued                     ? "queued"
                                                                              : "not_queued";
    std::vector<std::pair<std::string_view, std::string_view>> extra = {
        {"requestId", item.request_id}, {"verdict", verdict},     {"probability", probability},
        {"threshold", threshold},       {"windows", windows},     {"latencyMs", latency_ms},
        {"alert", alert},               {"modelDigest", digest}};
    if (!patient.empty()) extra.emplace_back(patient_field, patient);
    observability::AuditEvent event;
    event.time = item.time;
    event.type = observability::AuditEvent::Type::kVerdict;
    event.action = "sae.verdict";
    event.client_id = item.client_id;
    event.client_kind = item.client_kind;
    event.model = item.model;
    event.version = item.version;
    event.outcome = observability::AuditEvent::Outcome::kSuccess;
    event.extra = extra;
    if (absl::Status written = options_.audit->Record(event); !written.ok()) {
      spdlog::error("audit line for SAE verdict {} not written: {}", item.request_id, ToStd(written.message()));
    }
  }
  std::move(item.done)(std::move(outcome));
}

}  // namespace ortserve::alerts
