// SPDX-License-Identifier: Apache-2.0
// Pipeline routes: the REST endpoints that take raw text and answer in the
// shape their clients already speak. Each builds a KServe-style InferRequest
// for a text pipeline model (input `text`, BYTES) and maps the response:
//   POST /api/v1/sae/analyze  the seed's SAE contract (docs/pipeline.md)
//   POST /embed, /predict     Text Embeddings Inference (TEI) compatible
//   POST /v1/embeddings       OpenAI compatible
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "core/infer_request.h"
#include "frontend/http/route_table.h"
#include "frontend/inference_service.h"
#include "observability/request_record.h"
#include "pipeline/verdict_sink.h"

namespace ortserve::frontend {

// Which model answers each endpoint. An empty name turns the endpoint off
// (404 with the flag to set).
struct PipelineRouteOptions {
  std::string sae_model;      // --sae-model: a TEXT_CLASSIFICATION pipeline
  std::string embed_model;    // --embed-model: an EMBEDDING pipeline (/embed; /v1/embeddings fallback)
  std::string predict_model;  // --predict-model: a TEXT_CLASSIFICATION pipeline (/predict)
  size_t sae_max_chars = 20000;  // --sae-max-report-chars: longer reportText gets 413
  // Where each SAE verdict goes (audit log, alert outbox); not owned; null:
  // nowhere (pipeline::NoopVerdictSink).
  pipeline::VerdictSink* verdict_sink = nullptr;
};

// The longest patientId, in characters.
inline constexpr size_t kMaxPatientIdChars = 128;
// The longest X-Request-Id honoured, in bytes; a longer one, or one with a
// character outside [A-Za-z0-9._:/+=@-], is replaced by a fresh UUID.
inline constexpr size_t kMaxRequestIdBytes = 128;

// A parsed SAE request.
struct SaeRequest {
  std::string patient_id;
  std::string report_text;
};

// Parses {"patientId": "...", "reportText": "..."}. InvalidArgument with a
// message naming the field for: a body that is not a JSON object, a key that
// appears twice, a missing field, a field that is not a string, a patientId
// that is empty, longer than kMaxPatientIdChars characters or holds a control
// or invisible formatting character, a reportText that is empty or only
// whitespace. OutOfRange (413) for a reportText longer than `max_chars`
// characters.
absl::StatusOr<SaeRequest> ParseSaeRequest(std::string_view body, size_t max_chars);

// InvalidArgument naming the first key of `body`'s top-level JSON object
// that appears more than once (parsers disagree on which one wins), OK
// otherwise (also for a body that is not an object: its parse reports that).
absl::Status CheckDuplicateKeys(std::string_view body);

// The request id to use: `header` (X-Request-Id) when it is 1 to
// kMaxRequestIdBytes bytes of [A-Za-z0-9._:/+=@-], else a random UUID.
std::string RequestIdFrom(std::optional<std::string_view> header);

// Texts of a TEI `inputs` / OpenAI `input` field: a string or an array of
// strings. `single` tells which it was.
struct TextInputs {
  std::vector<std::string> texts;
  bool single = false;
};

// What a pipeline endpoint answers: HTTP status, JSON body, and the request
// id to send back as X-Request-Id.
struct PipelineAnswer {
  unsigned status = 200;
  std::string body;
  std::string request_id;
};
using PipelineReply = absl::AnyInvocable<void(PipelineAnswer) &&>;

// What the front end knows of the request beside its body. Both may be null;
// both must stay valid until `reply` has been called.
struct PipelineContext {
  const RequestHeaders* headers = nullptr;  // X-Request-Id, X-Model-Version (lower-case lookups)
  // The request's observability record (metrics, access log). Touched only
  // on the calling thread, before HandlePipelineRoute returns.
  observability::RequestRecord* record = nullptr;
  // Who sent it (authentication's identity; empty: anonymous), for the audit.
  std::string_view client_id{};
  std::string_view client_kind{};
};

// Serves POST on pipeline endpoint `route` (kSaeAnalyze, kTeiEmbed,
// kTeiPredict, kOpenAiEmbeddings) with `body`. `reply` is called exactly once, inline for
// errors found while parsing, otherwise from the thread that completes the
// inference (it must hop to the connection's own thread before writing).
// Thread-safe.
// Requests go through the router like KServe ones (split sticky on the SAE
// patientId, X-Model-Version, fallback) and are counted under the model
// version that answered.
void HandlePipelineRoute(InferenceService& service, const PipelineRouteOptions& options, RouteId route,
                         std::string_view body, const PipelineContext& context,
                         std::shared_ptr<CancellationFlag> cancellation, PipelineReply reply);

}  // namespace ortserve::frontend
