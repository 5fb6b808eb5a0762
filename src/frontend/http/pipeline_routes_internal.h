// SPDX-License-Identifier: Apache-2.0
// Internal to the pipeline routes (one set of endpoints split in three):
// what they share. Include pipeline_routes.h instead.
//
//   pipeline_routes.cc     the shared helpers (error shapes, body parsing,
//                          text requests, request ids) and the dispatch
//                          (HandlePipelineRoute).
//   sae_routes.cc          POST /api/v1/sae/analyze (ParseSaeRequest, the
//                          verdict counters, the verdict sink hand-off).
//   tei_openai_routes.cc   POST /embed, /predict (TEI) and /v1/embeddings
//                          (OpenAI).
//   collection_routes.cc   /v1/collections (embeds text the same way).
//
// Thread-safety: every function is thread-safe; none keeps shared state
// (thread_local scratch only). A simdjson parser and the objects it returns
// belong to one request on one thread; a PipelineReply is called once.
#pragma once

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <simdjson.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/infer_request.h"
#include "core/tensor.h"
#include "frontend/http/pipeline_routes.h"
#include "frontend/inference_service.h"
#include "pipeline/text_pipeline.h"

namespace ortserve::frontend::pipeline_internal {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

// Which API an endpoint speaks: it picks the error shape and status table.
enum class Api { kSae, kTeiEmbed, kTeiPredict, kOpenAiEmbeddings };

// Writes `s` as a JSON string.
void String(Writer& w, std::string_view s);

// {"error": message[, "requestId": id]} (the SAE API and ortserve's own errors).
std::string PlainError(std::string_view message, std::string_view request_id = {});

// An error reply in `api`'s own error shape and status table; calls `reply`.
void ReplyError(Api api, const absl::Status& status, std::string request_id, PipelineReply& reply);

// Parses `body` as a JSON object whose top-level keys all differ; `what`
// names the endpoint in errors. The object lives as long as `parser`.
absl::StatusOr<simdjson::dom::object> ParseObject(simdjson::dom::parser& parser, std::string_view body,
                                                  std::string_view what);

// A string or an array of strings (`field` names it in errors).
absl::StatusOr<TextInputs> ParseTexts(simdjson::dom::object& object, std::string_view field);

// An optional boolean field (absent or null: nullopt).
absl::StatusOr<std::optional<bool>> OptionalBool(simdjson::dom::object& object, std::string_view field);

// The model `name` when it serves a pipeline of `task`; `flag` names the
// command-line flag that configures the endpoint.
absl::StatusOr<ModelHandle> PipelineModel(InferenceService& service, const std::string& name,
                                          pipeline::TextPipeline::Task task, std::string_view flag);

// A text request for `model`, routed like any other: no explicit version
// (the router picks the split, sticky key or X-Model-Version override from
// `context.headers`), answered by whichever version serves it.
std::unique_ptr<InferRequest> TextRequest(const ModelHandle& model, const std::vector<std::string>& texts,
                                          std::vector<std::string_view> outputs, const PipelineContext& context,
                                          std::string request_id, std::shared_ptr<CancellationFlag> cancellation);

// The output `name` of `response`, or null.
const Tensor* FindOutput(const InferResponse& response, std::string_view name);

// The response's token count (0 when the pipeline did not report one).
int64_t TokenCount(const InferResponse& response);

// The request id for `context` (its X-Request-Id when acceptable).
std::string RequestIdOf(const PipelineContext& context);

// A request refused before it reached the router still counts (metrics,
// access log) under the model the endpoint serves, when that resolves.
void RecordRefused(InferenceService& service, const PipelineContext& context, const std::string& model_name,
                   std::string_view request_id);

// The endpoints, with HandlePipelineRoute's contract: HandleSae in
// sae_routes.cc, the others in tei_openai_routes.cc.
void HandleSae(InferenceService& service, const PipelineRouteOptions& options, std::string_view body,
               const PipelineContext& context, std::shared_ptr<CancellationFlag> cancellation,
               PipelineReply reply);
void HandleTeiEmbed(InferenceService& service, const PipelineRouteOptions& options, std::string_view body,
                    const PipelineContext& context, std::shared_ptr<CancellationFlag> cancellation,
                    PipelineReply reply);
void HandleTeiPredict(InferenceService& service, const PipelineRouteOptions& options, std::string_view body,
                      const PipelineContext& context, std::shared_ptr<CancellationFlag> cancellation,
                      PipelineReply reply);
void HandleOpenAiEmbeddings(InferenceService& service, const PipelineRouteOptions& options,
                            std::string_view body, const PipelineContext& context,
                            std::shared_ptr<CancellationFlag> cancellation, PipelineReply reply);

}  // namespace ortserve::frontend::pipeline_internal
