// SPDX-License-Identifier: Apache-2.0
#include "frontend/http/pipeline_routes.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <simdjson.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <numeric>
#include <random>

#include "absl/strings/escaping.h"
#include "core/strings.h"
#include "frontend/http/http_server.h"
#include "pipeline/text_inference.h"
#include "pipeline/text_pipeline.h"

namespace ortserve::frontend {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

enum class Api { kSae, kTeiEmbed, kTeiPredict, kOpenAiEmbeddings };

size_t Utf8Chars(std::string_view text) {
  size_t n = 0;
  for (char c : text) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80 ? 1 : 0;
  return n;
}

void String(Writer& w, std::string_view s) { w.String(s.data(), static_cast<rapidjson::SizeType>(s.size())); }

// {"error": message} (the SAE API and ortserve's own errors).
std::string PlainError(std::string_view message) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  w.Key("error");
  String(w, message);
  w.EndObject();
  return buffer.GetString();
}

// TEI: {"error": message, "error_type": type}.
std::string TeiError(std::string_view message, std::string_view type) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  w.Key("error");
  String(w, message);
  w.Key("error_type");
  String(w, type);
  w.EndObject();
  return buffer.GetString();
}

// OpenAI: {"error": {"message", "type", "param", "code"}}.
std::string OpenAiError(std::string_view message, std::string_view type, std::string_view param,
                        std::string_view code) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  w.Key("error");
  w.StartObject();
  w.Key("message");
  String(w, message);
  w.Key("type");
  String(w, type);
  w.Key("param");
  if (param.empty()) {
    w.Null();
  } else {
    String(w, param);
  }
  w.Key("code");
  if (code.empty()) {
    w.Null();
  } else {
    String(w, code);
  }
  w.EndObject();
  w.EndObject();
  return buffer.GetString();
}

// An error reply in the endpoint's own error shape. TEI's status table:
// Validation (text too long without truncation) 413, Tokenizer 422,
// Overloaded 429, Empty 400, Unhealthy 503, Backend 500.
void ReplyError(Api api, const absl::Status& status, PipelineReply& reply) {
  const std::string message(ToStd(status.message()));
  unsigned http = HttpStatusFor(status.code());
  switch (api) {
    case Api::kSae:
      return std::move(reply)(http, PlainError(message));
    case Api::kTeiEmbed:
    case Api::kTeiPredict: {
      std::string_view type = "Backend";
      switch (status.code()) {
        case absl::StatusCode::kOutOfRange: http = 413; type = "Validation"; break;
        case absl::StatusCode::kInvalidArgument: http = 422; type = "Validation"; break;
        case absl::StatusCode::kResourceExhausted: http = 429; type = "Overloaded"; break;
        case absl::StatusCode::kUnavailable:
        case absl::StatusCode::kNotFound: http = 503; type = "Unhealthy"; break;
        default: break;
      }
      return std::move(reply)(http, TeiError(message, type));
    }
    case Api::kOpenAiEmbeddings: {
      std::string_view type = "server_error";
      std::string_view code;
      if (http == 400 || status.code() == absl::StatusCode::kOutOfRange) {
        http = 400;
        type = "invalid_request_error";
      } else if (http == 404) {
        type = "invalid_request_error";
        code = "model_not_found";
      } else if (http == 429) {
        type = "rate_limit_exceeded";
      }
      return std::move(reply)(http, OpenAiError(message, type, "", code));
    }
  }
}

std::string NewRequestId() {
  thread_local std::mt19937_64 random(std::random_device{}() ^
                                      static_cast<uint64_t>(absl::ToUnixNanos(absl::Now())));
  const uint64_t a = random();
  const uint64_t b = random();
  char id[40];
  std::snprintf(id, sizeof(id), "%08x-%04x-4%03x-%04x-%012llx", static_cast<unsigned>(a >> 32),
                static_cast<unsigned>((a >> 16) & 0xffff), static_cast<unsigned>(a & 0xfff),
                static_cast<unsigned>(0x8000 | ((b >> 48) & 0x3fff)),
                static_cast<unsigned long long>(b & 0xffffffffffffULL));
  return id;
}

