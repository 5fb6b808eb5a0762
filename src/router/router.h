// SPDX-License-Identifier: Apache-2.0
// Router: takes an admitted request to the model version that serves it.
// In order: version resolution (an explicit version, the X-Model-Version
// override, the model's weighted split sticky by key, or the default), a wait
// for a lazy model's load, the request's checks against that version, the
// response cache, then the executor (the version's scheduler, through its
// text pipeline when it has one); around the answer, the shadow copy
// mirrored to a candidate and the fallback model when the primary fails
// (docs/routing.md). A version whose circuit breaker is open is skipped for
// the fallback, or refused with 503 when there is none (circuit_breaker.h).
//
// Thread-safe. Holds no lock while calling out (the executor, `done`).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"
#include "core/clock.h"
#include "core/infer_request.h"
#include "observability/request_record.h"
#include "repository/model_provider.h"
#include "router/circuit_breaker.h"
#include "router/executor.h"
#include "router/version_router.h"

namespace ortserve::observability {
class VersionMetrics;
}  // namespace ortserve::observability

namespace prometheus {
class Counter;
class Gauge;
template <typename T>
class Family;
}  // namespace prometheus

namespace ortserve::router {

class ResponseCache;
class ShadowMirror;

// Where a client's answer goes when no wrapper (fallback, shadow, cache
// insert) sees it first: the caller's pooled call. The router then hands it
// the version to hold and the pending gauge to settle instead of wrapping
// the callback, so the common path allocates nothing. Filled by Route, read
// by the caller when the answer arrives.
struct AnswerSlot {
  repository::ModelHandle model;
  observability::VersionMetrics* pending = nullptr;
};

class Router {
 public:
  struct Options {
    repository::ModelProvider* models = nullptr;  // Not owned.
    Executor* executor = nullptr;                  // Not owned.
    // Where models with `response_cache { enable: true }` keep answers (not
    // owned); null: no caching.
    ResponseCache* response_cache = nullptr;
    Clock* clock = Clock::Real();
    observability::Metrics* metrics = nullptr;  // May be null.
    // Where shadow comparisons run; unset: a thread of the router's own.
    std::function<void(absl::AnyInvocable<void() &&>)> run_comparison;
    // Shadow copies are requests the server has in flight: the shutdown
    // drain waits for them. Called with +1 when a copy is launched and -1
    // when it is answered. May be unset.
    std::function<void(int)> count_shadow;
    // True once the server drains: no shadow copies are launched then.
    std::function<bool()> draining;
  };
  explicit Router(Options options);
  ~Router();
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  // Routes `request` and calls `done` exactly once, with the answer or the
  // error: InvalidArgument for a bad request (naming the tensor), NotFound or
  // Unavailable for the model (with a retry hint while a lazy model loads),
  // and the executor's errors. Keeps the version alive until `done` returns
  // (through `slot` when given, see AnswerSlot). `record` (optional, must
  // outlive `done`) learns the version and, for traced text requests, the
  // token count.
  void Route(std::unique_ptr<InferRequest> request, InferCallback done, observability::RequestRecord* record,
             AnswerSlot* slot);

 private:
  // What one pass through routing may do: a client's request may use the
  // cache, mirror and fall back; a shadow copy or a fallback attempt may not
  // repeat what brought it there.
  struct Pass {
    bool shadow = true;
    bool fallback = true;
    bool cache = true;
    // The fallback pass: the primary's name and error, for the response.
    std::string fallback_from;
    std::string fallback_reason;
    // Set once a lazy load was waited for: its error (a retry-after hint)
    // is what the client hears if the model still cannot serve.
    bool lazy_waited = false;
    absl::Status lazy_error;
    // A shadow copy: not counted as routed traffic.
    bool mirror = false;
    AnswerSlot* slot = nullptr;
    // The version's circuit breaker let this request through (as a probe
    // when half-open): its outcome is recorded there.
    CircuitBreaker* breaker = nullptr;
    bool probe = false;
  };
  friend class ShadowMirror;

  void RouteWith(std::unique_ptr<InferRequest> request, InferCallback done, observability::RequestRecord* record,
                 Pass pass);
  void Dispatch(repository::ModelHandle model, RouteReason reason, std::unique_ptr<InferRequest> request,
                InferCallback done, observability::RequestRecord* record, Pass pass);
  // The fallback of a primary that failed with `error`, or `error` itself.
  void Fallback(const repository::ModelHandle& primary, std::shared_ptr<InferRequest> saved, absl::Status error,
                InferCallback done, observability::RequestRecord* record);

  // The circuit breaker of `model` (made on its first request), or null when
  // its config enables none. Keyed by the loaded version: a reload starts closed.
  CircuitBreaker* BreakerFor(const repository::ModelHandle& model);
  // Records the outcome of a request let through by `breaker`.
  void RecordBreaker(CircuitBreaker* breaker, bool probe, const absl::Status& status, absl::Duration latency);

  Options options_;
  struct BreakerEntry {
    std::weak_ptr<const repository::ModelVersion> version;  // Expired: the pointer key may be reused.
    std::unique_ptr<CircuitBreaker> breaker;
  };
  absl::Mutex breakers_mu_;
  absl::flat_hash_map<const repository::ModelVersion*, BreakerEntry> breakers_ ABSL_GUARDED_BY(breakers_mu_);
  prometheus::Family<prometheus::Gauge>* breaker_state_ = nullptr;
  prometheus::Family<prometheus::Counter>* breaker_transitions_ = nullptr;
  prometheus::Family<prometheus::Counter>* breaker_rejected_ = nullptr;
  // Declared last: destroyed first, it finishes the comparisons still queued.
  std::unique_ptr<ShadowMirror> shadow_;
};

}  // namespace ortserve::router
