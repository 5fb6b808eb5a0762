// SPDX-License-Identifier: Apache-2.0
// ResponseCache: answers a repeated inference request from memory instead of
// running the model again (Triton's response cache, per-model opt-in).
//
// Role. The router asks the cache before it hands a request to the scheduler:
//
//   const CacheKey key = cache.ComputeKey(route.model, route.version, request);
//   if (std::optional<InferResponse> hit = cache.Lookup(key)) {
//     hit->id = request.id;
//     std::move(callback)(*std::move(hit));       // no model run, no byte copy
//     return;
//   }
//   ... on the scheduler's completion: cache.Insert(key, response);
//
// Only models whose config enables `response_cache` and that are not
// `nondeterministic` may use it; that policy lives with the caller.
//
// What the key covers. A keyed 128-bit hash (SipHash-2-4 with a 128-bit output
// and a random per-cache key, so clients cannot craft colliding requests to
// poison each other's answers) of, each part length-prefixed so that no two
// different requests stream the same bytes:
//   - the model name and the resolved version string;
//   - every input: name, data type, shape and data bytes, plus its input
//     parameters; inputs are taken in name order, so the order a client sends
//     them in does not matter;
//   - the requested output names in request order (none = every output), plus
//     each requested output's parameters;
//   - the request parameters.
// Parameters are taken in key order (wire order does not matter) and all of
// them count EXCEPT those that only schedule or encode the answer:
// `priority`, `timeout`, `binary_data_output`, `binary_data`,
// `classification`, `binary_data_size`, `sequence_id` (see
// IsExcludedParameter). Also not hashed: the request id, deadline, arrival,
// headers, and the RequestedOutput::binary_data/classification fields (the
// front end applies those when it encodes). The full key is never stored: two
// requests with the same 128-bit hash share an answer, a 2^-64 birthday risk.
// ComputeKey streams into the hash and allocates nothing for up to 16 inputs,
// outputs and parameters per list.
//
// Memory accounting. `max_bytes` bounds the whole cache. The cache is split
// into `num_shards` shards by key, each holding at most max_bytes / num_shards
// bytes and evicting its least recently used entries (a hit refreshes an
// entry) until it is back under that share. An entry is charged its output
// bytes (each tensor aligned to 16 bytes, all in one allocation) plus an
// estimate of its bookkeeping: the names, shapes, parameters, the entry
// object, its list node and index slot (EntryCharge). An entry charged more
// than one shard's share is not stored.
//
// Reloads. EraseModel / EraseVersion drop a model's (version's) entries when
// it is unloaded or reloaded; the server erases a version when it is released.
// A request still in flight across that point may Insert its (old) answer
// afterwards; callers that must rule that out put something that changes on
// every load into the version string they pass to ComputeKey.
//
// Thread-safety: thread-safe. Each shard has its own mutex, held only for the
// index/LRU bookkeeping; the hash, the byte copy on Insert, the building of the
// response on Lookup and the freeing of evicted entries all happen outside it.
// Stats are relaxed atomics, each exact on its own but not a snapshot together.
//
// Errors: Create returns InvalidArgument for a zero budget or a shard count
// outside [1, 1024]; nothing else fails (an oversize entry is skipped).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include "absl/status/statusor.h"
#include "core/infer_request.h"

namespace ortserve::router {

// The 128-bit identity of a request's answer. Uniformly distributed (it is a
// keyed hash), so its bits may pick shards and buckets directly.
struct CacheKey {
  uint64_t lo = 0;  // The first 8 output bytes of the hash, little-endian.
  uint64_t hi = 0;  // The last 8.

  friend bool operator==(const CacheKey& a, const CacheKey& b) { return a.lo == b.lo && a.hi == b.hi; }
  template <typename H>
  friend H AbslHashValue(H h, const CacheKey& key) {
    return H::combine(std::move(h), key.lo, key.hi);
  }
};

// SipHash-2-4 with a 128-bit output (Aumasson & Bernstein), fed incrementally.
// Splitting the input differently across Update calls gives the same hash.
// Not thread-safe; one per computation, on the stack.
class SipHasher128 {
 public:
  explicit SipHasher128(const std::array<uint8_t, 16>& key);

