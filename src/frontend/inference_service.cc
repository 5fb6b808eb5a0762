// SPDX-License-Identifier: Apache-2.0
#include "frontend/inference_service.h"

#include <algorithm>
#include <cstdio>

#include "absl/random/random.h"
#include "core/status.h"
#include "core/strings.h"
#include "frontend/text_inference.h"
#include "pipeline/text_pipeline.h"
#include "router/version_router.h"

namespace ortserve::frontend {
namespace {

std::string ShapeString(const Shape& shape) { return ShapeToString(shape); }

bool ShapeMatches(const Shape& served, const Shape& actual) {
  if (served.size() != actual.size()) return false;
  for (size_t i = 0; i < served.size(); ++i) {
    if (served[i] != -1 && served[i] != actual[i]) return false;
  }
  return true;
}

}  // namespace

std::string_view InferenceService::ServerVersion() { return "0.1.0"; }

const std::vector<std::string>& InferenceService::Extensions() {
  static const std::vector<std::string> extensions = {
      "classification", "model_repository", "schedule_policy", "model_configuration",
      "binary_tensor_data", "parameters", "statistics"};
  return extensions;
}

absl::StatusOr<ModelMetadata> InferenceService::GetModelMetadata(std::string_view name,
                                                                 std::string_view version) const {
  ASSIGN_OR_RETURN(ModelHandle model, GetModel(name, version));
  ModelMetadata metadata;
  metadata.name = model->name;
  metadata.platform = model->config.platform();
  metadata.last_load_error = options_.models->LastLoadError(model->name);
  metadata.versions = options_.models->ReadyVersions(model->name);
  if (model->text_pipeline != nullptr) {  // The text signature, not the model's own tensors.
    for (const auto& spec : model->text_pipeline->text_inputs()) {
      metadata.inputs.push_back({spec.name, spec.type, spec.dims});
    }
    for (const auto& spec : model->text_pipeline->text_outputs()) {
      metadata.outputs.push_back({spec.name, spec.type, spec.dims});
    }
    return metadata;
  }
  for (const auto& input : model->config.input()) {
    metadata.inputs.push_back({input.name(), *DataTypeFromConfigName(config::DataType_Name(input.data_type())),
                               repository::ServedShape(model->config, input.dims())});
  }
  for (const auto& output : model->config.output()) {
    metadata.outputs.push_back({output.name(),
                                *DataTypeFromConfigName(config::DataType_Name(output.data_type())),
                                repository::ServedShape(model->config, output.dims())});
  }
  return metadata;
}

absl::Status InferenceService::ValidateRequest(const repository::ModelVersion& model, InferRequest& request) {
  if (model.text_pipeline != nullptr) return ValidateTextRequest(model, request);
  const auto& config = model.config;
  int64_t batch = -1;
  for (size_t i = 0; i < request.inputs.size(); ++i) {
    const Tensor& tensor = request.inputs[i];
    const config::ModelInput* declared = nullptr;
    for (const auto& input : config.input()) {
      if (input.name() == tensor.name) declared = &input;
    }
    if (declared == nullptr) {
      return absl::InvalidArgumentError(
          StrCat("unexpected input '", tensor.name, "' for model '", model.name, "'"));
    }
    for (size_t j = 0; j < i; ++j) {
      if (request.inputs[j].name == tensor.name) {
        return absl::InvalidArgumentError(StrCat("input '", tensor.name, "' appears more than once"));
      }
    }
    const auto want_type = DataTypeFromConfigName(config::DataType_Name(declared->data_type()));
    if (want_type != tensor.type) {
      return absl::InvalidArgumentError(StrCat("input '", tensor.name, "' has datatype ",
                                               DataTypeName(tensor.type), ", model '", model.name,
                                               "' expects ", DataTypeName(want_type.value_or(DataType::kInvalid))));
    }
    const Shape served = repository::ServedShape(config, declared->dims());
    if (!ShapeMatches(served, tensor.shape)) {
      return absl::InvalidArgumentError(StrCat("input '", tensor.name, "' has shape ", ShapeString(tensor.shape),
                                               ", model '", model.name, "' expects ", ShapeString(served)));
    }
    if (config.max_batch_size() > 0) {
      const int64_t rows = tensor.shape[0];
      if (rows < 1 || rows > config.max_batch_size()) {
        return absl::InvalidArgumentError(StrCat("input '", tensor.name, "' has batch size ", rows,
                                                 ", model '", model.name, "' accepts 1 to ",
                                                 config.max_batch_size()));
      }
      if (batch >= 0 && rows != batch) {
        return absl::InvalidArgumentError(StrCat("input '", tensor.name, "' has batch size ", rows,
                                                 " but other inputs have ", batch));
      }
      batch = rows;
    }
    RETURN_IF_ERROR(ValidateTensorBytes(tensor));
  }
  for (const auto& input : config.input()) {
    if (input.optional()) continue;
    if (request.FindInput(input.name()) == nullptr) {
      return absl::InvalidArgumentError(
          StrCat("model '", model.name, "' expects input '", input.name(), "', which the request lacks"));
    }
  }
  for (const auto& output : request.outputs) {
    bool known = false;
    for (const auto& declared : config.output()) known |= declared.name() == output.name;
    if (!known) {
      return absl::InvalidArgumentError(
          StrCat("unexpected requested output '", output.name, "' for model '", model.name, "'"));
    }
  }
  return absl::OkStatus();
}

bool InferenceService::Ready() const {
  if (!ready_.load(std::memory_order_acquire)) return false;
  for (const std::string& name : options_.required_models) {
    if (!GetModel(name, "").ok()) return false;
  }
  return true;
}

void InferenceService::Infer(std::unique_ptr<InferRequest> request, InferCallback done,
                             observability::RequestRecord* record) {
  if (record != nullptr) {
    record->MarkInference();
    record->SetRequestId(request->id);
  }
  if (draining()) {
    return std::move(done)(absl::UnavailableError(
        StrCat("server is shutting down; model '", request->model_name, "' takes no new requests")));
  }
  // In flight (the shutdown drain waits for it) until its answer has been
  // handed over, whichever versions or models served it.
  inflight_.fetch_add(1, std::memory_order_acq_rel);
  Pass pass;
  pass.call = AcquireCall(std::move(done));
  if (request->arrival == absl::InfinitePast()) request->arrival = options_.clock->Now();
  // Sampled requests carry their span down, for the tokenization, queue and
  // batch spans; unsampled ones carry an empty trace (nothing is recorded).
  if (record != nullptr && record->traced()) request->trace = record->Trace();
  Route(std::move(request),
        [this, call = pass.call](absl::StatusOr<InferResponse> result) { Finish(call, std::move(result)); }, record,
        std::move(pass));
}

InferenceService::Call* InferenceService::AcquireCall(InferCallback done) {
  Call* call;
  {
    absl::MutexLock lock(&calls_mu_);
    call = free_calls_;
    if (call != nullptr) {
      free_calls_ = call->next_free;
    } else {
      call = calls_.emplace_back(std::make_unique<Call>()).get();
    }
  }
  call->done = std::move(done);
  return call;
}

void InferenceService::Finish(Call* call, absl::StatusOr<InferResponse> result) {
  {
    InferCallback done = std::move(call->done);
    ModelHandle model = std::move(call->model);  // Released after `done` returns.
    if (call->pending != nullptr) call->pending->RequestAnswered();
    call->pending = nullptr;
    {
      absl::MutexLock lock(&calls_mu_);
      call->next_free = free_calls_;
      free_calls_ = call;
    }
    std::move(done)(std::move(result));
  }
  // Only now, with the callback and what it captured gone (a front end's
  // connection, say), is the request over: a drain that sees the count reach
  // zero may destroy the front end.
  inflight_.fetch_sub(1, std::memory_order_acq_rel);
}

namespace {

// A uniform draw in [0, 1) without a shared lock.
double UniformDraw() {
  thread_local absl::InsecureBitGen gen;
  return absl::Uniform(gen, 0.0, 1.0);
}

// The errors a fallback answers for: the model failed, timed out or could
// not take the request. A bad request or a cancelled client is not rescued.
bool FallbackCovers(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kDataLoss:
      return true;
    default:
      return false;
  }
}

// The response cache keys a version by its number and a digest of its files,
// so a reload with new weights never answers from the old weights' entries.
struct CacheVersion {
  char text[48];
  size_t size;
  std::string_view view() const { return {text, size}; }
};
CacheVersion CacheVersionOf(const repository::ModelVersion& model) {
  CacheVersion v;
  const int n = std::snprintf(v.text, sizeof(v.text), "%lld#%016llx", static_cast<long long>(model.version),
                              static_cast<unsigned long long>(model.files_fingerprint));
  v.size = n > 0 ? std::min(static_cast<size_t>(n), sizeof(v.text) - 1) : 0;
  return v;
}

}  // namespace

