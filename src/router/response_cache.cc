// SPDX-License-Identifier: Apache-2.0
#include "router/response_cache.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <list>
#include <random>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "core/strings.h"

namespace ortserve::router {
namespace {

static_assert(std::endian::native == std::endian::little,
              "SipHasher128 loads words in host order; add byte swaps for big-endian hosts");

inline uint64_t Load64(const unsigned char* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// Tensors inside an entry's single allocation start at this alignment, so
// Tensor::values<T>() is well-aligned for every element type.
constexpr size_t kTensorAlignment = 16;

constexpr size_t AlignUp(size_t n) { return (n + kTensorAlignment - 1) & ~(kTensorAlignment - 1); }

// Bookkeeping not visible in the response itself: the LRU list node (two
// links, the key, the shared_ptr), the index slot (key + iterator, at the
// map's load factor), and the shared_ptr control block.
constexpr size_t kPerEntryOverhead = 2 * sizeof(void*) + sizeof(CacheKey) + 2 * sizeof(void*)  // list node
                                     + 2 * (sizeof(CacheKey) + sizeof(void*))                 // index slot
                                     + 4 * sizeof(void*);                                     // control block

// Domain separation: a future change of what is hashed bumps this.
constexpr std::string_view kKeyDomain = "ortserve.response_cache.v1";

// Section markers, so an input list cannot be confused with an output list.
enum class Section : uint64_t { kInputs = 1, kOutputs = 2, kRequestParameters = 3 };

// Streams the parameters the key covers, in key order (the wire order may
// differ between clients). No allocation for up to 16 parameters.
void HashParameters(const Parameters& parameters, SipHasher128& hasher) {
  absl::InlinedVector<const Parameters::Entry*, 16> kept;
  for (const Parameters::Entry& entry : parameters) {
    if (!ResponseCache::IsExcludedParameter(entry.first)) kept.push_back(&entry);
  }
  // Entries live in one vector, so pointer order is wire order: a total order
  // even if a decoder appended a key twice.
  std::sort(kept.begin(), kept.end(), [](const Parameters::Entry* a, const Parameters::Entry* b) {
    if (a->first != b->first) return a->first < b->first;
    return a < b;
  });
  hasher.UpdateU64(kept.size());
  for (const Parameters::Entry* entry : kept) {
    hasher.UpdateString(entry->first);
    const ParameterValue& value = entry->second;
    hasher.UpdateU64(value.index());
    std::visit(
        [&hasher](const auto& v) {
          using V = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<V, bool>) {
            hasher.UpdateU64(v ? 1 : 0);
          } else if constexpr (std::is_same_v<V, int64_t> || std::is_same_v<V, uint64_t>) {
            hasher.UpdateU64(static_cast<uint64_t>(v));
          } else if constexpr (std::is_same_v<V, double>) {
            hasher.UpdateU64(std::bit_cast<uint64_t>(v));
          } else {
            hasher.UpdateString(v);
          }
        },
        value);
  }
}

}  // namespace

// ---------------------------------------------------------------------------
// SipHasher128

#define ORTSERVE_SIPROUND                 \
  do {                                    \
    v0_ += v1_;                           \
    v1_ = std::rotl(v1_, 13);             \
    v1_ ^= v0_;                           \
    v0_ = std::rotl(v0_, 32);             \
    v2_ += v3_;                           \
    v3_ = std::rotl(v3_, 16);             \
    v3_ ^= v2_;                           \
    v0_ += v3_;                           \
    v3_ = std::rotl(v3_, 21);             \
    v3_ ^= v0_;                           \
    v2_ += v1_;                           \
    v1_ = std::rotl(v1_, 17);             \
    v1_ ^= v2_;                           \
    v2_ = std::rotl(v2_, 32);             \
  } while (false)

SipHasher128::SipHasher128(const std::array<uint8_t, 16>& key) {
  const uint64_t k0 = Load64(key.data());
  const uint64_t k1 = Load64(key.data() + 8);
  v0_ = k0 ^ 0x736f6d6570736575ULL;
  v1_ = k1 ^ 0x646f72616e646f6dULL ^ 0xee;  // 0xee: the 128-bit output variant.
  v2_ = k0 ^ 0x6c7967656e657261ULL;
  v3_ = k1 ^ 0x7465646279746573ULL;
}

inline void SipHasher128::Compress(uint64_t m) {
  v3_ ^= m;
  ORTSERVE_SIPROUND;
  ORTSERVE_SIPROUND;
  v0_ ^= m;
}

void SipHasher128::Update(const void* data, size_t size) {
  const auto* p = static_cast<const unsigned char*>(data);
  total_ += size;
  // Top up a pending partial word first.
  while (tail_size_ != 0 && size != 0) {
    tail_ |= uint64_t{*p++} << (8 * tail_size_);
    --size;
    if (++tail_size_ == 8) {
      Compress(tail_);
      tail_ = 0;
      tail_size_ = 0;
    }
  }
  // Whole words straight from the input (the hot loop for tensor bytes).
  for (; size >= 8; p += 8, size -= 8) Compress(Load64(p));
  for (; size != 0; --size) tail_ |= uint64_t{*p++} << (8 * tail_size_++);
}

void SipHasher128::UpdateU64(uint64_t value) {
  unsigned char bytes[8];
  std::memcpy(bytes, &value, sizeof(bytes));
  Update(bytes, sizeof(bytes));
}

void SipHasher128::UpdateString(std::string_view s) {
  UpdateU64(s.size());
  Update(s.data(), s.size());
}

CacheKey SipHasher128::Finish() {
  Compress(tail_ | (total_ << 56));
  v2_ ^= 0xee;
  for (int i = 0; i < 4; ++i) ORTSERVE_SIPROUND;
  CacheKey key;
  key.lo = v0_ ^ v1_ ^ v2_ ^ v3_;
  v1_ ^= 0xdd;
  for (int i = 0; i < 4; ++i) ORTSERVE_SIPROUND;
  key.hi = v0_ ^ v1_ ^ v2_ ^ v3_;
  return key;
}

#undef ORTSERVE_SIPROUND

// ---------------------------------------------------------------------------
// ResponseCache

// Immutable once built; shared by the shard and by every response a Lookup
// handed out (through Tensor::holder).
struct ResponseCache::Entry {
  std::string model_name;
  std::string model_version;
  Parameters parameters;
  std::vector<Tensor> outputs;  // Views into `bytes`; holder left null.
  std::unique_ptr<std::byte[]> bytes;
  size_t charge = 0;
};

struct ResponseCache::Shard {
  struct Item {
    CacheKey key;
    std::shared_ptr<const Entry> entry;
  };
  using List = std::list<Item>;

