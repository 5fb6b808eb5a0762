// SPDX-License-Identifier: Apache-2.0
#include "frontend/http/pipeline_routes.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <simdjson.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <numeric>
#include <random>

#include "absl/strings/escaping.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/cord.h"
#include "absl/synchronization/mutex.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/registry.h"
#include "core/status.h"
#include "core/strings.h"
#include "core/utf8.h"
#include "frontend/http/http_server.h"
#include "observability/metrics.h"
#include "pipeline/text_inference.h"
#include "pipeline/text_pipeline.h"
#include "router/version_router.h"

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

// {"error": message[, "requestId": id]} (the SAE API and ortserve's own errors).
std::string PlainError(std::string_view message, std::string_view request_id = {}) {
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

// ortserve_sae_verdicts_total{model, version, verdict}: the SAE endpoint's
// decisions. The family is registered on the server's registry with the
// first verdict, and each version's three children are resolved once; after
// that a verdict costs a shared (reader) lock and one hash lookup. Kept here,
// beside the only endpoint that counts verdicts.
class SaeVerdictCounters {
 public:
  enum Verdict { kSerious = 0, kNotSerious = 1, kReview = 2 };

  static void Record(observability::Metrics* metrics, observability::VersionMetrics* version, Verdict verdict) {
    if (metrics == nullptr || version == nullptr || version->model().empty()) return;
    Instance().Add(*metrics, *version, verdict);
  }

 private:
  using Children = std::array<prometheus::Counter*, 3>;
  struct PerRegistry {
    std::weak_ptr<prometheus::Registry> registry;
    prometheus::Family<prometheus::Counter>* family = nullptr;
    absl::flat_hash_map<const observability::VersionMetrics*, Children> versions;
  };

  static SaeVerdictCounters& Instance() {
    static auto* counters = new SaeVerdictCounters();  // Never destroyed: verdicts may come during exit.
    return *counters;
  }

  void Add(observability::Metrics& metrics, const observability::VersionMetrics& version, Verdict verdict) {
    {
      absl::ReaderMutexLock lock(&mu_);
      if (auto it = registries_.find(&metrics); it != registries_.end() && !it->second.registry.expired()) {
        if (auto child = it->second.versions.find(&version); child != it->second.versions.end()) {
          child->second[verdict]->Increment();
          return;
        }
      }
    }
    absl::MutexLock lock(&mu_);
    PerRegistry& entry = registries_[&metrics];
    std::shared_ptr<prometheus::Registry> registry = metrics.registry();
    if (entry.family == nullptr || entry.registry.lock() != registry) {
      // A Metrics made again at the address of a destroyed one starts afresh.
      entry = PerRegistry();
      entry.registry = registry;
      entry.family = &prometheus::BuildCounter()
                          .Name("ortserve_sae_verdicts_total")
                          .Help("SAE endpoint decisions by verdict: serious, not_serious, review (not serious, "
                                "but the model knew too little of the text to judge it: reviewRecommended).")
                          .Register(*registry);
    }
    Children& children = entry.versions[&version];
    if (children[0] == nullptr) {
      static constexpr std::array<std::string_view, 3> kNames = {"serious", "not_serious", "review"};
      for (size_t i = 0; i < kNames.size(); ++i) {
        children[i] = &entry.family->Add(
            {{"model", version.model()}, {"version", version.version()}, {"verdict", std::string(kNames[i])}});
      }
    }
    children[verdict]->Increment();
  }

  absl::Mutex mu_;
  absl::flat_hash_map<const observability::Metrics*, PerRegistry> registries_ ABSL_GUARDED_BY(mu_);
};

// What the SAE completion needs of the request.
struct SaeCall {
  std::string patient_id;
  std::string request_id;
  std::string client_id;
  std::string client_kind;
  ModelHandle routed_default;  // The version PipelineModel checked; usually the one that answers.
  absl::Time arrival;
  pipeline::VerdictSink* sink = nullptr;
  InferenceService* service = nullptr;
};

void AnswerSae(SaeCall& call, absl::StatusOr<InferResponse> result, PipelineReply& reply) {
  if (!result.ok()) return ReplyError(Api::kSae, result.status(), std::move(call.request_id), reply);
  const Tensor* positive = FindOutput(*result, pipeline::kIsPositiveOutput);
  const Tensor* probability = FindOutput(*result, pipeline::kPositiveProbabilityOutput);
  const Tensor* label = FindOutput(*result, pipeline::kLabelOutput);
  auto labels = label == nullptr ? absl::StatusOr<std::vector<std::string_view>>(absl::InternalError("no label"))
                                 : SplitBytesElements(label->data, 1, "label");
  if (positive == nullptr || probability == nullptr || !labels.ok() || positive->data.size() != 1 ||
      probability->data.size() != sizeof(float)) {
    return ReplyError(Api::kSae, absl::InternalError("the SAE model's response lacks its outputs"),
                      std::move(call.request_id), reply);
  }
  // The version that answered (a split, an override or a fallback may have
  // chosen another than the default): its threshold, caveat and counters.
  ModelHandle answered = call.routed_default;
  if (answered == nullptr || answered->name != result->model_name ||
      answered->version_string != result->model_version) {
    if (auto found = call.service->GetModel(result->model_name, result->model_version); found.ok()) {
      answered = *std::move(found);
    }
  }
  const pipeline::TextPipeline* text = answered != nullptr ? answered->text_pipeline.get() : nullptr;
  const bool is_sae = positive->data[0] != std::byte{0};
  const float p_serious = probability->values<float>()[0];
  const double threshold = text != nullptr ? text->options().threshold : 0.5;
  const int64_t windows = result->parameters.FindInt(pipeline::kWindowsParameter).value_or(1);
  const bool review = result->parameters.FindBool(pipeline::kReviewRecommendedParameter).value_or(false);
  if (answered != nullptr) {
    SaeVerdictCounters::Record(call.service->telemetry().metrics, answered->metrics,
                               is_sae   ? SaeVerdictCounters::kSerious
                               : review ? SaeVerdictCounters::kReview
                                        : SaeVerdictCounters::kNotSerious);
  }
  pipeline::Verdict verdict;
  verdict.request_id = call.request_id;
  verdict.patient_id = call.patient_id;
  verdict.model = result->model_name;
  verdict.version = result->model_version;
  verdict.model_fingerprint = answered != nullptr ? answered->files_fingerprint : 0;
  verdict.client_id = call.client_id;
  verdict.client_kind = call.client_kind;
  verdict.windows = windows;
  verdict.serious_probability = p_serious;
  verdict.threshold = threshold;
  verdict.is_sae = is_sae;
  verdict.review_recommended = review;
  verdict.latency = absl::Now() - call.arrival;

  // The answer, less what the sink adds; the client gets it once the sink
  // made the verdict durable (audit line, alert in the outbox).
  struct Answer {
    bool is_sae;
    float p_serious;
    double threshold;
    std::string label;
    bool review;
    int64_t windows;
    std::string patient_id;
    std::string model_version;
    std::optional<std::string> fallback_from;
    std::string request_id;
    std::string disclaimer;
  };
  Answer answer{is_sae, p_serious, threshold, std::string((*labels)[0]), review, windows, call.patient_id,
                StrCat(result->model_name, "/", result->model_version), std::nullopt, call.request_id,
                text != nullptr ? text->options().disclaimer : std::string()};
  if (auto from = result->parameters.FindString("fallback_from")) answer.fallback_from = std::string(*from);
  auto respond = [answer = std::move(answer), reply = std::move(reply)](pipeline::VerdictOutcome outcome) mutable {
    rapidjson::StringBuffer buffer;
    Writer w(buffer);
    w.StartObject();
    w.Key("isSAE");
    w.Bool(answer.is_sae);
    // The (calibrated) probability of the decision taken: of "serious" when
    // isSAE, of "not serious" otherwise.
    w.Key("confidence");
    w.Double(answer.is_sae ? answer.p_serious : 1.0 - answer.p_serious);
    w.Key("seriousProbability");
    w.Double(answer.p_serious);
    w.Key("threshold");
    w.Double(answer.threshold);
    w.Key("label");
    String(w, answer.label);
    w.Key("reviewRecommended");
    w.Bool(answer.review);
    w.Key("windows");
    w.Int64(answer.windows);
    w.Key("patientId");
    String(w, answer.patient_id);
    w.Key("modelVersion");
    String(w, answer.model_version);
    if (answer.fallback_from) {
      w.Key("fallbackFrom");
      String(w, *answer.fallback_from);
    }
    w.Key("requestId");
    String(w, answer.request_id);
    // Alerts on and the verdict serious: whether the physician's alert is
    // durably queued (docs/alerts.md), or why not.
    if (outcome.alert_queued || !outcome.alert_error.empty()) {
      w.Key("alertQueued");
      w.Bool(outcome.alert_queued);
      if (outcome.alert_queued) {
        w.Key("alertId");
        String(w, outcome.alert_id);
      } else {
        w.Key("alertError");
        String(w, outcome.alert_error);
      }
    }
    if (!answer.disclaimer.empty()) {
      w.Key("disclaimer");
      String(w, answer.disclaimer);
    }
    w.EndObject();
    std::move(reply)({200, buffer.GetString(), std::move(answer.request_id)});
  };
  pipeline::VerdictSink& sink = call.sink != nullptr ? *call.sink : pipeline::NoopVerdictSink::Instance();
  sink.OnVerdict(verdict, std::move(respond));
}

void HandleSae(InferenceService& service, const PipelineRouteOptions& options, std::string_view body,
               const PipelineContext& context, std::shared_ptr<CancellationFlag> cancellation,
               PipelineReply reply) {
  std::string request_id = RequestIdOf(context);
  auto parsed = ParseSaeRequest(body, options.sae_max_chars);
  if (!parsed.ok()) {
    RecordRefused(service, context, options.sae_model, request_id);
    return ReplyError(Api::kSae, parsed.status(), std::move(request_id), reply);
  }
  auto model = PipelineModel(service, options.sae_model, pipeline::TextPipeline::Task::kClassification,
                             "--sae-model");
  if (!model.ok()) {
    RecordRefused(service, context, options.sae_model, request_id);
    return ReplyError(Api::kSae, model.status(), std::move(request_id), reply);
  }
  auto request = TextRequest(*model, {parsed->report_text},
                             {pipeline::kIsPositiveOutput, pipeline::kPositiveProbabilityOutput,
                              pipeline::kLabelOutput},
                             context, request_id, std::move(cancellation));
  // Long reports are read whole, as windows; a patient stays on one version
  // of a split.
  request->parameters.Set(std::string(pipeline::kSlidingWindowParameter), true);
  request->parameters.Set(std::string(router::kStickyKeyParameter), parsed->patient_id);
  SaeCall call;
  call.patient_id = std::move(parsed->patient_id);
  call.request_id = std::move(request_id);
  call.client_id = std::string(context.client_id);
  call.client_kind = std::string(context.client_kind);
  call.routed_default = *std::move(model);
  call.arrival = request->arrival;
  call.sink = options.verdict_sink;
  call.service = &service;
  service.Infer(std::move(request),
                [reply = std::move(reply), call = std::move(call)](absl::StatusOr<InferResponse> result) mutable {
                  AnswerSae(call, std::move(result), reply);
                },
                context.record);
}

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

}  // namespace

