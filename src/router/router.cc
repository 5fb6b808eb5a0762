// SPDX-License-Identifier: Apache-2.0
#include "router/router.h"

#include <algorithm>
#include <cstdio>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

#include "absl/random/random.h"
#include "absl/strings/cord.h"
#include "core/strings.h"
#include "observability/metrics.h"
#include "pipeline/text_inference.h"
#include "repository/model_manager.h"
#include "router/response_cache.h"
#include "router/shadow_mirror.h"

namespace ortserve::router {
namespace {

using repository::ModelHandle;

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

// A breaker's settings from the model's config (zero fields: the defaults).
BreakerSettings BreakerSettingsOf(const config::ModelCircuitBreaker& config) {
  BreakerSettings settings;
  if (config.window_ms() > 0) settings.window = absl::Milliseconds(config.window_ms());
  if (config.min_requests() > 0) settings.min_requests = config.min_requests();
  if (config.error_rate() > 0) settings.error_rate = config.error_rate();
  if (config.slow_call_ms() > 0) settings.slow_call = absl::Milliseconds(config.slow_call_ms());
  if (config.slow_call_rate() > 0) settings.slow_call_rate = config.slow_call_rate();
  if (config.open_ms() > 0) settings.open = absl::Milliseconds(config.open_ms());
  if (config.half_open_requests() > 0) settings.half_open_requests = config.half_open_requests();
  return settings;
}

// What an answer says about the version that gave it. A deadline that
// passed is the client's choice as much as the version's (a client could
// open the breaker for everyone with 1 us timeouts): slowness is judged by
// slow_call_ms instead. Bad requests and cancellations say nothing.
CircuitBreaker::Outcome BreakerOutcome(const absl::Status& status) {
  if (status.ok()) return CircuitBreaker::Outcome::kSuccess;
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kDataLoss:
    case absl::StatusCode::kAborted:
      return CircuitBreaker::Outcome::kFailure;
    default:
      return CircuitBreaker::Outcome::kIgnored;
  }
}

}  // namespace

Router::Router(Options options) : options_(std::move(options)) {
  shadow_ = std::make_unique<ShadowMirror>(this);
  if (options_.metrics != nullptr) {
    prometheus::Registry& registry = *options_.metrics->registry();
    breaker_state_ = &prometheus::BuildGauge()
                          .Name("ortserve_circuit_breaker_state")
                          .Help("Circuit breaker of a model version: 0 closed, 1 open, 2 half-open.")
                          .Register(registry);
    breaker_transitions_ = &prometheus::BuildCounter()
                                .Name("ortserve_circuit_breaker_transitions_total")
                                .Help("Circuit breaker state changes of a model version, by the state entered.")
                                .Register(registry);
    breaker_rejected_ = &prometheus::BuildCounter()
                             .Name("ortserve_circuit_breaker_rejected_total")
                             .Help("Requests not sent to a model version because its circuit breaker was open "
                                   "(answered by the fallback model, or refused with 503).")
                             .Register(registry);
  }
}

CircuitBreaker* Router::BreakerFor(const ModelHandle& model) {
  {
    absl::ReaderMutexLock lock(&breakers_mu_);
    auto it = breakers_.find(model.get());
    if (it != breakers_.end() && !it->second.version.expired()) return it->second.breaker.get();
  }
  absl::MutexLock lock(&breakers_mu_);
  // Released versions' entries go first: their addresses may be reused.
  for (auto it = breakers_.begin(); it != breakers_.end();) {
    if (it->second.version.expired()) {
      breakers_.erase(it++);
    } else {
      ++it;
    }
  }
  BreakerEntry& entry = breakers_[model.get()];
  if (entry.breaker) return entry.breaker.get();
  entry.version = model;
  prometheus::Gauge* gauge = nullptr;
  CircuitBreaker::Transition on_transition;
  const std::string name = model->name;
  const std::string version = model->version_string;
  if (breaker_state_ != nullptr) {
    gauge = &breaker_state_->Add({{"model", name}, {"version", version}});
    gauge->Set(0);
  }
  on_transition = [gauge, transitions = breaker_transitions_, name, version](CircuitBreaker::State from,
                                                                             CircuitBreaker::State to) {
    if (gauge != nullptr) gauge->Set(static_cast<double>(static_cast<int>(to)));
    if (transitions != nullptr) {
      transitions->Add({{"model", name}, {"version", version}, {"to", CircuitBreaker::StateName(to)}}).Increment();
    }
    if (to == CircuitBreaker::State::kOpen) {
      spdlog::warn("model '{}' version {}: circuit breaker {} -> open", name, version,
                   CircuitBreaker::StateName(from));
    } else {
      spdlog::info("model '{}' version {}: circuit breaker {} -> {}", name, version,
                   CircuitBreaker::StateName(from), CircuitBreaker::StateName(to));
    }
  };
  entry.breaker = std::make_unique<CircuitBreaker>(BreakerSettingsOf(model->config.routing().circuit_breaker()),
                                                   options_.clock, std::move(on_transition));
  return entry.breaker.get();
}

