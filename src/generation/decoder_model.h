// SPDX-License-Identifier: Apache-2.0
// A decoder-only language model exported with a key/value cache, run one step
// at a time over a batch of sequences that may change between steps.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "backend/session.h"
#include "core/tensor.h"
#include "generation/kv_block_pool.h"

namespace ortserve::generation {

class ResidentBatch;

// One sequence's tokens and its cache. A sequence is in no batch by itself:
// any set of sequences can be stepped together, and a sequence can join or
// leave between two steps (what continuous batching needs).
//
// Thread-safety: not thread-safe; stepped by one thread at a time.
struct SequenceState {
  std::vector<int32_t> tokens;  // prompt, then every generated token
  int64_t cached = 0;           // tokens[0, cached) are in `kv`
  // 2 * layers tensors (key, value per layer), each [1, heads, cached,
  // head_dim] FP32; empty before the first step.
  std::vector<Tensor> kv;
  // Paged instead (DecoderModel::StepPaged): the pool blocks holding the
  // cache, enough for every token the sequence may reach.
  std::vector<int32_t> blocks;
  // The row of the ResidentBatch that stepped it last (-1: none); that
  // batch checks it before trusting it.
  int64_t resident_row = -1;

  // Tokens the next step feeds: the prompt on the first (prefill), then the
  // last generated token.
  int64_t pending() const { return static_cast<int64_t>(tokens.size()) - cached; }
  // Bytes the cache holds.
  size_t kv_bytes() const;
};

// The model's tensor layout, as Hugging Face and torch exports name it:
//   input_ids [batch, seq] INT64, attention_mask [batch, past + seq] INT64,
//   position_ids [batch, seq] INT64 (optional),
//   past_key_values.{i}.key / .value [batch, heads, past, head_dim] FP32
//   -> logits [batch, seq, vocab] FP32, present.{i}.key / .value [batch, heads, past + seq, head_dim].
//
// Thread-safety: thread-safe (immutable; the session allows concurrent runs).
// A tensor over memory the caller keeps alive for the run (no holder): the
// decode steps' inputs and past, which live in their scratch.
Tensor BorrowedTensor(const std::string& name, DataType type, Shape shape, const void* data, size_t bytes);

class DecoderModel {
 public:
  // Reads the layout from the session's signature. InvalidArgument naming the
  // tensor when a required one is missing or of the wrong type or rank.
  static absl::StatusOr<std::unique_ptr<DecoderModel>> Create(std::shared_ptr<backend::Session> session);

  // Runs one step: every sequence's pending tokens (at least one each) go
  // through the model in one batch; afterwards each sequence's cache holds
  // all of its tokens and `logits` ([batch.size(), vocab_size()], reused)
  // holds the next-token logits of each. Sequences of different lengths are
  // padded: the attention mask hides the padding, position ids are each
  // sequence's own. A batch of one runs without copying its cache.
  // InvalidArgument for a sequence with nothing pending or past max_positions;
  // Internal when the engine fails.
  absl::Status Step(std::span<SequenceState* const> batch, std::vector<float>* logits) const;

  // Buffers a paged step reuses: after the first steps a step allocates
  // only what the engine returns (its outputs).
  struct Scratch {
    std::vector<int64_t> ids, positions, mask;
    std::vector<float> past;  // the padded past of every cache tensor, one after another
    std::vector<Tensor> inputs, outputs;
  };

  // As Step, with each sequence's cache in `pool` blocks (SequenceState::
  // blocks, which must cover its tokens): the padded past is gathered from
  // the blocks into `scratch`, and only the new positions of each present
  // tensor are written back. InvalidArgument as Step, or when a sequence's
  // blocks are too few.
  absl::Status StepPaged(std::span<SequenceState* const> batch, KvBlockPool& pool, Scratch* scratch,
                         std::vector<float>* logits) const;

  int32_t num_layers() const { return num_layers_; }
  int64_t num_heads() const { return num_heads_; }
  int64_t head_dim() const { return head_dim_; }
  int64_t vocab_size() const { return vocab_size_; }
  // Bytes of cache per token of one sequence.
  int64_t kv_bytes_per_token() const { return 2 * num_layers_ * num_heads_ * head_dim_ * 4; }

 private:
  friend class ResidentBatch;  // runs the session with its own tensors
  DecoderModel() = default;
  // Checks the logits' shape and copies each sequence's last row to `logits_out`.
  absl::Status TakeLogits(std::span<SequenceState* const> batch, const Tensor& logits, int64_t max_new,
                          std::vector<float>* logits_out) const;
  // Checks that present output `index` (1-based among the outputs) is
  // [batch, heads, total, head_dim] FP32 with the bytes that shape implies.
  absl::Status CheckPresent(const Tensor& present, size_t index, int64_t b_size, int64_t total) const;
  std::shared_ptr<backend::Session> session_;
  int32_t num_layers_ = 0;
  int64_t num_heads_ = 0;
  int64_t head_dim_ = 0;
  int64_t vocab_size_ = 0;  // from logits' last dimension; -1 until known
  bool has_position_ids_ = false;
  std::vector<std::string> past_names_;    // 2 * layers, key then value
  std::vector<std::string> output_names_;  // logits, then present key/value per layer
};

}  // namespace ortserve::generation
