// SPDX-License-Identifier: Apache-2.0
// VerdictSink: where each SAE verdict goes once it is decided, beside the
// client's answer: the seam for the audit log and the alert outbox (DESIGN.md
// "observability", "alerts"). The SAE endpoint (frontend/http/pipeline_routes)
// builds one Verdict per answered request and calls OnVerdict before the
// response is handed to the connection.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"

namespace ortserve::pipeline {

// One decision of the SAE endpoint. Plain data; the views point into the
// request being answered and are valid only during OnVerdict (copy what
// must outlive the call).
struct Verdict {
  std::string_view request_id;  // As echoed in X-Request-Id and the body's requestId.
  std::string_view patient_id;  // Validated (docs/pipeline.md): at most 128 characters, no control characters.
  std::string_view model;       // The model and version that answered (after routing and fallback).
  std::string_view version;
  uint64_t model_fingerprint = 0;  // Content hash of that version's files (which weights decided).
  std::string_view client_id;      // Who asked (the credential's id; empty: anonymous).
  std::string_view client_kind;    // api_key, jwt, mtls, anonymous.
  int64_t windows = 1;                // Model rows read (1, or the windows of a long report).
  double serious_probability = 0;     // Calibrated p(serious) of the most serious window.
  double threshold = 0.5;             // The model's decision threshold.
  bool is_sae = false;                // serious_probability >= threshold.
  bool review_recommended = false;    // The model knew too little of the text to judge it.
  absl::Duration latency;             // From the request's arrival to the verdict.
};

// What the sink made of a verdict, for the client's answer.
struct VerdictOutcome {
  // A serious verdict's alert is durable in the outbox (alert_id names it).
  bool alert_queued = false;
  std::string alert_id;
  // Why a serious verdict's alert is not queued (alerts on); empty otherwise.
  std::string alert_error;
};
using VerdictDone = absl::AnyInvocable<void(VerdictOutcome) &&>;

// Receives verdicts. Implementations must be thread-safe: OnVerdict runs on
// the thread that finished the inference (a model runner thread), for many
// requests at once. It must not block for long (it delays that model's next
// batch): hand durable work to a queue of your own. It must call `done`
// exactly once, from any thread, when what it does with the verdict is
// durable (the audit line written, the alert in the outbox) or failed: the
// client is answered then, so an answered verdict is never lost. It cannot
// fail the request; errors go into the outcome and the sink's own reports.
class VerdictSink {
 public:
  virtual ~VerdictSink() = default;
  virtual void OnVerdict(const Verdict& verdict, VerdictDone done) = 0;
};

// The default: drops every verdict.
class NoopVerdictSink final : public VerdictSink {
 public:
  void OnVerdict(const Verdict&, VerdictDone done) override { std::move(done)(VerdictOutcome{}); }
  // A process-wide instance (stateless).
  static NoopVerdictSink& Instance() {
    static NoopVerdictSink sink;
    return sink;
  }
};

}  // namespace ortserve::pipeline