absl::StatusOr<simdjson::dom::object> ParseObject(simdjson::dom::parser& parser, std::string_view body,
                                                  std::string_view what) {
  simdjson::dom::element doc;
  if (parser.parse(body.data(), body.size(), true).get(doc) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError(StrCat("the ", what, " request body is not valid JSON"));
  }
  simdjson::dom::object object;
  if (doc.get(object) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError(StrCat("the ", what, " request body must be a JSON object"));
  }
  return object;
}

// A string or an array of strings (`field` names it in errors).
absl::StatusOr<TextInputs> ParseTexts(simdjson::dom::object& object, std::string_view field) {
  simdjson::dom::element value;
  if (object[field].get(value) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError(StrCat("missing field '", field, "'"));
  }
  TextInputs inputs;
  std::string_view text;
  if (value.get(text) == simdjson::SUCCESS) {
    inputs.single = true;
    inputs.texts.emplace_back(text);
    return inputs;
  }
  simdjson::dom::array array;
  if (value.get(array) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError(StrCat("field '", field, "' must be a string or an array of strings"));
  }
  size_t i = 0;
  for (simdjson::dom::element element : array) {
    if (element.get(text) != simdjson::SUCCESS) {
      return absl::InvalidArgumentError(
          StrCat("field '", field, "' element ", i,
                 element.is_array() ? " is an array: text pairs and token arrays are not supported"
                                    : " is not a string"));
    }
    inputs.texts.emplace_back(text);
    ++i;
  }
  if (inputs.texts.empty()) return absl::InvalidArgumentError(StrCat("field '", field, "' is an empty array"));
  if (static_cast<int64_t>(inputs.texts.size()) > pipeline::kMaxTextRows) {
    return absl::InvalidArgumentError(StrCat("field '", field, "' has ", inputs.texts.size(),
                                             " texts; at most ", pipeline::kMaxTextRows, " per request"));
  }
  return inputs;
}

// An optional boolean field.
absl::StatusOr<std::optional<bool>> OptionalBool(simdjson::dom::object& object, std::string_view field) {
  simdjson::dom::element value;
  if (object[field].get(value) != simdjson::SUCCESS || value.is_null()) return std::optional<bool>();
  bool b = false;
  if (value.get(b) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError(StrCat("field '", field, "' must be a boolean"));
  }
  return std::optional<bool>(b);
}

// The model `name` when it serves a pipeline of `task`.
absl::StatusOr<ModelHandle> PipelineModel(InferenceService& service, const std::string& name,
                                          pipeline::TextPipeline::Task task, std::string_view flag) {
  if (name.empty()) {
    return absl::NotFoundError(StrCat("this endpoint is not configured: start ortserve with ", flag, " NAME"));
  }
  auto model = service.GetModel(name, "");
  if (!model.ok()) return model.status();
  if ((*model)->text_pipeline == nullptr || (*model)->text_pipeline->task() != task) {
    return absl::FailedPreconditionError(
        StrCat("model '", name, "' has no ",
               task == pipeline::TextPipeline::Task::kEmbedding ? "EMBEDDING" : "TEXT_CLASSIFICATION",
               " text_pipeline in its config, so it cannot serve this endpoint"));
  }
  return model;
}

std::unique_ptr<InferRequest> TextRequest(const ModelHandle& model, const std::vector<std::string>& texts,
                                          std::vector<std::string_view> outputs,
                                          std::shared_ptr<CancellationFlag> cancellation) {
  auto request = std::make_unique<InferRequest>();
  request->model_name = model->name;
  request->model_version = model->version_string;
  request->inputs.push_back(MakeBytesTensor(std::string(pipeline::kTextInput),
                                            Shape{static_cast<int64_t>(texts.size())}, texts));
  for (std::string_view name : outputs) {
    RequestedOutput output;
    output.name = std::string(name);
    request->outputs.push_back(std::move(output));
  }
  request->arrival = absl::Now();
  request->cancellation = std::move(cancellation);
  return request;
}

const Tensor* FindOutput(const InferResponse& response, std::string_view name) {
  for (const auto& output : response.outputs) {
    if (output.name == name) return &output;
  }
  return nullptr;
}

