// SPDX-License-Identifier: Apache-2.0
// Admission: the one permit every request takes before routing, from every
// front end (KServe REST and gRPC, the text APIs). A permit counts the
// request and the memory it holds against the server's budgets until it is
// answered; a request that would exceed one is refused at once, before its
// body is decoded, with a status that says why and when to come back:
//  - Unavailable (HTTP 503, gRPC UNAVAILABLE) when the server as a whole is
//    full: too many requests in flight, or too much memory held by them;
//  - ResourceExhausted (HTTP 429, gRPC RESOURCE_EXHAUSTED) when one model
//    has as many requests in flight as it may queue, or when the client, the
//    model or the server is over its rate limit (rate_limit.h; the
//    Retry-After then says when the bucket has a token again);
// each with a kRetryAfterPayload the front ends turn into Retry-After.
// Refusals are counted by reason (ortserve_admission_refused_total).
//
// Circuit breakers (router/circuit_breaker.h) and credentials are further
// checks (docs/security.md lists every limit with its default).
//
// Thread-safe and lock-free on the request path: budgets are atomics; a
// model's slot is found under a reader lock, created once per model name
// under the writer lock (bounded: names are those of loaded models).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace ortserve::observability {
class Metrics;
}  // namespace ortserve::observability

namespace ortserve::admission {

// Why a request was refused (the `reason` label).
enum class Refusal {
  kServerRequests,  // --max-inflight-requests reached.
  kServerMemory,    // --max-inflight-bytes reached.
  kModelRequests,   // The model's in-flight bound reached.
  kDraining,        // The server is shutting down.
  kRateClient,      // The client's token bucket is empty (--rate-limit-per-client).
  kRateModel,       // The model's token bucket is empty (--rate-limit-per-model).
  kRateGlobal,      // The server's (or replicas' shared) bucket is empty (--rate-limit-global).
};
inline constexpr size_t kRefusalCount = 7;
std::string_view RefusalName(Refusal refusal);  // "server_requests", "server_memory", ...

// What a request asks of the budgets.
struct Ask {
  // The model it names; empty when it names none yet (a text endpoint's
  // model is configured, not asked for; server budgets still apply).
  std::string_view model;
  // Who asks: the authenticated identity's id when there is one, else the
  // client's address. Empty: no per-client rate limit applies.
  std::string_view client;
  // Memory it will hold while in flight: its body, and what decoding makes
  // of it (see Admission::BodyCost).
  uint64_t bytes = 0;
};

class Admission;
class RateLimiter;

// Holds a request's share of the budgets until destroyed (or Release()d).
// Move-only. Not thread-safe (one owner), but may be released on any thread.
class Permit {
 public:
  Permit() = default;
  ~Permit() { Release(); }
  Permit(Permit&& other) noexcept { *this = std::move(other); }
  Permit& operator=(Permit&& other) noexcept;
  Permit(const Permit&) = delete;
  Permit& operator=(const Permit&) = delete;

  bool held() const { return owner_ != nullptr; }
  uint64_t bytes() const { return bytes_; }
  void Release();

 private:
  friend class Admission;
class RateLimiter;
  Admission* owner_ = nullptr;
  std::atomic<int64_t>* model_inflight_ = nullptr;
  uint64_t bytes_ = 0;
};

class Admission {
 public:
  struct Options {
    // Requests in flight at once over every front end; 0: no bound.
    uint64_t max_inflight_requests = 0;
    // Bytes those requests may hold (see Ask::bytes); 0: no bound.
    uint64_t max_inflight_bytes = 0;
    // Requests of one model in flight at once (queued or running); 0: no bound.
    uint64_t max_model_inflight = 0;
    // The Retry-After hint of a refusal, in whole seconds.
    int retry_after_seconds = 1;
    // Token buckets checked before the budgets (not owned; may be null).
    RateLimiter* rate_limiter = nullptr;
    observability::Metrics* metrics = nullptr;  // Not owned; may be null.
  };
  static absl::StatusOr<std::unique_ptr<Admission>> Create(Options options);

  // A permit for `ask`, or the refusal (see the file comment). Never blocks.
  absl::StatusOr<Permit> TryAdmit(const Ask& ask);

  // From now on every TryAdmit is refused (Unavailable, kDraining).
  void BeginDrain() { draining_.store(true, std::memory_order_release); }

  // What a body of `bytes` costs while in flight: the body itself, plus, for
  // JSON, the parser's working memory and the decoded tensors (JSON numbers
  // take more room parsed than written); binary tensors are views into the
  // body. Saturates instead of overflowing.
  static uint64_t BodyCost(uint64_t bytes, bool json);

  uint64_t inflight_requests() const { return requests_.load(std::memory_order_acquire); }
  uint64_t inflight_bytes() const { return bytes_.load(std::memory_order_acquire); }
  const Options& options() const { return options_; }
  // Model names with a slot of their own (bounded; see admission.cc).
  size_t model_slot_count() const {
    absl::ReaderMutexLock lock(&models_mu_);
    return models_.size();
  }

 private:
  friend class Permit;
  explicit Admission(Options options) : options_(std::move(options)) {}
  absl::Status Refuse(Refusal refusal, std::string message, int retry_after_seconds = -1);
  std::atomic<int64_t>* ModelSlot(std::string_view model);
  void Return(std::atomic<int64_t>* model_inflight, uint64_t bytes);

  const Options options_;
  std::atomic<bool> draining_{false};
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> bytes_{0};
  mutable absl::Mutex models_mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<std::atomic<int64_t>>> models_ ABSL_GUARDED_BY(models_mu_);
};

}  // namespace ortserve::admission