  absl::Mutex mu;
  List lru ABSL_GUARDED_BY(mu);  // Front: most recently used.
  absl::flat_hash_map<CacheKey, List::iterator> index ABSL_GUARDED_BY(mu);
  size_t bytes ABSL_GUARDED_BY(mu) = 0;

  // Moves `it` out of the shard into `dropped` (freed by the caller once the
  // lock is released) and takes its charge off the shard's and the cache's
  // totals.
  void Unlink(List::iterator it, List* dropped, std::atomic<size_t>& cache_bytes, std::atomic<size_t>& cache_entries)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    const size_t charge = it->entry->charge;
    index.erase(it->key);
    dropped->splice(dropped->end(), lru, it);
    bytes -= charge;
    cache_bytes.fetch_sub(charge, std::memory_order_relaxed);
    cache_entries.fetch_sub(1, std::memory_order_relaxed);
  }
};

absl::StatusOr<std::unique_ptr<ResponseCache>> ResponseCache::Create(Options options) {
  if (options.max_bytes == 0) {
    return absl::InvalidArgumentError("response cache max_bytes must be > 0, got 0");
  }
  if (options.num_shards < 1 || options.num_shards > 1024) {
    return absl::InvalidArgumentError(
        StrCat("response cache num_shards must be in [1, 1024], got ", options.num_shards));
  }
  std::array<uint8_t, 16> key{};
  if (options.hash_key.has_value()) {
    key = *options.hash_key;
  } else {
    std::random_device random;
    for (size_t i = 0; i < key.size(); i += 4) {
      const uint32_t word = random();
      std::memcpy(key.data() + i, &word, 4);
    }
  }
  return std::unique_ptr<ResponseCache>(new ResponseCache(options, key));
}

ResponseCache::ResponseCache(const Options& options, std::array<uint8_t, 16> hash_key)
    : max_bytes_(options.max_bytes),
      shard_capacity_(options.max_bytes / static_cast<size_t>(options.num_shards)),
      num_shards_(static_cast<size_t>(options.num_shards)),
      hash_key_(hash_key),
      shards_(new Shard[static_cast<size_t>(options.num_shards)]) {}