int64_t TokenCount(const InferResponse& response) {
  return response.parameters.FindInt(pipeline::kTokenCountParameter).value_or(0);
}

void HandleSae(InferenceService& service, const PipelineRouteOptions& options, std::string_view body,
               std::shared_ptr<CancellationFlag> cancellation, PipelineReply reply) {
  auto parsed = ParseSaeRequest(body, options.sae_max_chars);
  if (!parsed.ok()) return ReplyError(Api::kSae, parsed.status(), reply);
  auto model = PipelineModel(service, options.sae_model, pipeline::TextPipeline::Task::kClassification,
                             "--sae-model");
  if (!model.ok()) return ReplyError(Api::kSae, model.status(), reply);
  auto request = TextRequest(*model, {parsed->report_text},
                             {pipeline::kIsPositiveOutput, pipeline::kPositiveProbabilityOutput,
                              pipeline::kLabelOutput},
                             std::move(cancellation));
  request->id = NewRequestId();
  const std::string version = StrCat((*model)->name, "/", (*model)->version_string);
  service.Infer(std::move(request), [reply = std::move(reply), version, patient = std::move(parsed->patient_id)](
                                        absl::StatusOr<InferResponse> result) mutable {
    if (!result.ok()) return ReplyError(Api::kSae, result.status(), reply);
    const Tensor* positive = FindOutput(*result, pipeline::kIsPositiveOutput);
    const Tensor* probability = FindOutput(*result, pipeline::kPositiveProbabilityOutput);
    const Tensor* label = FindOutput(*result, pipeline::kLabelOutput);
    auto labels = label == nullptr ? absl::StatusOr<std::vector<std::string_view>>(absl::InternalError("no label"))
                                   : SplitBytesElements(label->data, 1, "label");
    if (positive == nullptr || probability == nullptr || !labels.ok() || positive->data.size() != 1 ||
        probability->data.size() != sizeof(float)) {
      return ReplyError(Api::kSae, absl::InternalError("the SAE model's response lacks its outputs"), reply);
    }
    const bool is_sae = positive->data[0] != std::byte{0};
    const float p_serious = probability->values<float>()[0];
    rapidjson::StringBuffer buffer;
    Writer w(buffer);
    w.StartObject();
    w.Key("isSAE");
    w.Bool(is_sae);
    // The probability of the decision taken (of "serious" when isSAE, of
    // "not serious" otherwise).
    w.Key("confidence");
    w.Double(is_sae ? p_serious : 1.0 - p_serious);
    w.Key("seriousProbability");
    w.Double(p_serious);
    w.Key("label");
    String(w, (*labels)[0]);
    w.Key("patientId");
    String(w, patient);
    w.Key("modelVersion");
    String(w, version);
    w.Key("requestId");
    String(w, result->id);
    w.EndObject();
    std::move(reply)(200, buffer.GetString());
  });
}

