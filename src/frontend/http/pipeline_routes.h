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
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "core/infer_request.h"
#include "frontend/http/route_table.h"
#include "frontend/inference_service.h"

namespace ortserve::frontend {

// Which model answers each endpoint. An empty name turns the endpoint off
// (404 with the flag to set).
struct PipelineRouteOptions {
  std::string sae_model;      // --sae-model: a TEXT_CLASSIFICATION pipeline
  std::string embed_model;    // --embed-model: an EMBEDDING pipeline (/embed; /v1/embeddings fallback)
  std::string predict_model;  // --predict-model: a TEXT_CLASSIFICATION pipeline (/predict)
  size_t sae_max_chars = 20000;  // --sae-max-report-chars: longer reportText gets 400
};

// A parsed SAE request.
struct SaeRequest {
  std::string patient_id;
  std::string report_text;
};

// Parses {"patientId": "...", "reportText": "..."}. InvalidArgument with a
// message naming the field for: a body that is not a JSON object, a missing
// field, a field that is not a string, an empty patientId, a reportText that
// is empty or only whitespace, or longer than `max_chars` characters.
absl::StatusOr<SaeRequest> ParseSaeRequest(std::string_view body, size_t max_chars);

// Texts of a TEI `inputs` / OpenAI `input` field: a string or an array of
// strings. `single` tells which it was.
struct TextInputs {
  std::vector<std::string> texts;
  bool single = false;
};

// What a pipeline endpoint answers: HTTP status and JSON body.
using PipelineReply = absl::AnyInvocable<void(unsigned status, std::string body) &&>;

// Serves POST on pipeline endpoint `route` (kSaeAnalyze, kTeiEmbed,
// kTeiPredict, kOpenAiEmbeddings) with `body`. `reply` is called exactly once, inline for
// errors found while parsing, otherwise from the thread that completes the
// inference (it must hop to the connection's own thread before writing).
// Thread-safe.
void HandlePipelineRoute(InferenceService& service, const PipelineRouteOptions& options, RouteId route,
                         std::string_view body, std::shared_ptr<CancellationFlag> cancellation,
                         PipelineReply reply);

}  // namespace ortserve::frontend