ResponseCache::~ResponseCache() = default;

ResponseCache::Shard& ResponseCache::ShardFor(const CacheKey& key) const {
  return shards_[key.hi % num_shards_];
}

bool ResponseCache::IsExcludedParameter(std::string_view name) {
  static constexpr std::string_view kExcluded[] = {
      "priority",   "timeout",        "binary_data_output", "binary_data",
      "classification", "binary_data_size", "sequence_id",
  };
  return std::find(std::begin(kExcluded), std::end(kExcluded), name) != std::end(kExcluded);
}

CacheKey ResponseCache::ComputeKey(std::string_view model_name, std::string_view model_version,
                                   const InferRequest& request) const {
  SipHasher128 hasher(hash_key_);
  hasher.UpdateString(kKeyDomain);
  hasher.UpdateString(model_name);
  hasher.UpdateString(model_version);

  // Inputs in name order (then arrival order, for a malformed duplicate).
  absl::InlinedVector<uint32_t, 16> order(request.inputs.size());
  for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&request](uint32_t a, uint32_t b) {
    const std::string& na = request.inputs[a].name;
    const std::string& nb = request.inputs[b].name;
    if (na != nb) return na < nb;
    return a < b;
  });
  hasher.UpdateU64(static_cast<uint64_t>(Section::kInputs));
  hasher.UpdateU64(order.size());
  static const Parameters kNoParameters;
  for (uint32_t i : order) {
    const Tensor& input = request.inputs[i];
    hasher.UpdateString(input.name);
    hasher.UpdateU64(static_cast<uint64_t>(input.type));
    hasher.UpdateU64(input.shape.size());
    for (int64_t dim : input.shape) hasher.UpdateU64(static_cast<uint64_t>(dim));
    hasher.UpdateU64(input.data.size());
    hasher.Update(input.data.data(), input.data.size());
    HashParameters(i < request.input_parameters.size() ? request.input_parameters[i] : kNoParameters,
                   hasher);
  }

  // Requested outputs in request order: the response lists them that way.
  hasher.UpdateU64(static_cast<uint64_t>(Section::kOutputs));
  hasher.UpdateU64(request.outputs.size());
  for (const RequestedOutput& output : request.outputs) {
    hasher.UpdateString(output.name);
    HashParameters(output.parameters, hasher);
  }

  hasher.UpdateU64(static_cast<uint64_t>(Section::kRequestParameters));
  HashParameters(request.parameters, hasher);
  return hasher.Finish();
}

size_t ResponseCache::EntryCharge(const InferResponse& response) {
  size_t charge = sizeof(Entry) + kPerEntryOverhead + response.model_name.size() +
                  response.model_version.size();
  for (const Parameters::Entry& parameter : response.parameters) {
    charge += sizeof(Parameters::Entry) + parameter.first.size();
    if (const auto* s = std::get_if<std::string>(&parameter.second)) charge += s->size();
  }
  for (const Tensor& output : response.outputs) {
    charge += sizeof(Tensor) + output.name.size() + AlignUp(output.data.size());
    // Shapes beyond the inline capacity live on the heap.
    if (output.shape.size() > 6) charge += output.shape.size() * sizeof(int64_t);
  }
  return charge;
}

std::optional<InferResponse> ResponseCache::Lookup(const CacheKey& key) {
  std::shared_ptr<const Entry> entry;
  {
    Shard& shard = ShardFor(key);
    absl::MutexLock lock(&shard.mu);
    auto it = shard.index.find(key);
    if (it != shard.index.end()) {
      shard.lru.splice(shard.lru.begin(), shard.lru, it->second);
      entry = it->second->entry;
    }
  }
  if (entry == nullptr) {
    misses_.fetch_add(1, std::memory_order_relaxed);
    return std::nullopt;
  }
  hits_.fetch_add(1, std::memory_order_relaxed);

  InferResponse response;
  response.model_name = entry->model_name;
  response.model_version = entry->model_version;
  response.parameters = entry->parameters;
  response.outputs.reserve(entry->outputs.size());
  for (const Tensor& cached : entry->outputs) {
    Tensor& output = response.outputs.emplace_back(cached);
    output.holder = entry;  // Keeps the bytes alive past an eviction.
  }
  return response;
}