void HandleTeiEmbed(InferenceService& service, const PipelineRouteOptions& options, std::string_view body,
                    std::shared_ptr<CancellationFlag> cancellation, PipelineReply reply) {
  simdjson::dom::parser parser;
  auto object = ParseObject(parser, body, "/embed");
  if (!object.ok()) return ReplyError(Api::kTeiEmbed, object.status(), reply);
  auto texts = ParseTexts(*object, "inputs");
  if (!texts.ok()) return ReplyError(Api::kTeiEmbed, texts.status(), reply);
  auto normalize = OptionalBool(*object, "normalize");
  if (!normalize.ok()) return ReplyError(Api::kTeiEmbed, normalize.status(), reply);
  auto truncate = OptionalBool(*object, "truncate");
  if (!truncate.ok()) return ReplyError(Api::kTeiEmbed, truncate.status(), reply);
  auto model = PipelineModel(service, options.embed_model, pipeline::TextPipeline::Task::kEmbedding,
                             "--embed-model");
  if (!model.ok()) return ReplyError(Api::kTeiEmbed, model.status(), reply);
  auto request = TextRequest(*model, texts->texts, {pipeline::kEmbeddingOutput}, std::move(cancellation));
  // TEI's defaults: normalize true, truncate false.
  request->parameters.Set(std::string(pipeline::kNormalizeParameter), normalize->value_or(true));
  request->parameters.Set(std::string(pipeline::kTruncateParameter), truncate->value_or(false));
  service.Infer(std::move(request), [reply = std::move(reply)](absl::StatusOr<InferResponse> result) mutable {
    if (!result.ok()) return ReplyError(Api::kTeiEmbed, result.status(), reply);
    const Tensor* embedding = FindOutput(*result, pipeline::kEmbeddingOutput);
    if (embedding == nullptr || embedding->shape.size() != 2) {
      return ReplyError(Api::kTeiEmbed, absl::InternalError("the model's response lacks 'embedding'"), reply);
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
    std::move(reply)(200, buffer.GetString());
  });
}

void HandleTeiPredict(InferenceService& service, const PipelineRouteOptions& options, std::string_view body,
                      std::shared_ptr<CancellationFlag> cancellation, PipelineReply reply) {
  simdjson::dom::parser parser;
  auto object = ParseObject(parser, body, "/predict");
  if (!object.ok()) return ReplyError(Api::kTeiPredict, object.status(), reply);
  auto texts = ParseTexts(*object, "inputs");
  if (!texts.ok()) return ReplyError(Api::kTeiPredict, texts.status(), reply);
  auto raw = OptionalBool(*object, "raw_scores");
  if (!raw.ok()) return ReplyError(Api::kTeiPredict, raw.status(), reply);
  auto truncate = OptionalBool(*object, "truncate");
  if (!truncate.ok()) return ReplyError(Api::kTeiPredict, truncate.status(), reply);
  auto model = PipelineModel(service, options.predict_model, pipeline::TextPipeline::Task::kClassification,
                             "--predict-model");
  if (!model.ok()) return ReplyError(Api::kTeiPredict, model.status(), reply);
  const bool raw_scores = raw->value_or(false);
  auto request = TextRequest(*model, texts->texts,
                             {raw_scores ? pipeline::kLogitsOutput : pipeline::kProbabilitiesOutput},
                             std::move(cancellation));
  request->parameters.Set(std::string(pipeline::kTruncateParameter), truncate->value_or(false));
  const bool single = texts->single;
  service.Infer(std::move(request), [reply = std::move(reply), model = *model, raw_scores, single](
                                        absl::StatusOr<InferResponse> result) mutable {
    if (!result.ok()) return ReplyError(Api::kTeiPredict, result.status(), reply);
    const Tensor* scores =
        FindOutput(*result, raw_scores ? pipeline::kLogitsOutput : pipeline::kProbabilitiesOutput);
    const auto& labels = model->text_pipeline->labels();
    if (scores == nullptr || scores->shape.size() != 2 || scores->shape[1] != static_cast<int64_t>(labels.size())) {
      return ReplyError(Api::kTeiPredict, absl::InternalError("the model's response lacks its scores"), reply);
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
    std::move(reply)(200, buffer.GetString());
  });
}

void HandleOpenAiEmbeddings(InferenceService& service, const PipelineRouteOptions& options,
                            std::string_view body, std::shared_ptr<CancellationFlag> cancellation,
                            PipelineReply reply) {
  simdjson::dom::parser parser;
  auto object = ParseObject(parser, body, "/v1/embeddings");
  if (!object.ok()) return ReplyError(Api::kOpenAiEmbeddings, object.status(), reply);
  auto texts = ParseTexts(*object, "input");
  if (!texts.ok()) return ReplyError(Api::kOpenAiEmbeddings, texts.status(), reply);
  std::string model_name = options.embed_model;
  simdjson::dom::element value;
  if ((*object)["model"].get(value) == simdjson::SUCCESS && !value.is_null()) {
    std::string_view name;
    if (value.get(name) != simdjson::SUCCESS) {
      return ReplyError(Api::kOpenAiEmbeddings, absl::InvalidArgumentError("field 'model' must be a string"), reply);
    }
    if (!name.empty()) model_name.assign(name);
  }
  bool base64 = false;
  if ((*object)["encoding_format"].get(value) == simdjson::SUCCESS && !value.is_null()) {
    std::string_view format;
    if (value.get(format) != simdjson::SUCCESS || (format != "float" && format != "base64")) {
      return ReplyError(Api::kOpenAiEmbeddings,
                        absl::InvalidArgumentError("field 'encoding_format' must be \"float\" or \"base64\""), reply);
    }
    base64 = format == "base64";
  }
  if ((*object)["dimensions"].get(value) == simdjson::SUCCESS && !value.is_null()) {
    return ReplyError(Api::kOpenAiEmbeddings,
                      absl::InvalidArgumentError("field 'dimensions' is not supported: the model's embedding "
                                                 "size is fixed"),
                      reply);
  }
  auto model = PipelineModel(service, model_name, pipeline::TextPipeline::Task::kEmbedding, "--embed-model");
  if (!model.ok()) return ReplyError(Api::kOpenAiEmbeddings, model.status(), reply);
  auto request = TextRequest(*model, texts->texts, {pipeline::kEmbeddingOutput}, std::move(cancellation));
  // OpenAI's embeddings are unit length; long input is an error there too.
  request->parameters.Set(std::string(pipeline::kNormalizeParameter), true);
  request->parameters.Set(std::string(pipeline::kTruncateParameter), false);
  service.Infer(std::move(request), [reply = std::move(reply), name = (*model)->name, base64](
                                        absl::StatusOr<InferResponse> result) mutable {
    if (!result.ok()) return ReplyError(Api::kOpenAiEmbeddings, result.status(), reply);
    const Tensor* embedding = FindOutput(*result, pipeline::kEmbeddingOutput);
    if (embedding == nullptr || embedding->shape.size() != 2) {
      return ReplyError(Api::kOpenAiEmbeddings, absl::InternalError("the model's response lacks 'embedding'"),
                        reply);
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
    std::move(reply)(200, buffer.GetString());
  });
}

}  // namespace

absl::StatusOr<SaeRequest> ParseSaeRequest(std::string_view body, size_t max_chars) {
  simdjson::dom::parser parser;
  auto object = ParseObject(parser, body, "SAE analyze");
  if (!object.ok()) return object.status();
  SaeRequest request;
  for (std::string_view field : {"patientId", "reportText"}) {
    simdjson::dom::element value;
    if ((*object)[field].get(value) != simdjson::SUCCESS) {
      return absl::InvalidArgumentError(StrCat("missing field '", field, "'"));
    }
    std::string_view text;
    if (value.get(text) != simdjson::SUCCESS) {
      return absl::InvalidArgumentError(StrCat("field '", field, "' must be a string"));
    }
    (field == "patientId" ? request.patient_id : request.report_text).assign(text);
  }
  if (request.patient_id.empty()) return absl::InvalidArgumentError("field 'patientId' must not be empty");
  if (request.report_text.find_first_not_of(" \t\r\n") == std::string::npos) {
    return absl::InvalidArgumentError("field 'reportText' must not be empty");
  }
  const size_t chars = Utf8Chars(request.report_text);
  if (chars > max_chars) {
    return absl::InvalidArgumentError(StrCat("field 'reportText' has ", chars, " characters; the limit is ",
                                             max_chars));
  }
  return request;
}

void HandlePipelineRoute(InferenceService& service, const PipelineRouteOptions& options, RouteId route,
                         std::string_view body, std::shared_ptr<CancellationFlag> cancellation,
                         PipelineReply reply) {
  switch (route) {
    case RouteId::kSaeAnalyze: return HandleSae(service, options, body, std::move(cancellation), std::move(reply));
    case RouteId::kTeiEmbed: return HandleTeiEmbed(service, options, body, std::move(cancellation), std::move(reply));
    case RouteId::kTeiPredict:
      return HandleTeiPredict(service, options, body, std::move(cancellation), std::move(reply));
    case RouteId::kOpenAiEmbeddings:
      return HandleOpenAiEmbeddings(service, options, body, std::move(cancellation), std::move(reply));
    default: break;
  }
  std::move(reply)(404, PlainError("no such text endpoint"));
}

}  // namespace ortserve::frontend
