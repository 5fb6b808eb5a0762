// SPDX-License-Identifier: Apache-2.0
// POST /embed and /predict (Text Embeddings Inference compatible) and
// POST /v1/embeddings (OpenAI compatible).
#include <algorithm>
#include <numeric>

#include "absl/strings/escaping.h"
#include "frontend/http/pipeline_routes.h"
#include "frontend/http/pipeline_routes_internal.h"
#include "pipeline/text_inference.h"

namespace ortserve::frontend::pipeline_internal {

void HandleTeiEmbed(InferenceService& service, const PipelineRouteOptions& options, std::string_view body,
                    const PipelineContext& context, std::shared_ptr<CancellationFlag> cancellation,
                    PipelineReply reply) {
  std::string request_id = RequestIdOf(context);
  auto refuse = [&](const absl::Status& status) {
    RecordRefused(service, context, options.embed_model, request_id);
    ReplyError(Api::kTeiEmbed, status, std::move(request_id), reply);
  };
  simdjson::dom::parser parser;
  auto object = ParseObject(parser, body, "/embed");
  if (!object.ok()) return refuse(object.status());
  auto texts = ParseTexts(*object, "inputs");
  if (!texts.ok()) return refuse(texts.status());
  auto normalize = OptionalBool(*object, "normalize");
  if (!normalize.ok()) return refuse(normalize.status());
  auto truncate = OptionalBool(*object, "truncate");
  if (!truncate.ok()) return refuse(truncate.status());
  auto model = PipelineModel(service, options.embed_model, pipeline::TextPipeline::Task::kEmbedding,
                             "--embed-model");
  if (!model.ok()) return refuse(model.status());
  auto request =
      TextRequest(*model, texts->texts, {pipeline::kEmbeddingOutput}, context, request_id, std::move(cancellation));
  // TEI's defaults: normalize true, truncate false.
  request->parameters.Set(std::string(pipeline::kNormalizeParameter), normalize->value_or(true));
  request->parameters.Set(std::string(pipeline::kTruncateParameter), truncate->value_or(false));
  service.Infer(std::move(request), [reply = std::move(reply), request_id](absl::StatusOr<InferResponse> result) mutable {
    if (!result.ok()) return ReplyError(Api::kTeiEmbed, result.status(), std::move(request_id), reply);
    const Tensor* embedding = FindOutput(*result, pipeline::kEmbeddingOutput);
    if (embedding == nullptr || embedding->shape.size() != 2) {
      return ReplyError(Api::kTeiEmbed, absl::InternalError("the model's response lacks 'embedding'"),
                        std::move(request_id), reply);
    }
    const auto values = embedding->values<float>();
    const auto dim = static_cast<size_t>(embedding->shape[1]);
    rapidjson::StringBuffer buffer;
    Writer w(buffer);
    w.StartArray();
    for (size_t row = 0; row < static_cast<size_t>(embedding->shape[0]); ++row) {
      w.StartArray();
      for (size_t d = 0; d < dim; ++d) w.Double(values[row * dim + d]);
      w.EndArray();
    }
    w.EndArray();
    std::move(reply)({200, buffer.GetString(), std::move(request_id)});
  }, context.record);
}

void HandleTeiPredict(InferenceService& service, const PipelineRouteOptions& options, std::string_view body,
                      const PipelineContext& context, std::shared_ptr<CancellationFlag> cancellation,
                      PipelineReply reply) {
  std::string request_id = RequestIdOf(context);
  auto refuse = [&](const absl::Status& status) {
    RecordRefused(service, context, options.predict_model, request_id);
    ReplyError(Api::kTeiPredict, status, std::move(request_id), reply);
  };
  simdjson::dom::parser parser;
  auto object = ParseObject(parser, body, "/predict");
  if (!object.ok()) return refuse(object.status());
  auto texts = ParseTexts(*object, "inputs");
  if (!texts.ok()) return refuse(texts.status());
  auto raw = OptionalBool(*object, "raw_scores");
  if (!raw.ok()) return refuse(raw.status());
  auto truncate = OptionalBool(*object, "truncate");
  if (!truncate.ok()) return refuse(truncate.status());
  auto model = PipelineModel(service, options.predict_model, pipeline::TextPipeline::Task::kClassification,
                             "--predict-model");
  if (!model.ok()) return refuse(model.status());
  const bool raw_scores = raw->value_or(false);
  auto request = TextRequest(*model, texts->texts,
                             {raw_scores ? pipeline::kLogitsOutput : pipeline::kProbabilitiesOutput}, context,
                             request_id, std::move(cancellation));
  // A long text is read as windows (its scores are the most serious
  // window's) unless the client asks for truncation.
  request->parameters.Set(std::string(pipeline::kTruncateParameter), truncate->value_or(false));
  request->parameters.Set(std::string(pipeline::kSlidingWindowParameter), !truncate->value_or(false));
  const bool single = texts->single;
  service.Infer(std::move(request), [reply = std::move(reply), model = *model, raw_scores, single, request_id](
                                        absl::StatusOr<InferResponse> result) mutable {
    if (!result.ok()) return ReplyError(Api::kTeiPredict, result.status(), std::move(request_id), reply);
    const Tensor* scores =
        FindOutput(*result, raw_scores ? pipeline::kLogitsOutput : pipeline::kProbabilitiesOutput);
    const auto& labels = model->text_pipeline->labels();
    if (scores == nullptr || scores->shape.size() != 2 || scores->shape[1] != static_cast<int64_t>(labels.size())) {
      return ReplyError(Api::kTeiPredict, absl::InternalError("the model's response lacks its scores"),
                        std::move(request_id), reply);
    }
    const auto values = scores->values<float>();
    const size_t n = labels.size();
    std::vector<size_t> order(n);
    rapidjson::StringBuffer buffer;
    Writer w(buffer);
    if (!single) w.StartArray();
    for (size_t row = 0; row < static_cast<size_t>(scores->shape[0]); ++row) {
      std::iota(order.begin(), order.end(), size_t{0});
      std::stable_sort(order.begin(), order.end(),
                       [&](size_t a, size_t b) { return values[row * n + a] > values[row * n + b]; });
      w.StartArray();
      for (size_t k : order) {
        w.StartObject();
        w.Key("score");
        w.Double(values[row * n + k]);
        w.Key("label");
        String(w, labels[k]);
        w.EndObject();
      }
      w.EndArray();
    }
    if (!single) w.EndArray();
    std::move(reply)({200, buffer.GetString(), std::move(request_id)});
  }, context.record);
}

void HandleOpenAiEmbeddings(InferenceService& service, const PipelineRouteOptions& options,
                            std::string_view body, const PipelineContext& context,
                            std::shared_ptr<CancellationFlag> cancellation, PipelineReply reply) {
  std::string request_id = RequestIdOf(context);
  std::string model_name = options.embed_model;
  auto refuse = [&](const absl::Status& status) {
    RecordRefused(service, context, model_name, request_id);
    ReplyError(Api::kOpenAiEmbeddings, status, std::move(request_id), reply);
  };
  simdjson::dom::parser parser;
  auto object = ParseObject(parser, body, "/v1/embeddings");
  if (!object.ok()) return refuse(object.status());
  auto texts = ParseTexts(*object, "input");
  if (!texts.ok()) return refuse(texts.status());
  simdjson::dom::element value;
  if ((*object)["model"].get(value) == simdjson::SUCCESS && !value.is_null()) {
    std::string_view name;
    if (value.get(name) != simdjson::SUCCESS) return refuse(absl::InvalidArgumentError("field 'model' must be a string"));
    if (!name.empty()) model_name.assign(name);
  }
  bool base64 = false;
  if ((*object)["encoding_format"].get(value) == simdjson::SUCCESS && !value.is_null()) {
    std::string_view format;
    if (value.get(format) != simdjson::SUCCESS || (format != "float" && format != "base64")) {
      return refuse(absl::InvalidArgumentError("field 'encoding_format' must be \"float\" or \"base64\""));
    }
    base64 = format == "base64";
  }
  if ((*object)["dimensions"].get(value) == simdjson::SUCCESS && !value.is_null()) {
    return refuse(absl::InvalidArgumentError("field 'dimensions' is not supported: the model's embedding "
                                             "size is fixed"));
  }
  auto model = PipelineModel(service, model_name, pipeline::TextPipeline::Task::kEmbedding, "--embed-model");
  if (!model.ok()) return refuse(model.status());
  auto request =
      TextRequest(*model, texts->texts, {pipeline::kEmbeddingOutput}, context, request_id, std::move(cancellation));
  // OpenAI's embeddings are unit length; long input is an error there too.
  request->parameters.Set(std::string(pipeline::kNormalizeParameter), true);
  request->parameters.Set(std::string(pipeline::kTruncateParameter), false);
  service.Infer(std::move(request), [reply = std::move(reply), name = (*model)->name, base64, request_id](
                                        absl::StatusOr<InferResponse> result) mutable {
    if (!result.ok()) return ReplyError(Api::kOpenAiEmbeddings, result.status(), std::move(request_id), reply);
    const Tensor* embedding = FindOutput(*result, pipeline::kEmbeddingOutput);
    if (embedding == nullptr || embedding->shape.size() != 2) {
      return ReplyError(Api::kOpenAiEmbeddings, absl::InternalError("the model's response lacks 'embedding'"),
                        std::move(request_id), reply);
    }
    const auto values = embedding->values<float>();
    const auto dim = static_cast<size_t>(embedding->shape[1]);
    const int64_t tokens = TokenCount(*result);
    rapidjson::StringBuffer buffer;
    Writer w(buffer);
    w.StartObject();
    w.Key("object");
    w.String("list");
    w.Key("data");
    w.StartArray();
    for (size_t row = 0; row < static_cast<size_t>(embedding->shape[0]); ++row) {
      w.StartObject();
      w.Key("object");
      w.String("embedding");
      w.Key("index");
      w.Uint64(row);
      w.Key("embedding");
      if (base64) {
        const std::string bytes(reinterpret_cast<const char*>(values.data() + row * dim), dim * sizeof(float));
        std::string encoded;
        absl::Base64Escape(bytes, &encoded);
        String(w, encoded);
      } else {
        w.StartArray();
        for (size_t d = 0; d < dim; ++d) w.Double(values[row * dim + d]);
        w.EndArray();
      }
      w.EndObject();
    }
    w.EndArray();
    w.Key("model");
    String(w, name);
    w.Key("usage");
    w.StartObject();
    w.Key("prompt_tokens");
    w.Int64(tokens);
    w.Key("total_tokens");
    w.Int64(tokens);
    w.EndObject();
    w.EndObject();
    std::move(reply)({200, buffer.GetString(), std::move(request_id)});
  }, context.record);
}

}  // namespace ortserve::frontend::pipeline_internal