void ResponseCache::Insert(const CacheKey& key, const InferResponse& response) {
  const size_t charge = EntryCharge(response);
  if (charge > shard_capacity_) return;

  // Build and copy before taking the lock.
  auto entry = std::make_shared<Entry>();
  entry->model_name = response.model_name;
  entry->model_version = response.model_version;
  entry->parameters = response.parameters;
  entry->charge = charge;
  size_t total = 0;
  for (const Tensor& output : response.outputs) total += AlignUp(output.data.size());
  if (total > 0) entry->bytes = std::make_unique_for_overwrite<std::byte[]>(total);
  entry->outputs.reserve(response.outputs.size());
  size_t offset = 0;
  for (const Tensor& output : response.outputs) {
    Tensor& copy = entry->outputs.emplace_back();
    copy.name = output.name;
    copy.type = output.type;
    copy.shape = output.shape;
    if (!output.data.empty()) {
      std::memcpy(entry->bytes.get() + offset, output.data.data(), output.data.size());
      copy.data = {entry->bytes.get() + offset, output.data.size()};
    }
    offset += AlignUp(output.data.size());
  }

  Shard::List dropped;  // Freed after the lock is released.
  size_t evicted = 0;
  {
    Shard& shard = ShardFor(key);
    absl::MutexLock lock(&shard.mu);
    auto it = shard.index.find(key);
    if (it != shard.index.end()) {
      shard.Unlink(it->second, &dropped, bytes_, entries_);  // Replace: the newer answer wins.
    }
    shard.lru.push_front(Shard::Item{key, std::move(entry)});
    shard.index.emplace(key, shard.lru.begin());
    shard.bytes += charge;
    bytes_.fetch_add(charge, std::memory_order_relaxed);
    entries_.fetch_add(1, std::memory_order_relaxed);
    // The new entry fits on its own (charge <= capacity), so this stops
    // before reaching it.
    while (shard.bytes > shard_capacity_) {
      shard.Unlink(std::prev(shard.lru.end()), &dropped, bytes_, entries_);
      ++evicted;
    }
  }
  insertions_.fetch_add(1, std::memory_order_relaxed);
  if (evicted > 0) evictions_.fetch_add(evicted, std::memory_order_relaxed);
}

template <typename Match>
size_t ResponseCache::EraseIf(Match match) {
  size_t erased = 0;
  for (size_t s = 0; s < num_shards_; ++s) {
    Shard& shard = shards_[s];
    Shard::List dropped;  // Freed after the lock is released.
    {
      absl::MutexLock lock(&shard.mu);
      for (auto it = shard.lru.begin(); it != shard.lru.end();) {
        auto next = std::next(it);
        if (match(*it->entry)) {
          shard.Unlink(it, &dropped, bytes_, entries_);
          ++erased;
        }
        it = next;
      }
    }
  }
  return erased;
}

size_t ResponseCache::EraseModel(std::string_view model_name) {
  return EraseIf([&](const Entry& entry) { return entry.model_name == model_name; });
}

size_t ResponseCache::EraseVersion(std::string_view model_name, std::string_view model_version) {
  return EraseIf([&](const Entry& entry) {
    return entry.model_name == model_name && entry.model_version == model_version;
  });
}

void ResponseCache::Clear() {
  for (size_t s = 0; s < num_shards_; ++s) {
    Shard& shard = shards_[s];
    Shard::List dropped;  // Freed after the lock is released.
    {
      absl::MutexLock lock(&shard.mu);
      dropped.swap(shard.lru);
      shard.index.clear();
      bytes_.fetch_sub(shard.bytes, std::memory_order_relaxed);
      entries_.fetch_sub(dropped.size(), std::memory_order_relaxed);
      shard.bytes = 0;
    }
  }
}

ResponseCache::Stats ResponseCache::GetStats() const {
  Stats stats;
  stats.hits = hits_.load(std::memory_order_relaxed);
  stats.misses = misses_.load(std::memory_order_relaxed);
  stats.insertions = insertions_.load(std::memory_order_relaxed);
  stats.evictions = evictions_.load(std::memory_order_relaxed);
  stats.bytes = bytes_.load(std::memory_order_relaxed);
  stats.entries = entries_.load(std::memory_order_relaxed);
  return stats;
}

}  // namespace ortserve::router
