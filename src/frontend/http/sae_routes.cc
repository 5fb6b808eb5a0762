// SPDX-License-Identifier: Apache-2.0
// POST /api/v1/sae/analyze: the seed's SAE contract (docs/pipeline.md).
#include <array>
#include <charconv>
#include <cstdio>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "core/status.h"
#include "core/strings.h"
#include "core/utf8.h"
#include "frontend/http/pipeline_routes.h"
#include "frontend/http/pipeline_routes_internal.h"
#include "observability/metrics.h"
#include "pipeline/text_inference.h"
#include "pipeline/verdict_sink.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/registry.h"
#include "router/version_router.h"

namespace ortserve::frontend {
namespace pipeline_internal {
namespace {

// A float as the double of its shortest decimal form, so that JSON shows the
// threshold a config wrote as 0.05 (not 0.05000000074505806) and a
// probability with the digits a float holds.
double AsWritten(float value) {
  char digits[32];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, value);
  double out = value;
  if (ec == std::errc()) std::from_chars(digits, end, out);
  return out;
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
  const double threshold = AsWritten(text != nullptr ? text->options().threshold : 0.5f);
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
    w.Double(AsWritten(answer.is_sae ? answer.p_serious : 1.0f - answer.p_serious));
    w.Key("seriousProbability");
    w.Double(AsWritten(answer.p_serious));
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

}  // namespace

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

}  // namespace pipeline_internal

namespace {

size_t Utf8Chars(std::string_view text) {
  size_t n = 0;
  for (char c : text) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80 ? 1 : 0;
  return n;
}

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
  auto object = pipeline_internal::ParseObject(parser, body, "SAE analyze");
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

}  // namespace ortserve::frontend
