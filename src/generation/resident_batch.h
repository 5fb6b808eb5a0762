// SPDX-License-Identifier: Apache-2.0
// The decode step of continuous batching without a per-step cache copy: the
// running sequences' padded past stays resident between steps, each
// sequence in a row (slot) of its own, so the present tensors one step
// returns are the next step's past, as in a plain ONNX Runtime decode loop.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "core/tensor.h"
#include "generation/decoder_model.h"
#include "generation/kv_block_pool.h"

namespace ortserve::generation {

// Layout: 2 * layers tensors [rows, heads, width, head_dim] FP32 (the
// model's past). Row r belongs to one sequence (or is free); its cache
// occupies columns [0, hole_begin) and [hole_end, width), the hole between
// is padding the attention mask hides. A step appends one column (the
// engine's present is past + 1), so a sequence that stays costs no copy.
// A sequence that joins takes a free row in place: its past (from its pool
// blocks) is copied once into the last columns of that row, the columns
// before it become its hole. The tensors are rebuilt (each sequence's past
// gathered from its blocks, no holes) only when a joiner finds no free row
// or is longer than the width, when the width runs `slack_tokens` past the
// longest sequence (holes cost copying and attention work), or when more than a quarter
// of the rows are free (free rows cost model work).
//
// The pool blocks stay the cache of record: each step writes the new
// position's key and value (one column) back to its sequence's blocks, so
// admission, the memory budget and freeing by blocks are the pool's as
// before. The resident tensors are a second copy of the running sequences'
// past: at most max_batch_sequences x (max_context_tokens + slack_tokens)
// x kv_bytes_per_token, twice while a step runs (past and present).
//
// Not thread-safe: runs only on the decode loop thread.
class ResidentBatch {
 public:
  struct Options {
    // Width past the longest sequence that makes a rebuild. A rebuild
    // copies each sequence's past (L tokens on average) once; padding costs
    // each step about slack / 2 columns per row in the engine's copy of the
    // past into present and in attention: sqrt(2 L) balances the two, 10 to
    // 22 for contexts of 50 to 250 tokens.
    int64_t slack_tokens = 16;
    // Where a rebuild gathers the past (grown to the largest rebuild, kept):
    // the batch's own buffers when null. Batches stepped one after another
    // may share them, since a step leaves its batch on the engine's present
    // tensors, never on these.
    std::vector<std::vector<float>>* rebuild_buffers = nullptr;
  };
  ResidentBatch() = default;
  explicit ResidentBatch(Options options) : options_(options) {}

  // One decode step: every sequence in `batch` has exactly one pending
  // token and its past in its `pool` blocks (SequenceState::blocks cover
  // its tokens); afterwards `logits` ([batch.size(), vocab], reused) holds
  // each one's next-token logits in `batch` order and its cache (blocks
  // and row) holds all of its tokens. A sequence stepped by an earlier call
  // and still in its row is not copied; rows whose sequence is not in
  // `batch` become free. InvalidArgument for a sequence with other than
  // one pending token or too few blocks; Internal when the engine fails or
  // returns unexpected shapes (the resident tensors are then dropped).
  absl::Status Step(const DecoderModel& model, std::span<SequenceState* const> batch, KvBlockPool& pool,
                    std::vector<float>* logits);

  // Drops the resident tensors (nothing runs).
  void Clear();

  // Whether `s` is in its row here as the last step left it (its next step
  // here copies nothing of it).
  bool Holds(const SequenceState& s) const {
    return s.resident_row >= 0 && s.resident_row < rows() && rows_[s.resident_row].seq == &s &&
           rows_[s.resident_row].cached == s.cached;
  }

  int64_t rows() const { return static_cast<int64_t>(rows_.size()); }
  int64_t width() const { return width_; }
  // Steps that rebuilt the tensors, and sequences that joined a free row in place.
  int64_t rebuilds() const { return rebuilds_; }
  int64_t joins_in_place() const { return joins_in_place_; }

 private:
  struct Row {
    SequenceState* seq = nullptr;  // null: free
    int64_t cached = 0;            // tokens of `seq` in the row
    int64_t hole_begin = 0, hole_end = 0;
  };
  // Rows = `batch` in order, width = the longest past, every past gathered
  // from the blocks into the rebuild buffers (no allocation once grown).
  void Rebuild(const DecoderModel& model, std::span<SequenceState* const> batch, const KvBlockPool& pool,
               int64_t max_len);
  // Copies `s`'s past from its blocks into the last columns of free row `r`.
  void PlaceInRow(const DecoderModel& model, SequenceState* s, int64_t r, const KvBlockPool& pool);
  float* TensorData(size_t t) const;

  Options options_;
  std::vector<Row> rows_;
  int64_t width_ = 0;
  std::vector<Tensor> kv_;                   // the past, 2 * layers tensors (empty: nothing resident)
  std::vector<std::vector<float>> own_rebuild_;  // kv_'s memory right after a rebuild (see Options)
  std::vector<int64_t> ids_, positions_, mask_, row_of_, joiners_;
  std::vector<char> claimed_;
  std::vector<Tensor> inputs_, outputs_;
  int64_t rebuilds_ = 0, joins_in_place_ = 0;
};

}  // namespace ortserve::generation