  void Update(const void* data, size_t size);
  // Writes the value as 8 little-endian bytes.
  void UpdateU64(uint64_t value);
  // A length prefix and the bytes, so that ("ab","c") and ("a","bc") differ.
  void UpdateString(std::string_view s);
  // The hash of everything fed so far; call once.
  CacheKey Finish();

 private:
  void Compress(uint64_t m);

  uint64_t v0_, v1_, v2_, v3_;
  uint64_t tail_ = 0;     // Pending bytes, little-endian, fewer than 8.
  size_t tail_size_ = 0;  // How many bytes `tail_` holds.
  uint64_t total_ = 0;    // Bytes fed in all.
};

class ResponseCache {
 public:
  struct Options {
    size_t max_bytes = size_t{256} << 20;  // The whole cache's budget; > 0.
    int num_shards = 16;                   // In [1, 1024].
    // The SipHash key; nullopt draws a random one (the normal case; tests
    // pin it to reproduce keys).
    std::optional<std::array<uint8_t, 16>> hash_key;
  };

  struct Stats {
    uint64_t hits = 0;        // Lookups that found an entry.
    uint64_t misses = 0;      // Lookups that did not.
    uint64_t insertions = 0;  // Entries stored (a replaced key counts again).
    uint64_t evictions = 0;   // Entries dropped for the budget (not EraseModel).
    size_t bytes = 0;         // Charged bytes now held.
    size_t entries = 0;       // Entries now held.
  };

  static absl::StatusOr<std::unique_ptr<ResponseCache>> Create(Options options);
  ~ResponseCache();

  ResponseCache(const ResponseCache&) = delete;
  ResponseCache& operator=(const ResponseCache&) = delete;

  // The key of `request`'s answer from version `model_version` of `model_name`
  // (the resolved ones; the request's own fields may be empty or an alias).
  CacheKey ComputeKey(std::string_view model_name, std::string_view model_version,
                      const InferRequest& request) const;

  // The cached answer for `key`, or nullopt (counted as a miss). The outputs
  // view the entry's bytes and keep the entry alive through Tensor::holder, so
  // they stay valid after an eviction or EraseModel. model_name,
  // model_version, parameters and outputs are filled; `id` is left empty.
  std::optional<InferResponse> Lookup(const CacheKey& key);

  // Stores a copy of `response` (its outputs' bytes in one allocation; the id
  // is not kept) under `key`, replacing an entry already there, then evicts
  // least recently used entries of the key's shard until it fits its share.
  // Does nothing when the entry would be charged more than max_entry_bytes().
  void Insert(const CacheKey& key, const InferResponse& response);

  // Drops every entry whose response named `model_name` (InferResponse::
  // model_name at Insert); returns how many. O(entries).
  size_t EraseModel(std::string_view model_name);
  // Likewise for one version of it (InferResponse::model_version at Insert).
  size_t EraseVersion(std::string_view model_name, std::string_view model_version);

  // Drops every entry.
  void Clear();

  Stats GetStats() const;

  size_t max_bytes() const { return max_bytes_; }
  // The largest charge an entry may have: one shard's share of the budget.
  size_t max_entry_bytes() const { return shard_capacity_; }

  // What Insert would charge for `response` (see the header comment).
  static size_t EntryCharge(const InferResponse& response);

  // True for the parameters the key leaves out (scheduling and encoding ones).
  static bool IsExcludedParameter(std::string_view name);

 private:
  struct Entry;
  struct Shard;

  ResponseCache(const Options& options, std::array<uint8_t, 16> hash_key);
  // Drops the entries `match` selects; returns how many.
  template <typename Match>
  size_t EraseIf(Match match);
  Shard& ShardFor(const CacheKey& key) const;

  const size_t max_bytes_;
  const size_t shard_capacity_;
  const size_t num_shards_;
  const std::array<uint8_t, 16> hash_key_;
  std::unique_ptr<Shard[]> shards_;

  std::atomic<uint64_t> hits_{0};
  std::atomic<uint64_t> misses_{0};
  std::atomic<uint64_t> insertions_{0};
  std::atomic<uint64_t> evictions_{0};
  std::atomic<size_t> bytes_{0};
  std::atomic<size_t> entries_{0};
};

}  // namespace ortserve::router