void InferenceService::Route(std::unique_ptr<InferRequest> request, InferCallback done,
                             observability::RequestRecord* record, Pass pass) {
  repository::ModelManager& models = *options_.models;
  const std::string& name = request->model_name;
  absl::StatusOr<ModelHandle> model = absl::NotFoundError("");
  router::RouteReason reason = router::RouteReason::kDefault;
  // An explicit version or the override header wins; else the default
  // version, whose config says whether a split picks another.
  const std::optional<router::NamedVersion> named = router::RequestedVersion(*request);
  if (named) {
    reason = named->reason;
    model = models.GetModel(name, named->text);
  } else {
    model = models.GetModel(name, "");
    if (model.ok() && (*model)->config.routing().split_size() > 0) {
      const config::ModelRouting& routing = (*model)->config.routing();
      const double draw = UniformDraw();
      // First as if every split version were ready (the common case: one
      // more lookup); a version that is not is left out on the second try.
      int64_t unready = 0;
      for (int attempt = 0; attempt < 2; ++attempt) {
        router::Resolution picked = router::ResolveVersion(routing, *request, draw, [&](int64_t v) {
          if (attempt == 0) return true;
          return v != unready && models.GetModel(name, std::to_string(v)).ok();
        });
        if (picked.choice.version <= 0) break;
        if (picked.choice.version == (*model)->version) {
          reason = picked.choice.reason;
          break;
        }
        auto chosen = models.GetModel(name, std::to_string(picked.choice.version));
        if (chosen.ok()) {
          model = std::move(chosen);
          reason = picked.choice.reason;
          break;
        }
        unready = picked.choice.version;
      }
    }
  }
  if (!model.ok() && model.status().code() == absl::StatusCode::kUnavailable && !pass.lazy_waited) {
    // A lazy model loads on its first request: wait for it (off this thread),
    // then route again. Any other unavailable model answers at once.
    auto request_box = std::make_shared<std::unique_ptr<InferRequest>>(std::move(request));
    auto done_box = std::make_shared<InferCallback>(std::move(done));
    auto pass_box = std::make_shared<Pass>(std::move(pass));
    const std::string version(named ? named->text : std::string_view());
    models.AcquireModelAsync(name, version, [this, request_box, done_box, pass_box,
                                             record](absl::StatusOr<ModelHandle> acquired) {
      pass_box->lazy_waited = true;
      if (!acquired.ok()) pass_box->lazy_error = acquired.status();
      Route(std::move(*request_box), std::move(*done_box), record, std::move(*pass_box));
    });
    return;
  }
  if (!model.ok() && !pass.lazy_error.ok()) model = pass.lazy_error;
  if (!model.ok() && pass.fallback && FallbackCovers(model.status().code())) {
    // The version asked for cannot serve: the model's fallback (from the
    // version that would serve by default) answers instead.
    if (auto fallback_of = models.GetModel(name, ""); fallback_of.ok() &&
                                                    !(*fallback_of)->config.routing().fallback_model().empty()) {
      return Fallback(*fallback_of, std::shared_ptr<InferRequest>(std::move(request)), model.status(),
                      std::move(done), record);
    }
  }
  if (!model.ok()) {
    if (record != nullptr && options_.telemetry.metrics != nullptr && pass.fallback_from.empty()) {
      record->SetModel(options_.telemetry.metrics->Unresolved());
    }
    return std::move(done)(model.status());
  }
  Dispatch(*std::move(model), reason, std::move(request), std::move(done), record, std::move(pass));
}

