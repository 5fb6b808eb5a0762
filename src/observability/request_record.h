// SPDX-License-Identifier: Apache-2.0
// Telemetry and RequestRecord: what a front end uses to observe one request
// (metrics, trace span, access log) from arrival to response written.
#pragma once

#include <array>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "absl/time/time.h"
#include "observability/logging.h"
#include "observability/metrics.h"
#include "observability/tracing.h"

namespace ortserve::observability {

// The server's observability sinks. Any may be null (that sink is off).
// Not owned; outlive every request.
struct Telemetry {
  Metrics* metrics = nullptr;
  Logging* logging = nullptr;
  Tracer* tracer = nullptr;
};

// One request seen by a front end. Usage (see src/frontend/http/http_server.cc):
//
//   RequestRecord record(telemetry, Protocol::kHttp, headers["traceparent"]);
//   service.Infer(std::move(request), done, &record);     // resolves the model
//   ...  reply.headers.emplace_back("traceparent", record.ResponseTraceparent());
//   record.Finish({"POST", target, 200}, outcome, bytes); // after the write
//
// Not thread-safe: one owner at a time (the front end's connection or call);
// Finish exactly once. Recording takes no lock.
class RequestRecord {
 public:
  // `traceparent`: the incoming header value, empty when absent.
  RequestRecord(const Telemetry* telemetry, Protocol protocol, std::string_view traceparent,
                absl::Time arrival = absl::Now());

  // Marks this an inference request for `model` (InferenceService calls it
  // once the version resolves). Without it, Finish of an inference request
  // counts under the unresolved series.
  // Also decides again whether a new root trace is sampled when the model
  // has trace settings of its own (Tracer::SampleRoot).
  void SetModel(VersionMetrics* metrics);
  void MarkInference() { inference_ = true; }
  bool inference() const { return inference_ || model_ != nullptr; }
  // Kept for the span and the access log. Ids up to kInlineIdBytes (UUIDs,
  // and most clients' ids) are stored in the record itself: no allocation.
  void SetRequestId(std::string_view id) {
    if (id.size() <= kInlineIdBytes) {
      std::memcpy(id_inline_.data(), id.data(), id.size());
      id_size_ = id.size();
      id_long_.clear();
    } else {
      id_long_.assign(id.data(), id.size());
      id_size_ = kLongId;
    }
  }
  std::string_view request_id() const {
    return id_size_ == kLongId ? std::string_view(id_long_) : std::string_view(id_inline_.data(), id_size_);
  }

  bool traced() const { return span_.has_value() && span_->sampled; }
  // The span of this request, to parent child spans (queue, batch) on.
  const std::optional<TraceContext>& span() const { return span_; }
  // What the layers below record child spans against (InferRequest::trace):
  // this request's span and the tracer when sampled, else empty (unsampled).
  RequestTrace Trace() const;
  // Text pipeline requests: the token count of the request's texts, recorded
  // on the request span as llm.request.input_tokens.
  void SetInputTokens(int64_t tokens) { input_tokens_ = tokens; }
  // The `traceparent` to send back: this request's span. Empty without a tracer.
  std::string ResponseTraceparent() const;

  struct Line {
    std::string_view method;
    std::string_view target;
    unsigned status = 0;  // HTTP status or gRPC code.
  };
  // Records metrics (inference requests only), exports the request span when
  // sampled, and writes the access-log line when enabled.
  void Finish(const Line& line, Outcome outcome, size_t response_bytes, std::string_view error = {});

 private:
  const Telemetry* telemetry_;
  Protocol protocol_;
  absl::Time arrival_;
  VersionMetrics* model_ = nullptr;
  bool inference_ = false;
  bool finished_ = false;
  static constexpr size_t kInlineIdBytes = 64;
  static constexpr size_t kLongId = static_cast<size_t>(-1);
  std::array<char, kInlineIdBytes> id_inline_;
  size_t id_size_ = 0;   // kLongId: the id is in id_long_.
  std::string id_long_;  // Ids longer than kInlineIdBytes.
  int64_t input_tokens_ = -1;  // -1: not a text request.
  std::optional<TraceContext> parent_;
  std::optional<TraceContext> span_;
};

}  // namespace ortserve::observability
