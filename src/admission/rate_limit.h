// SPDX-License-Identifier: Apache-2.0
// Rate limits: token buckets per client key, per model and for the whole
// server (that last one optionally shared by replicas through Redis, see
// redis_lease.h). Checked when a request takes its admission permit; a
// request over a limit is refused 429 with a Retry-After the bucket computes.
//
// A bucket of `rate` tokens a second holding at most `burst` is kept as one
// number, its theoretical arrival time (GCRA): a request at `now` is allowed
// when the bucket's time minus the burst allowance is not in the future, and
// moves the time on by one token's interval. A bucket whose time is in the
// past is a full bucket, so forgetting an idle client loses nothing.
#pragma once

#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/clock.h"

namespace ortserve::admission {

// `rate` requests a second, `burst` at once (burst >= 1).
struct RateSpec {
  double rate = 0;
  double burst = 0;
  bool enabled() const { return rate > 0; }
};

// "RPS" or "RPS:BURST" (BURST defaults to max(1, RPS)). Errors:
// InvalidArgument naming `flag` for anything else, a rate <= 0 or over 1e9,
// or a burst < 1 or over 1e9.
absl::StatusOr<RateSpec> ParseRateSpec(std::string_view flag, std::string_view text);

// One GCRA bucket. Thread-safe and lock-free (one compare-and-swap).
class TokenBucket {
 public:
  TokenBucket() = default;
  explicit TokenBucket(RateSpec spec) { Configure(spec); }
  void Configure(RateSpec spec);

  // Takes a token at `now_ns` (nanoseconds on any monotonic-enough scale).
  // Returns 0 when taken, else how many nanoseconds until one is there.
  int64_t TryTake(int64_t now_ns);
  // Gives back a token taken by TryTake (the request was refused later).
  void Refund();

  // The same decision on a plain value, for buckets kept under a lock.
  static int64_t TryTakeAt(int64_t* tat_ns, int64_t now_ns, int64_t interval_ns, int64_t tolerance_ns);

  int64_t interval_ns() const { return interval_ns_; }
  int64_t tolerance_ns() const { return tolerance_ns_; }

 private:
  int64_t interval_ns_ = 0;   // 1 / rate.
  int64_t tolerance_ns_ = 0;  // (burst - 1) / rate.
  std::atomic<int64_t> tat_ns_{0};
};

// Where the global limit gets its tokens when a Redis server shares it: see
// redis_lease.h. Thread-safe.
class GlobalTokenSource {
 public:
  virtual ~GlobalTokenSource() = default;
  enum class Result { kTaken, kEmpty, kUnavailable };
  // Takes one token leased from the shared bucket; kUnavailable when the
  // shared bucket cannot be reached (the local fallback then decides).
  virtual Result TryTake() = 0;
  // Gives back a token TryTake gave (the request was refused later).
  virtual void Refund() = 0;
};

// The rate limits of one server. Thread-safe. The per-client table is
// sharded; each shard's lock is held for a hash lookup and a few
// arithmetic operations, never across a call out.
class RateLimiter {
 public:
  enum class Limit { kClient, kModel, kGlobal };
  struct Options {
    RateSpec per_client;                      // Disabled: no per-client limit.
    RateSpec per_model_default;               // Disabled: only models named below.
    std::vector<std::pair<std::string, RateSpec>> per_model;  // Model name -> its limit.
    RateSpec global;                          // Disabled: no global limit.
    // The client table's size bound; the least recently seen client is
    // forgotten past it (its bucket was most likely full again anyway).
    size_t max_clients = 100000;
    // Leased tokens of the global limit (may be null: the global bucket is
    // local). When it is unreachable, `global` is enforced locally.
    GlobalTokenSource* shared_global = nullptr;
    Clock* clock = Clock::Real();
  };
  // Errors: InvalidArgument for a per-model entry with an empty or repeated name.
  static absl::StatusOr<std::unique_ptr<RateLimiter>> Create(Options options);

  bool enabled() const { return enabled_; }

  // What TryTake took, to be given back with Refund when the request is
  // refused by a later check.
  struct Taken {
    TokenBucket* model = nullptr;
    bool client = false;
    bool global_local = false;
    bool global_shared = false;
  };
  struct Refusal {
    Limit limit;
    absl::Duration retry_after;
  };
  // Takes a token from each bucket that applies to (client, model); empty
  // strings skip that bucket. On a refusal nothing stays taken.
  // `fallback_used` is set when the global decision was the local fallback's.
  std::optional<Refusal> TryTake(std::string_view client, std::string_view model, Taken* taken,
                                 bool* fallback_used);
  void Refund(std::string_view client, const Taken& taken);

  size_t client_count() const;
  uint64_t client_evictions() const { return evictions_.load(std::memory_order_relaxed); }

 private:
  static constexpr size_t kShards = 16;
  struct ClientEntry {
    std::string key;
    int64_t tat_ns = 0;
  };
  struct Shard {
    mutable absl::Mutex mu;
    // Most recently seen first; `index` views the keys the list holds.
    std::list<ClientEntry> lru ABSL_GUARDED_BY(mu);
    absl::flat_hash_map<std::string_view, std::list<ClientEntry>::iterator> index ABSL_GUARDED_BY(mu);
  };
  explicit RateLimiter(Options options);
  int64_t NowNs() const { return absl::ToUnixNanos(options_.clock->Now()); }
  int64_t TakeClient(std::string_view client, int64_t now_ns);
  void RefundClient(std::string_view client);
  TokenBucket* ModelBucket(std::string_view model);

  const Options options_;
  bool enabled_ = false;
  int64_t client_interval_ns_ = 0;
  int64_t client_tolerance_ns_ = 0;
  size_t shard_capacity_ = 0;
  std::unique_ptr<Shard[]> shards_;
  std::atomic<uint64_t> evictions_{0};
  // Buckets of the named models (fixed at start) and, with a default, of the
  // other names as they come (bounded; names past the bound share one).
  absl::flat_hash_map<std::string, std::unique_ptr<TokenBucket>> named_models_;
  mutable absl::Mutex models_mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<TokenBucket>> default_models_ ABSL_GUARDED_BY(models_mu_);
  TokenBucket global_;
};

}  // namespace ortserve::admission