void InferenceService::Dispatch(ModelHandle model, router::RouteReason reason, std::unique_ptr<InferRequest> request,
                                InferCallback done, observability::RequestRecord* record, Pass pass) {
  observability::VersionMetrics* metrics = model->metrics;
  if (record != nullptr && pass.fallback_from.empty()) record->SetModel(metrics);
  model->Touch(request->arrival);  // Idle unload and LRU eviction of lazy models.
  if (metrics != nullptr && !pass.mirror) metrics->RecordRoute(static_cast<size_t>(reason));
  if (absl::Status status = ValidateRequest(*model, *request); !status.ok()) {
    model->stats->fail.Record(absl::ZeroDuration());
    return std::move(done)(std::move(status));
  }
  const config::ModelConfig& config = model->config;
  // Where the answer goes straight back to the client (no wrapper below sees
  // it first): that Call then also holds the version and settles the
  // pending gauge, so the common path wraps `done` in nothing.
  Call* direct = pass.call;

  // The fallback pass says so in the response.
  if (!pass.fallback_from.empty()) {
    if (metrics != nullptr) metrics->RecordFallback();
    direct = nullptr;
    done = [from = std::move(pass.fallback_from), why = std::move(pass.fallback_reason),
            done = std::move(done)](absl::StatusOr<InferResponse> result) mutable {
      if (result.ok()) {
        result->parameters.Set("fallback_from", std::move(from));
        result->parameters.Set("fallback_reason", std::move(why));
      }
      std::move(done)(std::move(result));
    };
  }

  // Response cache: a hit answers at once, without the scheduler.
  router::ResponseCache* cache = options_.response_cache;
  const bool cached = pass.cache && cache != nullptr && config.response_cache().enable();
  router::CacheKey key;
  if (cached) {
    const absl::Time lookup_start = options_.clock->Now();
    key = cache->ComputeKey(model->name, CacheVersionOf(*model).view(), *request);
    std::optional<InferResponse> hit = cache->Lookup(key);
    if (metrics != nullptr) metrics->RecordCacheLookup(hit.has_value());
    // Triton's statistics count lookups too, with the time the lookup took.
    (hit ? model->stats->cache_hit : model->stats->cache_miss).Record(options_.clock->Now() - lookup_start);
    if (hit) {
      hit->id = std::move(request->id);  // The request ends here.
      hit->model_version = model->version_string;
      return std::move(done)(*std::move(hit));
    }
  }

  // Fallback: keep what is needed to send the request again (the tensors are
  // views; the payload keeps their bytes alive).
  if (pass.fallback && !config.routing().fallback_model().empty()) {
    auto saved = std::make_shared<InferRequest>();
    saved->model_name = request->model_name;
    saved->id = request->id;
    saved->parameters = request->parameters;
    saved->inputs = request->inputs;
    saved->input_parameters = request->input_parameters;
    saved->outputs = request->outputs;
    saved->binary_data_output = request->binary_data_output;
    saved->priority = request->priority;
    saved->arrival = request->arrival;
    saved->cancellation = request->cancellation;
    saved->payload = request->payload;
    saved->trace = request->trace;
    direct = nullptr;
    done = [this, model, saved = std::move(saved), record, done = std::move(done)](
               absl::StatusOr<InferResponse> result) mutable {
      if (result.ok() || !FallbackCovers(result.status().code()) ||
          (saved->cancellation != nullptr && saved->cancellation->cancelled())) {
        return std::move(done)(std::move(result));
      }
      Fallback(model, std::move(saved), result.status(), std::move(done), record);
    };
  }

  // Shadow: compare the primary's own answer (before any fallback). The copy
  // is queued after the primary, so it never goes ahead of it.
  ShadowLaunch shadow;
  if (pass.shadow) {
    shadow = MaybeShadow(model, *request);
    if (shadow.compare) {
      direct = nullptr;
      done = [compare = std::move(shadow.compare), done = std::move(done)](
                 absl::StatusOr<InferResponse> result) mutable {
        compare(result);
        std::move(done)(std::move(result));
      };
    }
  }

  if (cached) {
    direct = nullptr;
    done = [cache, key, metrics = options_.telemetry.metrics, done = std::move(done)](
               absl::StatusOr<InferResponse> result) mutable {
      if (result.ok()) {
        cache->Insert(key, *result);
        if (metrics != nullptr) {
          const auto stats = cache->GetStats();
          metrics->SetCacheUsage(stats.bytes, stats.entries, stats.evictions);
        }
      }
      std::move(done)(std::move(result));
    };
  }

  // Admitted: counted as pending on this version (the autoscaling signal)
  // until its answer has been handed over.
  if (metrics != nullptr) metrics->RequestAdmitted();
  if (direct != nullptr) {
    direct->pending = metrics;
    direct->model = model;  // The version outlives the request.
  } else {
    done = [metrics, done = std::move(done)](absl::StatusOr<InferResponse> result) mutable {
      if (metrics != nullptr) metrics->RequestAnswered();
      std::move(done)(std::move(result));
    };
  }
  if (model->text_pipeline != nullptr) {
    if (record != nullptr && record->traced()) {  // The request span's llm.request.input_tokens.
      done = [record, done = std::move(done)](absl::StatusOr<InferResponse> result) mutable {
        if (result.ok()) {
          if (auto tokens = result->parameters.FindInt(kTokenCountParameter)) record->SetInputTokens(*tokens);
        }
        std::move(done)(std::move(result));
      };
    }
    InferText(std::move(model), std::move(request), options_.tokenization_pool, std::move(done));
  } else if (direct != nullptr) {
    model->scheduler->Enqueue(std::move(request), std::move(done));  // `direct` holds the version.
  } else {
    scheduler::Scheduler* scheduler = model->scheduler.get();
    // The callback holds the handle so the version outlives the request.
    scheduler->Enqueue(std::move(request),
                       [handle = std::move(model), done = std::move(done)](
                           absl::StatusOr<InferResponse> result) mutable { std::move(done)(std::move(result)); });
  }
  if (shadow.launch) std::move(shadow.launch)();
}

