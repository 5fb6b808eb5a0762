// SPDX-License-Identifier: Apache-2.0
#include "admission/rate_limit.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "absl/hash/hash.h"
#include "core/strings.h"

namespace ortserve::admission {
namespace {

// Per-model buckets made for names from requests (with a default limit): up
// to this many; names beyond share one bucket (such names fail routing).
constexpr size_t kMaxDefaultModelBuckets = 4096;
constexpr double kMaxRate = 1e9;

std::optional<double> ParseNumber(std::string_view text) {
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(value)) return std::nullopt;
  return value;
}

// Debian's abseil has its own string_view: the keys of std::string maps are looked up with it.
absl::string_view Key(std::string_view text) { return absl::string_view(text.data(), text.size()); }

int64_t IntervalNs(double rate) {
  return std::max<int64_t>(1, static_cast<int64_t>(std::llround(1e9 / rate)));
}

int64_t ToleranceNs(const RateSpec& spec) {
  // burst <= 1e9 and rate >= 1e-9 keep this within an int64 (< 1e18 * 1e9 would not).
  const double ns = (spec.burst - 1) * 1e9 / spec.rate;
  return ns >= 9e18 ? int64_t{9'000'000'000'000'000'000} : static_cast<int64_t>(ns);
}

}  // namespace

absl::StatusOr<RateSpec> ParseRateSpec(std::string_view flag, std::string_view text) {
  const size_t colon = text.find(':');
  const auto rate = ParseNumber(text.substr(0, colon));
  const auto burst = colon == std::string_view::npos ? std::optional<double>() : ParseNumber(text.substr(colon + 1));
  if (!rate || *rate <= 0 || *rate > kMaxRate || (colon != std::string_view::npos && !burst)) {
    return absl::InvalidArgumentError(StrCat(flag, ": '", text, "' is not RPS or RPS:BURST with 0 < RPS <= 1e9"));
  }
  RateSpec spec{.rate = *rate, .burst = burst.value_or(std::max(1.0, *rate))};
  if (spec.burst < 1 || spec.burst > kMaxRate) {
    return absl::InvalidArgumentError(StrCat(flag, ": burst in '", text, "' must be in [1, 1e9]"));
  }
  if (spec.rate < 1e-6) return absl::InvalidArgumentError(StrCat(flag, ": rate in '", text, "' is below 1e-6"));
  return spec;
}

void TokenBucket::Configure(RateSpec spec) {
  interval_ns_ = spec.enabled() ? IntervalNs(spec.rate) : 0;
  tolerance_ns_ = spec.enabled() ? ToleranceNs(spec) : 0;
  tat_ns_.store(0, std::memory_order_relaxed);
}

int64_t TokenBucket::TryTakeAt(int64_t* tat_ns, int64_t now_ns, int64_t interval_ns, int64_t tolerance_ns) {
  const int64_t tat = std::max(*tat_ns, now_ns);
  const int64_t allow_at = tat - tolerance_ns;
  if (now_ns < allow_at) return allow_at - now_ns;
  *tat_ns = tat + interval_ns;
  return 0;
}

int64_t TokenBucket::TryTake(int64_t now_ns) {
  int64_t seen = tat_ns_.load(std::memory_order_relaxed);
  while (true) {
    int64_t next = seen;
    if (int64_t wait = TryTakeAt(&next, now_ns, interval_ns_, tolerance_ns_); wait > 0) return wait;
    if (tat_ns_.compare_exchange_weak(seen, next, std::memory_order_acq_rel, std::memory_order_relaxed)) return 0;
  }
}

void TokenBucket::Refund() { tat_ns_.fetch_sub(interval_ns_, std::memory_order_acq_rel); }

absl::StatusOr<std::unique_ptr<RateLimiter>> RateLimiter::Create(Options options) {
  for (size_t i = 0; i < options.per_model.size(); ++i) {
    if (options.per_model[i].first.empty()) {
      return absl::InvalidArgumentError("--rate-limit-per-model: MODEL=RPS[:BURST] needs a model name");
    }
    for (size_t j = 0; j < i; ++j) {
      if (options.per_model[j].first == options.per_model[i].first) {
        return absl::InvalidArgumentError(
            StrCat("--rate-limit-per-model: model '", options.per_model[i].first, "' is given twice"));
      }
    }
  }
  if (options.max_clients == 0) options.max_clients = 1;
  return std::unique_ptr<RateLimiter>(new RateLimiter(std::move(options)));
}

RateLimiter::RateLimiter(Options options) : options_(std::move(options)), shards_(new Shard[kShards]) {
  enabled_ = options_.per_client.enabled() || options_.per_model_default.enabled() || !options_.per_model.empty() ||
             options_.global.enabled() || options_.shared_global != nullptr;
  if (options_.per_client.enabled()) {
    client_interval_ns_ = IntervalNs(options_.per_client.rate);
    client_tolerance_ns_ = ToleranceNs(options_.per_client);
  }
  shard_capacity_ = std::max<size_t>(1, (options_.max_clients + kShards - 1) / kShards);
  for (const auto& [name, spec] : options_.per_model) named_models_[name] = std::make_unique<TokenBucket>(spec);
  global_.Configure(options_.global);
}

