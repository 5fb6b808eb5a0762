// SPDX-License-Identifier: Apache-2.0
#include "alerts/alert_service.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <spdlog/spdlog.h>

#include <cmath>
#include <mutex>

#include "core/strings.h"
#include "alerts/alert_metrics.h"
#include "core/status.h"

namespace ortserve::alerts {
namespace {

constexpr size_t kMaxRequestId = 128;
constexpr size_t kMaxPatientId = 4096;
constexpr size_t kMaxModel = 256;
constexpr size_t kMaxVersion = 64;

void String(rapidjson::Writer<rapidjson::StringBuffer>& w, std::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

}  // namespace

absl::Status AlertService::ValidateVerdict(const SeriousVerdict& v) {
  if (v.request_id.empty() || v.request_id.size() > kMaxRequestId) {
    return absl::InvalidArgumentError(ortserve::StrCat("alert: the request id must be 1 to ", kMaxRequestId, " bytes"));
  }
  for (char c : v.request_id) {
    // It travels as the Idempotency-Key header: no control bytes, no spaces.
    if (c < 0x21 || c > 0x7e || c == ',') {
      return absl::InvalidArgumentError("alert: the request id must be visible ASCII without ','");
    }
  }
  if (v.patient_id.empty() || v.patient_id.size() > kMaxPatientId) {
    return absl::InvalidArgumentError(ortserve::StrCat("alert: the patient id must be 1 to ", kMaxPatientId, " bytes"));
  }
  if (v.model.size() > kMaxModel || v.version.size() > kMaxVersion) {
    return absl::InvalidArgumentError("alert: the model name or version is too long");
  }
  if (!std::isfinite(v.probability) || !std::isfinite(v.threshold)) {
    return absl::InvalidArgumentError("alert: probability and threshold must be finite");
  }
  return absl::OkStatus();
}

std::string AlertService::AlertPayload(const SeriousVerdict& v, std::string_view patient_key) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartObject();
  w.Key("type");
  w.String("serious_adverse_event");
  w.Key("alertId");
  String(w, v.request_id);
  w.Key("requestId");
  String(w, v.request_id);
  w.Key("patientKey");
  String(w, patient_key);
  // Model names come from the repository, not from clients; still, the
  // writer escapes them and the validation bounded them.
  w.Key("model");
  String(w, v.model);
  w.Key("modelVersion");
  String(w, v.version);
  w.Key("probability");
  w.Double(v.probability);
  w.Key("threshold");
  w.Double(v.threshold);
  w.Key("verdictTime");
  String(w, absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", v.time, absl::UTCTimeZone()));
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

AlertService::AlertService(AlertServiceOptions options)
    : options_(std::move(options)), hasher_(options_.patient_hash_key) {}

absl::StatusOr<std::unique_ptr<AlertService>> AlertService::Create(AlertServiceOptions options) {
  if (options.patient_hash_key.size() < 16) {
    return absl::InvalidArgumentError("alerts: the patient hash key must be at least 16 bytes");
  }
  if (options.intake_capacity == 0) return absl::InvalidArgumentError("alerts: intake_capacity must be > 0");
  if (options.clock == nullptr) options.clock = Clock::Real();
  options.outbox.clock = options.clock;
  options.dispatcher.clock = options.clock;
  auto service = std::unique_ptr<AlertService>(new AlertService(std::move(options)));
  for (const WebhookTarget& t : service->options_.dispatcher.receivers) service->receivers_.push_back(t.name);
  if (service->receivers_.empty()) return absl::InvalidArgumentError("alerts: no webhook receiver configured");
  if (service->options_.registry != nullptr) {
    service->metrics_ = std::make_unique<AlertMetrics>(*service->options_.registry, service->receivers_);
    service->options_.dispatcher.metrics = service->metrics_.get();
  }
  ASSIGN_OR_RETURN(service->outbox_, Outbox::Open(service->options_.outbox));
  ASSIGN_OR_RETURN(service->dispatcher_, AlertDispatcher::Create(service->options_.dispatcher, service->outbox_.get()));
  service->intake_thread_ = std::thread([s = service.get()] { s->IntakeLoop(); });
  if (service->options_.start_dispatcher) service->dispatcher_->Start();
  return service;
}

AlertService::~AlertService() { Stop(); }

void AlertService::Stop() {
  std::call_once(stop_once_, [this] {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
      cv_.SignalAll();
    }
    if (intake_thread_.joinable()) intake_thread_.join();
    if (dispatcher_ != nullptr) dispatcher_->Stop();
  });
}

void AlertService::WakeDispatcher() {
  if (dispatcher_ != nullptr) dispatcher_->Wake();
}

absl::Status AlertService::OnSeriousVerdict(SeriousVerdict verdict, Done done) {
  RETURN_IF_ERROR(ValidateVerdict(verdict));
  absl::MutexLock lock(&mu_);
  if (stopping_) return absl::FailedPreconditionError("alerts: the alert service is stopping");
  if (intake_.size() >= options_.intake_capacity) {
    if (metrics_ != nullptr) metrics_->EnqueueRefused();
    return absl::ResourceExhaustedError(
        ortserve::StrCat("alerts: ", intake_.size(), " verdicts are waiting to be written to the outbox"));
  }
  intake_.push_back(Intake{std::move(verdict), std::move(done)});
  cv_.Signal();
  return absl::OkStatus();
}

absl::Status AlertService::EnqueueNow(const SeriousVerdict& verdict) {
  RETURN_IF_ERROR(ValidateVerdict(verdict));
  NewAlert alert;
  alert.alert_id = verdict.request_id;
  alert.patient_key = hasher_.Hash(verdict.patient_id);
  alert.created = verdict.time;
  alert.payload = AlertPayload(verdict, alert.patient_key);
  auto result = outbox_->Enqueue(alert, receivers_);
  if (!result.ok()) {
    if (metrics_ != nullptr && absl::IsResourceExhausted(result.status())) metrics_->EnqueueRefused();
    return result.status();
  }
  if (result->inserted > 0) {
    if (metrics_ != nullptr) {
      for (const std::string& r : receivers_) {
        auto pending = outbox_->PendingCount(r);
        if (pending.ok()) metrics_->SetPending(r, static_cast<double>(*pending));
      }
    }
    dispatcher_->Wake();
  }
  return absl::OkStatus();
}

void AlertService::IntakeLoop() {
  for (;;) {
    Intake item;
    {
      absl::MutexLock lock(&mu_);
      while (intake_.empty() && !stopping_) cv_.Wait(&mu_);
      // Accepted verdicts are written even when stopping: they were promised.
      if (intake_.empty()) return;
      item = std::move(intake_.front());
      intake_.pop_front();
    }
    absl::Status status = EnqueueNow(item.verdict);
    if (!status.ok()) {
      spdlog::error("alerts: the alert for request {} could not be queued: {}", item.verdict.request_id,
                    ToStd(status.message()));
    }
    if (item.done) std::move(item.done)(std::move(status));
  }
}

}  // namespace ortserve::alerts