InferenceService::InferenceService(Options options) : options_(std::move(options)) {
  if (!options_.run_comparison) {
    comparer_ = std::make_unique<router::ComparisonWorker>();
    options_.run_comparison = [worker = comparer_.get()](absl::AnyInvocable<void() &&> task) {
      worker->Submit(std::move(task));
    };
  }
}

InferenceService::ShadowState& InferenceService::ShadowStateFor(const std::string& model) {
  absl::MutexLock lock(&shadow_mu_);
  auto& slot = shadow_states_[model];
  if (!slot) slot = std::make_unique<ShadowState>();
  return *slot;
}

namespace {

// The two answers of a mirrored request; whichever arrives second compares.
struct ShadowPair {
  absl::Mutex mu;
  bool primary_done ABSL_GUARDED_BY(mu) = false;
  bool shadow_done ABSL_GUARDED_BY(mu) = false;
  bool primary_ok ABSL_GUARDED_BY(mu) = false;
  bool shadow_ok ABSL_GUARDED_BY(mu) = false;
  // Views sharing the responses' holders: no bytes are copied.
  std::vector<Tensor> primary ABSL_GUARDED_BY(mu);
  std::vector<Tensor> shadow ABSL_GUARDED_BY(mu);
  observability::ShadowMetrics* metrics = nullptr;
  router::ShadowLimiter* limiter = nullptr;

