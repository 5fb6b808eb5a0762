// SPDX-License-Identifier: Apache-2.0
#include "admission/admission.h"

#include <algorithm>
#include <limits>

#include "absl/strings/cord.h"
#include "admission/rate_limit.h"
#include "core/checked_math.h"
#include "core/strings.h"
#include "observability/metrics.h"

namespace ortserve::admission {
namespace {

// The Status payload front ends turn into Retry-After (repository's key, so
// that one header rule serves lazy loads and refusals alike).
constexpr char kRetryAfterPayload[] = "ortserve/retry-after";

// Model names get a slot each up to this many; names beyond share one slot
// (a client inventing names cannot grow the table; such names fail routing).
constexpr size_t kMaxModelSlots = 4096;

}  // namespace

std::string_view RefusalName(Refusal refusal) {
  switch (refusal) {
    case Refusal::kServerRequests: return "server_requests";
    case Refusal::kServerMemory: return "server_memory";
    case Refusal::kModelRequests: return "model_requests";
    case Refusal::kDraining: return "draining";
    case Refusal::kRateClient: return "rate_client";
    case Refusal::kRateModel: return "rate_model";
    case Refusal::kRateGlobal: return "rate_global";
  }
  return "unknown";
}

Permit& Permit::operator=(Permit&& other) noexcept {
  if (this != &other) {
    Release();
    owner_ = std::exchange(other.owner_, nullptr);
    model_inflight_ = std::exchange(other.model_inflight_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

void Permit::Release() {
  if (owner_ == nullptr) return;
  std::exchange(owner_, nullptr)->Return(std::exchange(model_inflight_, nullptr), std::exchange(bytes_, 0));
}

absl::StatusOr<std::unique_ptr<Admission>> Admission::Create(Options options) {
  if (options.retry_after_seconds < 0) {
    return absl::InvalidArgumentError(StrCat("retry-after of ", options.retry_after_seconds, " s is negative"));
  }
  return std::unique_ptr<Admission>(new Admission(std::move(options)));
}

uint64_t Admission::BodyCost(uint64_t bytes, bool json) {
  // Measured on FP32 JSON: the body, simdjson's tape (two 8-byte words per
  // number, ~2x the text of short numbers) and the decoded tensor (~0.5x).
  const uint64_t factor = json ? 4 : 1;
  return CheckedMul(bytes, factor).value_or(std::numeric_limits<uint64_t>::max());
}

absl::Status Admission::Refuse(Refusal refusal, std::string message, int retry_after_seconds) {
  if (options_.metrics != nullptr) options_.metrics->RecordAdmissionRefusal(RefusalName(refusal));
  const bool too_many = refusal == Refusal::kModelRequests || refusal == Refusal::kRateClient ||
                        refusal == Refusal::kRateModel || refusal == Refusal::kRateGlobal;
  absl::Status status = too_many ? absl::ResourceExhaustedError(std::move(message))
                                 : absl::UnavailableError(std::move(message));
  status.SetPayload(kRetryAfterPayload,
                    absl::Cord(StrCat(retry_after_seconds >= 0 ? retry_after_seconds : options_.retry_after_seconds)));
  return status;
}

std::atomic<int64_t>* Admission::ModelSlot(std::string_view model) {
  {
    absl::ReaderMutexLock lock(&models_mu_);
    auto it = models_.find(absl::string_view(model.data(), model.size()));
    if (it != models_.end()) return it->second.get();
  }
  absl::MutexLock lock(&models_mu_);
  const bool full = models_.size() >= kMaxModelSlots;
  auto& slot = models_[full ? absl::string_view() : absl::string_view(model.data(), model.size())];
  if (!slot) slot = std::make_unique<std::atomic<int64_t>>(0);
  return slot.get();
}

absl::StatusOr<Permit> Admission::TryAdmit(const Ask& ask) {
  if (draining_.load(std::memory_order_acquire)) {
    return Refuse(Refusal::kDraining, "the server is shutting down and takes no new requests");
  }
  // Rate limits first (a few atomics, one short shard lock): a refusal by a
  // budget below gives the tokens back.
  RateLimiter::Taken tokens;
  RateLimiter* limiter = options_.rate_limiter;
  if (limiter != nullptr && limiter->enabled()) {
    bool fallback = false;
    if (auto over = limiter->TryTake(ask.client, ask.model, &tokens, &fallback)) {
      // Retry-After is whole seconds: the wait rounded up, at least 1.
      const int64_t wait_ms = absl::ToInt64Milliseconds(absl::Ceil(over->retry_after, absl::Milliseconds(1)));
      const int retry = static_cast<int>(std::clamp<int64_t>((wait_ms + 999) / 1000, 1, 86400));
      switch (over->limit) {
        case RateLimiter::Limit::kClient:
          return Refuse(Refusal::kRateClient,
                        StrCat("client '", ask.client, "' is over its rate limit (--rate-limit-per-client); retry in ",
                               retry, " s"), retry);
        case RateLimiter::Limit::kModel:
          return Refuse(Refusal::kRateModel,
                        StrCat("model '", ask.model, "' is over its rate limit (--rate-limit-per-model); retry in ",
                               retry, " s"), retry);
        case RateLimiter::Limit::kGlobal:
          return Refuse(Refusal::kRateGlobal,
                        StrCat("the server is over its rate limit (--rate-limit-global); retry in ", retry, " s"),
                        retry);
      }
    }
  }
  // Take each share first, then check it: concurrent admissions can each see
  // room for one more, but never both get it. A refusal gives back what it took.
  const uint64_t requests = requests_.fetch_add(1, std::memory_order_acq_rel) + 1;
  const uint64_t bytes = bytes_.fetch_add(ask.bytes, std::memory_order_acq_rel) + ask.bytes;
  std::atomic<int64_t>* slot = nullptr;
  auto refuse = [&](Refusal refusal, std::string message) {
    if (slot != nullptr) slot->fetch_sub(1, std::memory_order_acq_rel);
    requests_.fetch_sub(1, std::memory_order_acq_rel);
    bytes_.fetch_sub(ask.bytes, std::memory_order_acq_rel);
    if (limiter != nullptr) limiter->Refund(ask.client, tokens);
    return Refuse(refusal, std::move(message));
  };
  if (options_.max_inflight_requests > 0 && requests > options_.max_inflight_requests) {
    return refuse(Refusal::kServerRequests,
                  StrCat("the server is at its limit of ", options_.max_inflight_requests,
                         " requests in flight (--max-inflight-requests); retry later"));
  }
  if (options_.max_inflight_bytes > 0 && bytes > options_.max_inflight_bytes) {
    return refuse(Refusal::kServerMemory,
                  StrCat("the requests in flight hold ", bytes - ask.bytes, " bytes; this one needs ", ask.bytes,
                         " more, over the limit of ", options_.max_inflight_bytes,
                         " (--max-inflight-bytes); retry later"));
  }
  if (options_.max_model_inflight > 0 && !ask.model.empty()) {
    slot = ModelSlot(ask.model);
    const int64_t in_model = slot->fetch_add(1, std::memory_order_acq_rel) + 1;
    if (static_cast<uint64_t>(in_model) > options_.max_model_inflight) {
      return refuse(Refusal::kModelRequests,
                    StrCat("model '", ask.model, "' has ", in_model - 1, " requests in flight, its limit ",
                           "(--max-model-inflight ", options_.max_model_inflight, "); retry later"));
    }
  }
  if (options_.metrics != nullptr) options_.metrics->AddAdmissionInflight(1, static_cast<int64_t>(ask.bytes));
  Permit permit;
  permit.owner_ = this;
  permit.model_inflight_ = slot;
  permit.bytes_ = ask.bytes;
  return permit;
}

void Admission::Return(std::atomic<int64_t>* model_inflight, uint64_t bytes) {
  if (model_inflight != nullptr) model_inflight->fetch_sub(1, std::memory_order_acq_rel);
  requests_.fetch_sub(1, std::memory_order_acq_rel);
  bytes_.fetch_sub(bytes, std::memory_order_acq_rel);
  if (options_.metrics != nullptr) options_.metrics->AddAdmissionInflight(-1, -static_cast<int64_t>(bytes));
}

}  // namespace ortserve::admission
