// SPDX-License-Identifier: Apache-2.0
// The key/value cache of every running sequence of one model, in a pool of
// fixed-size blocks (paged, as vLLM does) carved out of one budget set in
// the model's config: a sequence holds a list of blocks, not a tensor of its
// own, so memory is bounded by the budget however many sequences come.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"

namespace ortserve::generation {

// Block layout: for each of the 2 * layers cache tensors (key, value per
// layer), each head, `block_tokens` rows of head_dim floats:
//   float offset ((tensor * heads + head) * block_tokens + row) * head_dim.
//
// The memory is reserved (address space) at creation and touched as blocks
// are first written, so an idle model's resident size stays small.
//
// Thread-safety: Allocate/Free/Block are not thread-safe (the model's decode
// loop only); used_blocks()/total_blocks() may be read from any thread.
class KvBlockPool {
 public:
  struct Options {
    int32_t num_layers = 0;
    int64_t num_heads = 0;
    int64_t head_dim = 0;
    int64_t block_tokens = 16;
    int64_t budget_bytes = 0;  // the pool holds floor(budget / block bytes) blocks
  };
  // InvalidArgument when a dimension is not positive, a block's size
  // overflows, or the budget holds no block.
  static absl::StatusOr<std::unique_ptr<KvBlockPool>> Create(const Options& options);

  // Blocks a sequence of `tokens` tokens needs.
  int64_t BlocksFor(int64_t tokens) const { return (tokens + block_tokens_ - 1) / block_tokens_; }
  // `count` free blocks appended to *blocks, or false (nothing taken) when
  // fewer are free.
  bool Allocate(int64_t count, std::vector<int32_t>* blocks);
  // Gives the blocks back; `blocks` is emptied.
  void Free(std::vector<int32_t>* blocks);

  float* Block(int32_t id) { return memory_.get() + static_cast<size_t>(id) * block_floats_; }
  const float* Block(int32_t id) const { return memory_.get() + static_cast<size_t>(id) * block_floats_; }

  int64_t block_tokens() const { return block_tokens_; }
  int64_t block_bytes() const { return block_floats_ * static_cast<int64_t>(sizeof(float)); }
  int64_t total_blocks() const { return total_blocks_; }
  int64_t used_blocks() const { return used_.load(std::memory_order_relaxed); }

 private:
  KvBlockPool() = default;
  int64_t block_tokens_ = 0;
  int64_t block_floats_ = 0;
  int64_t total_blocks_ = 0;
  std::unique_ptr<float[]> memory_;  // not value-initialized: pages come in on first write
  std::vector<int32_t> free_;        // a stack: the most recently freed block is reused first (warm)
  std::atomic<int64_t> used_{0};
};

}  // namespace ortserve::generation
