// SPDX-License-Identifier: Apache-2.0
// Recording into one model version's, instance's and device's series: the
// request path's part of the metrics (lock-free but for DeviceActivity's
// short lock).
#include "absl/synchronization/mutex.h"
#include "observability/metrics.h"
#include "core/strings.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"

namespace ortserve::observability {
namespace {

double Seconds(absl::Duration d) { return absl::ToDoubleSeconds(d); }
// Triton's counters add whole microseconds.
double Micros(absl::Duration d) { return static_cast<double>(absl::ToInt64Microseconds(d)); }

}  // namespace

void VersionMetrics::RecordRequest(Protocol protocol, Outcome outcome, absl::Duration latency,
                                   size_t response_bytes) {
  const auto p = static_cast<size_t>(protocol);
  requests_[p][static_cast<size_t>(outcome)]->Increment();
  request_duration_[p]->Observe(Seconds(latency));
  if (outcome == Outcome::kSuccess) response_bytes_[p]->Observe(static_cast<double>(response_bytes));
  if (triton_) {
    (outcome == Outcome::kSuccess ? triton_->success : triton_->failure)->Increment();
    triton_->request_us->Increment(Micros(latency));
  }
}

void VersionMetrics::RequestAdmitted() {
  if (pending_) pending_->Increment();
  if (triton_) triton_->pending->Increment();
}
void VersionMetrics::RequestAnswered() {
  if (pending_) pending_->Decrement();
  if (triton_) triton_->pending->Decrement();
}
void VersionMetrics::RecordQueue(absl::Duration wait) {
  if (queue_duration_) queue_duration_->Observe(Seconds(wait));
  if (triton_) triton_->queue_us->Increment(Micros(wait));
}

void VersionMetrics::RecordExecution(size_t batch_rows, size_t requests, absl::Duration input,
                                     absl::Duration infer, absl::Duration output) {
  if (!batch_size_) return;
  batch_size_->Observe(static_cast<double>(batch_rows));
  executions_->Increment();
  for (size_t i = 0; i < requests; ++i) {
    compute_input_->Observe(Seconds(input));
    compute_infer_->Observe(Seconds(infer));
    compute_output_->Observe(Seconds(output));
  }
  if (triton_) {
    // Each request of the batch is charged the batch's phases, as Triton does.
    const auto n = static_cast<double>(requests);
    triton_->executions->Increment();
    triton_->inferences->Increment(static_cast<double>(batch_rows));
    triton_->input_us->Increment(n * Micros(input));
    triton_->infer_us->Increment(n * Micros(infer));
    triton_->output_us->Increment(n * Micros(output));
  }
}

void VersionMetrics::BatchStarted() {
  if (inflight_batches_) inflight_batches_->Increment();
}
void VersionMetrics::BatchFinished() {
  if (inflight_batches_) inflight_batches_->Decrement();
}
void VersionMetrics::RecordTokenization(absl::Duration duration) {
  if (tokenization_) tokenization_->Observe(Seconds(duration));
}

void VersionMetrics::SetLoadDuration(absl::Duration duration) {
  if (load_duration_) load_duration_->Set(Seconds(duration));
}

void VersionMetrics::RecordCacheLookup(bool hit) {
  if (prometheus::Counter* counter = hit ? cache_hits_ : cache_misses_) counter->Increment();
}

void VersionMetrics::RecordRoute(size_t reason_index) {
  if (reason_index < routes_.size() && routes_[reason_index] != nullptr) routes_[reason_index]->Increment();
}

void VersionMetrics::RecordFallback() {
  if (fallbacks_) fallbacks_->Increment();
}

void VersionMetrics::SetBatchLimits(int64_t batch_size, absl::Duration queue_delay) {
  if (batch_size_limit_ == nullptr) return;
  prometheus::Gauge* rows = batch_size_gauge_.load(std::memory_order_acquire);
  prometheus::Gauge* delay = queue_delay_gauge_.load(std::memory_order_acquire);
  if (rows == nullptr || delay == nullptr) {
    const std::map<std::string, std::string> labels = {{"model", model_}, {"version", version_}};
    rows = &batch_size_limit_->Add(labels);
    delay = &queue_delay_limit_->Add(labels);
    batch_size_gauge_.store(rows, std::memory_order_release);
    queue_delay_gauge_.store(delay, std::memory_order_release);
  }
  rows->Set(static_cast<double>(batch_size));
  delay->Set(Seconds(queue_delay));
}

InstanceMetrics VersionMetrics::ForInstance(size_t instance, std::string_view device) {
  InstanceMetrics metrics;
  if (instance_executions_ != nullptr) {
    // Family::Add locks the family and returns the existing child for the
    // same labels, so a restarted runner keeps counting where it left off.
    metrics.executions_ = &instance_executions_->Add({{"model", model_},
                                                      {"version", version_},
                                                      {"instance", StrCat(instance)},
                                                      {"device", std::string(device)}});
  }
  if (owner_ != nullptr) metrics.device_ = owner_->ForDevice(device);
  return metrics;
}

void DeviceActivity::RunStarted(absl::Time now) {
  absl::MutexLock lock(&mu_);
  if (running_++ == 0) busy_since_ = std::max(now, last_end_);
}

void DeviceActivity::RunFinished(absl::Time now) {
  absl::MutexLock lock(&mu_);
  if (running_ == 0 || --running_ > 0) return;
  last_end_ = std::max(now, busy_since_);
  busy_seconds_->Increment(absl::ToDoubleSeconds(last_end_ - busy_since_));
}

void InstanceMetrics::RecordExecution() {
  if (executions_) executions_->Increment();
}

}  // namespace ortserve::observability
