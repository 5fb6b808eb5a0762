// SPDX-License-Identifier: Apache-2.0
// The pipeline routes' shared helpers and dispatch; the endpoints are in
// sae_routes.cc and tei_openai_routes.cc (see pipeline_routes_internal.h).
#include "frontend/http/pipeline_routes.h"

#include <algorithm>
#include <cstdio>
#include <random>

#include "absl/strings/cord.h"
#include "core/status.h"
#include "core/strings.h"
#include "frontend/http/http_server.h"
#include "frontend/http/pipeline_routes_internal.h"
#include "pipeline/text_inference.h"

namespace ortserve::frontend {
namespace pipeline_internal {
namespace {

// A status payload that fixes the HTTP status whatever the API's own table
// says (a duplicate key is a 400 on every endpoint).
constexpr char kHttpStatusPayload[] = "ortserve.dev/http-status";

absl::Status WithHttpStatus(absl::Status status, unsigned http) {
  status.SetPayload(kHttpStatusPayload, absl::Cord(std::to_string(http)));
  return status;
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

// At most this much of a client's key is quoted back in an error.
constexpr size_t kQuotedKeyBytes = 64;

std::string_view QuotedKey(std::string_view key) {
  if (key.size() <= kQuotedKeyBytes) return key;
  size_t end = kQuotedKeyBytes;
  while (end > 0 && (static_cast<unsigned char>(key[end]) & 0xC0) == 0x80) --end;  // A whole character.
  return key.substr(0, end);
}

// The body's top-level keys, sorted, must all differ: Python and JavaScript
// take the last of two equal keys and simdjson the first, so a gateway that
// validated one value would let the other through.
absl::Status DuplicateKeyIn(simdjson::dom::object& object) {
  thread_local std::vector<std::string_view> keys;
  keys.clear();
  for (auto field : object) keys.push_back(field.key);
  if (keys.size() < 2) return absl::OkStatus();
  std::sort(keys.begin(), keys.end());
  for (size_t i = 1; i < keys.size(); ++i) {
    if (keys[i] == keys[i - 1]) {
      return WithHttpStatus(absl::InvalidArgumentError(StrCat("duplicate key '", QuotedKey(keys[i]),
                                                              "' in the request body: send each field once")),
                            400);
    }
  }
  return absl::OkStatus();
}

}  // namespace

void String(Writer& w, std::string_view s) { w.String(s.data(), static_cast<rapidjson::SizeType>(s.size())); }

// {"error": message[, "requestId": id]} (the SAE API and ortserve's own errors).
std::string PlainError(std::string_view message, std::string_view request_id) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  w.Key("error");
  String(w, message);
  if (!request_id.empty()) {
    w.Key("requestId");
    String(w, request_id);
  }
  w.EndObject();
  return buffer.GetString();
}

// An error reply in the endpoint's own error shape. TEI's status table:
// Validation (text too long without truncation) 413, Tokenizer 422,
// Overloaded 429, Empty 400, Unhealthy 503, Backend 500. The SAE API answers
// 413 for a report over its hard limits.
void ReplyError(Api api, const absl::Status& status, std::string request_id, PipelineReply& reply) {
  const std::string message(ToStd(status.message()));
  unsigned http = HttpStatusFor(status.code());
  std::optional<unsigned> forced;
  if (auto payload = status.GetPayload(kHttpStatusPayload)) forced = static_cast<unsigned>(std::stoul(std::string(*payload)));
  switch (api) {
    case Api::kSae:
      if (status.code() == absl::StatusCode::kOutOfRange) http = 413;
      return std::move(reply)({forced.value_or(http), PlainError(message, request_id), std::move(request_id)});
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
      return std::move(reply)({forced.value_or(http), TeiError(message, type), std::move(request_id)});
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
      return std::move(reply)(
          {forced.value_or(http), OpenAiError(message, type, "", code), std::move(request_id)});
    }
  }
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
  RETURN_IF_ERROR(DuplicateKeyIn(object));
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

// A text request for `model`, routed like any other: no explicit version
// (the router picks the split, sticky key or X-Model-Version override from
// `context.headers`), answered by whichever version serves it.
std::unique_ptr<InferRequest> TextRequest(const ModelHandle& model, const std::vector<std::string>& texts,
                                          std::vector<std::string_view> outputs, const PipelineContext& context,
                                          std::string request_id, std::shared_ptr<CancellationFlag> cancellation) {
  auto request = std::make_unique<InferRequest>();
  request->model_name = model->name;
  request->id = std::move(request_id);
  request->headers = context.headers;
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

std::string RequestIdOf(const PipelineContext& context) {
  return RequestIdFrom(context.headers == nullptr ? std::nullopt : context.headers->Get("x-request-id"));
}

// A request refused before it reached the router still counts (metrics,
// access log) under the model the endpoint serves, when that resolves.
void RecordRefused(InferenceService& service, const PipelineContext& context, const std::string& model_name,
                   std::string_view request_id) {
  if (context.record == nullptr) return;
  context.record->MarkInference();
  context.record->SetRequestId(request_id);
  if (model_name.empty()) return;
  if (auto model = service.GetModel(model_name, ""); model.ok()) context.record->SetModel((*model)->metrics);
}

}  // namespace pipeline_internal

absl::Status CheckDuplicateKeys(std::string_view body) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(body.data(), body.size(), true).get(doc) != simdjson::SUCCESS) return absl::OkStatus();
  simdjson::dom::object object;
  if (doc.get(object) != simdjson::SUCCESS) return absl::OkStatus();
  return pipeline_internal::DuplicateKeyIn(object);
}

std::string RequestIdFrom(std::optional<std::string_view> header) {
  if (header && !header->empty() && header->size() <= kMaxRequestIdBytes) {
    bool ok = true;
    for (char c : *header) {
      const bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                           c == '_' || c == '.' || c == ':' || c == '/' || c == '+' || c == '=' || c == '@';
      if (!allowed) {
        ok = false;
        break;
      }
    }
    if (ok) return std::string(*header);
  }
  return pipeline_internal::NewRequestId();
}

void HandlePipelineRoute(InferenceService& service, const PipelineRouteOptions& options, RouteId route,
                         std::string_view body, const PipelineContext& context,
                         std::shared_ptr<CancellationFlag> cancellation, PipelineReply reply) {
  using namespace pipeline_internal;  // NOLINT(build/namespaces): the handlers.
  switch (route) {
    case RouteId::kSaeAnalyze:
      return HandleSae(service, options, body, context, std::move(cancellation), std::move(reply));
    case RouteId::kTeiEmbed:
      return HandleTeiEmbed(service, options, body, context, std::move(cancellation), std::move(reply));
    case RouteId::kTeiPredict:
      return HandleTeiPredict(service, options, body, context, std::move(cancellation), std::move(reply));
    case RouteId::kOpenAiEmbeddings:
      return HandleOpenAiEmbeddings(service, options, body, context, std::move(cancellation), std::move(reply));
    default: break;
  }
  std::move(reply)({404, PlainError("no such text endpoint"), {}});
}

}  // namespace ortserve::frontend