absl::Status CheckDuplicateKeys(std::string_view body) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(body.data(), body.size(), true).get(doc) != simdjson::SUCCESS) return absl::OkStatus();
  simdjson::dom::object object;
  if (doc.get(object) != simdjson::SUCCESS) return absl::OkStatus();
  return DuplicateKeyIn(object);
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
  return NewRequestId();
}

namespace {

// Control characters (C0, DEL, C1) and the invisible ones that reorder or
// break lines where an id is shown (bidi overrides and isolates, line and
// paragraph separators, the BOM): an id a reviewer reads must look like what
// it is.
bool ForbiddenInId(char32_t c) {
  return c < 0x20 || (c >= 0x7F && c <= 0x9F) || c == 0x2028 || c == 0x2029 || (c >= 0x202A && c <= 0x202E) ||
         (c >= 0x2066 && c <= 0x2069) || c == 0x200E || c == 0x200F || c == 0xFEFF;
}

absl::Status ValidatePatientId(std::string_view id) {
  if (id.empty()) return absl::InvalidArgumentError("field 'patientId' must not be empty");
  const auto* p = reinterpret_cast<const unsigned char*>(id.data());
  size_t i = 0;
  size_t chars = 0;
  while (i < id.size()) {
    int len = 1;
    const char32_t c = p[i] < 0x80 ? p[i] : DecodeUtf8(p + i, &len);  // simdjson checked the UTF-8.
    if (ForbiddenInId(c)) {
      char code[16];
      std::snprintf(code, sizeof(code), "U+%04X", static_cast<unsigned>(c));
      return absl::InvalidArgumentError(StrCat("field 'patientId' holds the control or formatting character ",
                                               code, " at character ", chars,
                                               "; use printable characters only"));
    }
    ++chars;
    if (chars > kMaxPatientIdChars) {
      return absl::InvalidArgumentError(
          StrCat("field 'patientId' is longer than ", kMaxPatientIdChars, " characters"));
    }
    i += static_cast<size_t>(len > 0 ? len : 1);
  }
  return absl::OkStatus();
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
  RETURN_IF_ERROR(ValidatePatientId(request.patient_id));
  if (request.report_text.find_first_not_of(" \t\r\n") == std::string::npos) {
    return absl::InvalidArgumentError("field 'reportText' must not be empty");
  }
  const size_t chars = Utf8Chars(request.report_text);
  if (chars > max_chars) {
    return absl::OutOfRangeError(StrCat("field 'reportText' has ", chars, " characters; the limit is ", max_chars,
                                        " (--sae-max-report-chars): split the report"));
  }
  return request;
}

void HandlePipelineRoute(InferenceService& service, const PipelineRouteOptions& options, RouteId route,
                         std::string_view body, const PipelineContext& context,
                         std::shared_ptr<CancellationFlag> cancellation, PipelineReply reply) {
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
