// SPDX-License-Identifier: Apache-2.0
#include "generation/kv_block_pool.h"

#include "core/strings.h"

namespace ortserve::generation {

absl::StatusOr<std::unique_ptr<KvBlockPool>> KvBlockPool::Create(const Options& options) {
  if (options.num_layers <= 0 || options.num_heads <= 0 || options.head_dim <= 0 || options.block_tokens <= 0) {
    return absl::InvalidArgumentError("kv pool: layers, heads, head_dim and block_tokens must be positive");
  }
  int64_t floats = 2 * static_cast<int64_t>(options.num_layers);
  if (__builtin_mul_overflow(floats, options.num_heads, &floats) ||
      __builtin_mul_overflow(floats, options.block_tokens, &floats) ||
      __builtin_mul_overflow(floats, options.head_dim, &floats) || floats > (int64_t{1} << 40)) {
    return absl::InvalidArgumentError("kv pool: a block's size overflows");
  }
  const int64_t block_bytes = floats * static_cast<int64_t>(sizeof(float));
  const int64_t blocks = options.budget_bytes / block_bytes;
  if (blocks < 1) {
    return absl::InvalidArgumentError(StrCat("generation.kv_cache_bytes (", options.budget_bytes,
                                             ") holds no block of ", block_bytes, " bytes (",
                                             options.block_tokens, " tokens)"));
  }
  if (blocks > (int64_t{1} << 30)) return absl::InvalidArgumentError("generation.kv_cache_bytes: too many blocks");
  std::unique_ptr<KvBlockPool> pool(new KvBlockPool());
  pool->block_tokens_ = options.block_tokens;
  pool->block_floats_ = floats;
  pool->total_blocks_ = blocks;
  pool->memory_.reset(new (std::nothrow) float[static_cast<size_t>(blocks * floats)]);
  if (pool->memory_ == nullptr) {
    return absl::ResourceExhaustedError(StrCat("kv pool: cannot reserve ", blocks * block_bytes, " bytes"));
  }
  pool->free_.reserve(static_cast<size_t>(blocks));
  for (int64_t b = blocks - 1; b >= 0; --b) pool->free_.push_back(static_cast<int32_t>(b));
  return pool;
}

bool KvBlockPool::Allocate(int64_t count, std::vector<int32_t>* blocks) {
  if (count < 0 || count > static_cast<int64_t>(free_.size())) return false;
  for (int64_t i = 0; i < count; ++i) {
    blocks->push_back(free_.back());
    free_.pop_back();
  }
  used_.fetch_add(count, std::memory_order_relaxed);
  return true;
}

void KvBlockPool::Free(std::vector<int32_t>* blocks) {
  for (int32_t b : *blocks) free_.push_back(b);
  used_.fetch_sub(static_cast<int64_t>(blocks->size()), std::memory_order_relaxed);
  blocks->clear();
}

}  // namespace ortserve::generation