size_t RateLimiter::client_count() const {
  size_t n = 0;
  for (size_t i = 0; i < kShards; ++i) {
    absl::MutexLock lock(&shards_[i].mu);
    n += shards_[i].index.size();
  }
  return n;
}

int64_t RateLimiter::TakeClient(std::string_view client, int64_t now_ns) {
  Shard& shard = shards_[absl::HashOf(client) % kShards];
  absl::MutexLock lock(&shard.mu);
  auto it = shard.index.find(client);
  if (it != shard.index.end()) {
    shard.lru.splice(shard.lru.begin(), shard.lru, it->second);  // Most recent first; no allocation.
    return TokenBucket::TryTakeAt(&it->second->tat_ns, now_ns, client_interval_ns_, client_tolerance_ns_);
  }
  if (shard.index.size() >= shard_capacity_) {
    // Full: forget the least recently seen client and reuse its node.
    auto last = std::prev(shard.lru.end());
    shard.index.erase(std::string_view(last->key));
    last->key.assign(client.data(), client.size());
    last->tat_ns = 0;
    shard.lru.splice(shard.lru.begin(), shard.lru, last);
    evictions_.fetch_add(1, std::memory_order_relaxed);
  } else {
    shard.lru.push_front(ClientEntry{std::string(client), 0});
  }
  auto node = shard.lru.begin();
  shard.index.emplace(std::string_view(node->key), node);
  return TokenBucket::TryTakeAt(&node->tat_ns, now_ns, client_interval_ns_, client_tolerance_ns_);
}

void RateLimiter::RefundClient(std::string_view client) {
  Shard& shard = shards_[absl::HashOf(client) % kShards];
  absl::MutexLock lock(&shard.mu);
  if (auto it = shard.index.find(client); it != shard.index.end()) it->second->tat_ns -= client_interval_ns_;
}

TokenBucket* RateLimiter::ModelBucket(std::string_view model) {
  if (auto it = named_models_.find(Key(model)); it != named_models_.end()) return it->second.get();
  if (!options_.per_model_default.enabled()) return nullptr;
  {
    absl::ReaderMutexLock lock(&models_mu_);
    if (auto it = default_models_.find(Key(model)); it != default_models_.end()) return it->second.get();
  }
  absl::MutexLock lock(&models_mu_);
  const bool full = default_models_.size() >= kMaxDefaultModelBuckets;
  auto& bucket = default_models_[full ? absl::string_view() : Key(model)];
  if (!bucket) bucket = std::make_unique<TokenBucket>(options_.per_model_default);
  return bucket.get();
}

std::optional<RateLimiter::Refusal> RateLimiter::TryTake(std::string_view client, std::string_view model,
                                                         Taken* taken, bool* fallback_used) {
  *taken = Taken();
  *fallback_used = false;
  if (!enabled_) return std::nullopt;
  const int64_t now = NowNs();
  if (options_.per_client.enabled() && !client.empty()) {
    if (int64_t wait = TakeClient(client, now); wait > 0) return Refusal{Limit::kClient, absl::Nanoseconds(wait)};
    taken->client = true;
  }
  if (!model.empty()) {
    if (TokenBucket* bucket = ModelBucket(model); bucket != nullptr) {
      if (int64_t wait = bucket->TryTake(now); wait > 0) {
        Refund(client, *taken);
        return Refusal{Limit::kModel, absl::Nanoseconds(wait)};
      }
      taken->model = bucket;
    }
  }
  GlobalTokenSource::Result shared = GlobalTokenSource::Result::kUnavailable;
  if (options_.shared_global != nullptr) shared = options_.shared_global->TryTake();
  if (shared == GlobalTokenSource::Result::kTaken) {
    taken->global_shared = true;
  } else if (shared == GlobalTokenSource::Result::kEmpty) {
    Refund(client, *taken);
    // The shared bucket refills at its rate: one token's interval is the hint.
    return Refusal{Limit::kGlobal, absl::Nanoseconds(global_.interval_ns())};
  } else if (options_.global.enabled()) {
    *fallback_used = options_.shared_global != nullptr;
    if (int64_t wait = global_.TryTake(now); wait > 0) {
      Refund(client, *taken);
      return Refusal{Limit::kGlobal, absl::Nanoseconds(wait)};
    }
    taken->global_local = true;
  }
  return std::nullopt;
}

void RateLimiter::Refund(std::string_view client, const Taken& taken) {
  if (taken.client) RefundClient(client);
  if (taken.model != nullptr) taken.model->Refund();
  if (taken.global_local) global_.Refund();
  if (taken.global_shared && options_.shared_global != nullptr) options_.shared_global->Refund();
}

}  // namespace ortserve::admission