  void Finish() {
    // Both sides are in; nothing else touches the pair now.
    std::vector<Tensor> p, s;
    bool p_ok, s_ok;
    {
      absl::MutexLock lock(&mu);
      p.swap(primary);
      s.swap(shadow);
      p_ok = primary_ok;
      s_ok = shadow_ok;
    }
    if (metrics != nullptr) {
      using Result = observability::ShadowMetrics::Result;
      if (!p_ok) {
        metrics->Record(Result::kPrimaryFailed);
      } else if (!s_ok) {
        metrics->Record(Result::kShadowFailed);
      } else {
        const router::OutputComparison c = router::CompareOutputs(p, s);
        metrics->Record(Result::kCompared);
        metrics->RecordComparison(c.label_rows, c.label_agreements, c.max_abs_difference);
      }
    }
    limiter->Release();
  }
};

}  // namespace

InferenceService::ShadowLaunch InferenceService::MaybeShadow(const ModelHandle& model, const InferRequest& request) {
  const config::ModelRouting& routing = model->config.routing();
  if (!routing.has_shadow()) return {};
  const config::ModelShadow& policy = routing.shadow();
  if (policy.fraction() < 1 && UniformDraw() >= policy.fraction()) return {};
  const std::string& target_name = policy.model().empty() ? model->name : policy.model();
  const std::string target_version = policy.version() > 0 ? std::to_string(policy.version()) : std::string();
  observability::Metrics* metrics = options_.telemetry.metrics;
  auto target = options_.models->GetModel(target_name, target_version);
  observability::ShadowMetrics* shadow_metrics =
      metrics == nullptr
          ? nullptr
          : metrics->ForShadow(model->name, target_name, target.ok() ? (*target)->version_string : target_version);
  ShadowState& state = ShadowStateFor(model->name);
  const uint32_t limit = policy.max_in_flight() > 0 ? policy.max_in_flight() : 64;
  if (!target.ok() || draining() || !state.limiter.TryAcquire(limit)) {
    if (shadow_metrics != nullptr) shadow_metrics->Record(observability::ShadowMetrics::Result::kDropped);
    return {};
  }
  auto pair = std::make_shared<ShadowPair>();
  pair->metrics = shadow_metrics;
  pair->limiter = &state.limiter;
  std::unique_ptr<InferRequest> copy = router::CopyForShadow(request);
  copy->model_name = target_name;
  copy->model_version = (*target)->version_string;
  copy->arrival = options_.clock->Now();
  // Counted in flight so that a shutdown drain waits for it.
  inflight_.fetch_add(1, std::memory_order_acq_rel);
  ShadowLaunch launch;
  launch.launch = [this, pair, target = *std::move(target), copy = std::move(copy)]() mutable {
    Pass pass;
    pass.shadow = false;
    pass.fallback = false;
    pass.cache = false;
    pass.mirror = true;
    Dispatch(std::move(target), router::RouteReason::kExplicit, std::move(copy),
             [this, pair](absl::StatusOr<InferResponse> result) {
               bool finish;
               {
                 absl::MutexLock lock(&pair->mu);
                 pair->shadow_done = true;
                 pair->shadow_ok = result.ok();
                 if (result.ok()) pair->shadow = std::move(result->outputs);
                 finish = pair->primary_done;
               }
               if (finish) options_.run_comparison([pair] { pair->Finish(); });
               inflight_.fetch_sub(1, std::memory_order_acq_rel);
             },
             nullptr, std::move(pass));
  };
  // On the primary's answer path: it keeps views of the answer (no bytes
  // copied) and leaves the comparison to run_comparison, off that path.
  launch.compare = [this, pair](const absl::StatusOr<InferResponse>& result) {
    bool finish;
    {
      absl::MutexLock lock(&pair->mu);
      pair->primary_done = true;
      pair->primary_ok = result.ok();
      if (result.ok()) pair->primary = result->outputs;
      finish = pair->shadow_done;
    }
    if (finish) options_.run_comparison([pair] { pair->Finish(); });
  };
  return launch;
}

void InferenceService::Fallback(const ModelHandle& primary, std::shared_ptr<InferRequest> saved, absl::Status error,
                                InferCallback done, observability::RequestRecord* record) {
  const config::ModelRouting& routing = primary->config.routing();
  auto request = std::make_unique<InferRequest>(std::move(*saved));
  request->model_name = routing.fallback_model();
  request->model_version = routing.fallback_version() > 0 ? std::to_string(routing.fallback_version()) : std::string();
  // The last resort is not held to the queue timeout the primary missed.
  request->deadline = absl::InfiniteFuture();
  request->headers = nullptr;
  Pass pass;
  pass.shadow = false;
  pass.fallback = false;
  pass.fallback_from = StrCat(primary->name, ":", primary->version_string);
  pass.fallback_reason = std::string(ToStd(error.message()));
  Route(std::move(request), [error = std::move(error), done = std::move(done)](
                                absl::StatusOr<InferResponse> result) mutable {
    // When the fallback cannot answer either, the client hears the primary's error.
    if (!result.ok()) return std::move(done)(std::move(error));
    std::move(done)(std::move(result));
  }, record, std::move(pass));
}

}  // namespace ortserve::frontend