void Router::RecordBreaker(CircuitBreaker* breaker, bool probe, const absl::Status& status, absl::Duration latency) {
  breaker->Record(probe, BreakerOutcome(status), latency);
}

Router::~Router() = default;

void Router::Route(std::unique_ptr<InferRequest> request, InferCallback done, observability::RequestRecord* record,
                   AnswerSlot* slot) {
  Pass pass;
  pass.slot = slot;
  RouteWith(std::move(request), std::move(done), record, std::move(pass));
}

void Router::RouteWith(std::unique_ptr<InferRequest> request, InferCallback done,
                       observability::RequestRecord* record, Pass pass) {
  repository::ModelProvider& models = *options_.models;
  const std::string& name = request->model_name;
  absl::StatusOr<ModelHandle> model = absl::NotFoundError("");
  RouteReason reason = RouteReason::kDefault;
  // An explicit version or the override header wins; else the default
  // version, whose config says whether a split picks another.
  const std::optional<NamedVersion> named = RequestedVersion(*request);
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
        Resolution picked = ResolveVersion(routing, *request, draw, [&](int64_t v) {
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
    const std::string model_name = (*request_box)->model_name;
    models.AcquireModelAsync(model_name, version, [this, request_box, done_box, pass_box,
                                                   record](absl::StatusOr<ModelHandle> acquired) {
      pass_box->lazy_waited = true;
      if (!acquired.ok()) pass_box->lazy_error = acquired.status();
      RouteWith(std::move(*request_box), std::move(*done_box), record, std::move(*pass_box));
    });
    return;
  }
  if (!model.ok() && !pass.lazy_error.ok()) model = pass.lazy_error;
  if (!model.ok() && pass.fallback && FallbackCovers(model.status().code())) {
    // The version asked for cannot serve: the model's fallback (from the
    // version that would serve by default) answers instead.
    if (auto fallback_of = models.GetModel(name, "");
        fallback_of.ok() && !(*fallback_of)->config.routing().fallback_model().empty()) {
      return Fallback(*fallback_of, std::shared_ptr<InferRequest>(std::move(request)), model.status(),
                      std::move(done), record);
    }
  }
  if (!model.ok()) {
    if (record != nullptr && options_.metrics != nullptr && pass.fallback_from.empty()) {
      record->SetModel(options_.metrics->Unresolved());
    }
    return std::move(done)(model.status());
  }
  if (!pass.mirror && (*model)->config.routing().circuit_breaker().enable()) {
    CircuitBreaker* breaker = BreakerFor(*model);
    const CircuitBreaker::Decision decision = breaker->Allow();
    if (!decision.allowed) {
      const ModelHandle& version = *model;
      if (breaker_rejected_ != nullptr) {
        breaker_rejected_->Add({{"model", version->name}, {"version", version->version_string}}).Increment();
      }
      const int64_t retry = std::max<int64_t>(
          1, absl::ToInt64Seconds(absl::Ceil(decision.retry_after, absl::Seconds(1))));
      absl::Status open = absl::UnavailableError(StrCat("model '", version->name, "' version ",
                                                        version->version_string,
                                                        " is failing: its circuit breaker is open; retry in ", retry,
                                                        " s"));
      open.SetPayload(repository::kRetryAfterPayload, absl::Cord(std::to_string(retry)));
      if (record != nullptr && pass.fallback_from.empty()) record->SetModel(version->metrics);
      if (pass.fallback && !version->config.routing().fallback_model().empty()) {
        return Fallback(version, std::shared_ptr<InferRequest>(std::move(request)), std::move(open), std::move(done),
                        record);
      }
      return std::move(done)(std::move(open));
    }
    pass.breaker = breaker;
    pass.probe = decision.probe;
  }
  Dispatch(*std::move(model), reason, std::move(request), std::move(done), record, std::move(pass));
}

void Router::Dispatch(ModelHandle model, RouteReason reason, std::unique_ptr<InferRequest> request,
                      InferCallback done, observability::RequestRecord* record, Pass pass) {
  observability::VersionMetrics* metrics = model->metrics;
  if (record != nullptr && pass.fallback_from.empty()) record->SetModel(metrics);
  model->Touch(request->arrival);  // Idle unload and LRU eviction of lazy models.
  if (metrics != nullptr && !pass.mirror) metrics->RecordRoute(static_cast<size_t>(reason));
  if (absl::Status status = options_.executor->Validate(*model, *request); !status.ok()) {
    model->stats->fail.Record(absl::ZeroDuration());
    if (pass.breaker != nullptr) pass.breaker->Record(pass.probe, CircuitBreaker::Outcome::kIgnored, absl::ZeroDuration());
    return std::move(done)(std::move(status));
  }
  const config::ModelConfig& config = model->config;
  // Where the answer goes straight back to the client (no wrapper below sees
  // it first): that slot then also holds the version and settles the
  // pending gauge, so the common path wraps `done` in nothing.
  AnswerSlot* direct = pass.slot;

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
  ResponseCache* cache = options_.response_cache;
  const bool cached = pass.cache && cache != nullptr && config.response_cache().enable();
  CacheKey key;
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
      if (pass.breaker != nullptr) {
        pass.breaker->Record(pass.probe, CircuitBreaker::Outcome::kIgnored, absl::ZeroDuration());
      }
      return std::move(done)(*std::move(hit));
    }
  }

  // Fallback: keep what is needed to send the request again (the tensors are
  // views; the payload keeps their bytes alive).
  if (pass.fallback && !config.routing().fallback_model().empty()) {
    auto saved = std::make_shared<InferRequest>(request->Clone());
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
  ShadowMirror::Launch shadow;
  if (pass.shadow) {
    shadow = shadow_->MaybeMirror(model, *request);
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
    done = [cache, key, metrics = options_.metrics, done = std::move(done)](
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

  // The breaker sees the version's own answer (below every wrapper).
  if (pass.breaker != nullptr) direct = nullptr;
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
  if (model->text_pipeline != nullptr && record != nullptr && record->traced()) {
    // The request span's llm.request.input_tokens.
    done = [record, done = std::move(done)](absl::StatusOr<InferResponse> result) mutable {
      if (result.ok()) {
        if (auto tokens = result->parameters.FindInt(pipeline::kTokenCountParameter)) {
          record->SetInputTokens(*tokens);
        }
      }
      std::move(done)(std::move(result));
    };
  }
  if (pass.breaker != nullptr) {
    // Holds the version: its breaker lives while it does.
    done = [this, breaker = pass.breaker, probe = pass.probe, start = options_.clock->Now(), model,
            done = std::move(done)](absl::StatusOr<InferResponse> result) mutable {
      RecordBreaker(breaker, probe, result.status(), options_.clock->Now() - start);
      std::move(done)(std::move(result));
    };
  }
  options_.executor->Execute(std::move(model), std::move(request), std::move(done), direct != nullptr);
  if (shadow.launch) std::move(shadow.launch)();
}

void Router::Fallback(const ModelHandle& primary, std::shared_ptr<InferRequest> saved, absl::Status error,
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
  RouteWith(std::move(request), [error = std::move(error), done = std::move(done)](
                                    absl::StatusOr<InferResponse> result) mutable {
    // When the fallback cannot answer either, the client hears the primary's error.
    if (!result.ok()) return std::move(done)(std::move(error));
    std::move(done)(std::move(result));
  }, record, std::move(pass));
}

}  // namespace ortserve::router
