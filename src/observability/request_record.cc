// SPDX-License-Identifier: Apache-2.0
#include "observability/request_record.h"

#include "core/strings.h"

namespace ortserve::observability {

RequestRecord::RequestRecord(const Telemetry* telemetry, Protocol protocol, std::string_view traceparent,
                             absl::Time arrival)
    : telemetry_(telemetry), protocol_(protocol), arrival_(arrival) {
  if (telemetry_ == nullptr || telemetry_->tracer == nullptr) return;
  if (!traceparent.empty()) parent_ = ParseTraceparent(traceparent);
  span_ = telemetry_->tracer->StartSpan(parent_);
}

void RequestRecord::SetModel(VersionMetrics* metrics) {
  model_ = metrics;
  if (metrics == nullptr || !span_ || parent_ || telemetry_->tracer == nullptr ||
      !telemetry_->tracer->settings().HasModelSettings()) {
    return;
  }
  span_->sampled = telemetry_->tracer->SampleRoot(metrics->model());
}

RequestTrace RequestRecord::Trace() const {
  RequestTrace trace;
  if (!traced() || telemetry_->tracer == nullptr) return trace;
  trace.trace_id = span_->trace_id;
  trace.span_id = span_->span_id;
  trace.tracer = telemetry_->tracer;
  return trace;
}

std::string RequestRecord::ResponseTraceparent() const { return span_ ? FormatTraceparent(*span_) : std::string(); }

void RequestRecord::Finish(const Line& line, Outcome outcome, size_t response_bytes, std::string_view error) {
  if (finished_ || telemetry_ == nullptr) return;
  finished_ = true;
  const absl::Time now = absl::Now();
  const absl::Duration latency = now - arrival_;
  const bool inference = inference_ || model_ != nullptr;
  if (inference && telemetry_->metrics != nullptr) {
    VersionMetrics* target = model_ != nullptr ? model_ : telemetry_->metrics->Unresolved();
    target->RecordRequest(protocol_, outcome, latency, response_bytes);
  }
  if (inference && span_ && span_->sampled && telemetry_->tracer != nullptr) {
    Span span;
    span.context = *span_;
    if (parent_) span.parent_span_id = parent_->span_id;
    span.name = model_ != nullptr ? StrCat("infer ", model_->model()) : "infer";
    span.kind = Span::Kind::kServer;
    span.start = arrival_;
    span.end = now;
    span.attributes.emplace_back("ai.operation", std::string("infer"));
    if (model_ != nullptr) {
      span.attributes.emplace_back("ai.model.name", model_->model());
      span.attributes.emplace_back("ai.model.version", model_->version());
    }
    span.attributes.emplace_back("rpc.system", std::string(ProtocolName(protocol_)));
    span.attributes.emplace_back(protocol_ == Protocol::kHttp ? "http.response.status_code" : "rpc.grpc.status_code",
                                 static_cast<int64_t>(line.status));
    if (!request_id().empty()) span.attributes.emplace_back("ai.request.id", std::string(request_id()));
    if (input_tokens_ >= 0) span.attributes.emplace_back("llm.request.input_tokens", input_tokens_);
    span.error = outcome != Outcome::kSuccess;
    span.status_message = std::string(error);
    telemetry_->tracer->Export(std::move(span));
  }
  if (telemetry_->logging != nullptr && telemetry_->logging->access_log_enabled()) {
    AccessRecord record;
    record.protocol = ProtocolName(protocol_);
    record.method = line.method;
    record.target = line.target;
    record.request_id = request_id();
    if (model_ != nullptr) {
      record.model = model_->model();
      record.version = model_->version();
    }
    record.status = line.status;
    record.latency = latency;
    record.response_bytes = response_bytes;
    const std::string trace_id = inference && span_ && span_->sampled ? span_->TraceIdHex() : std::string();
    record.trace_id = trace_id;
    telemetry_->logging->Access(record);
  }
}

}  // namespace ortserve::observability
