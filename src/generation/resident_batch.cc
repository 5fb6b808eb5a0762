// SPDX-License-Identifier: Apache-2.0
#include "generation/resident_batch.h"

#include <algorithm>
#include <cstring>

#include "core/status.h"
#include "core/strings.h"

namespace ortserve::generation {

void ResidentBatch::Clear() {
  rows_.clear();
  kv_.clear();
  width_ = 0;
}

// The resident tensors are either the rebuild buffers or the present tensors
// the engine returned from the last step, which only kv_ holds (the holder
// is not shared): both may be written between steps.
float* ResidentBatch::TensorData(size_t t) const {
  return const_cast<float*>(reinterpret_cast<const float*>(kv_[t].data.data()));
}

void ResidentBatch::Rebuild(const DecoderModel& model, std::span<SequenceState* const> batch,
                            const KvBlockPool& pool, int64_t max_len) {
  ++rebuilds_;
  const int64_t n_rows = static_cast<int64_t>(batch.size());
  const int64_t heads = model.num_heads(), dim = model.head_dim(), bt = pool.block_tokens();
  const size_t tensors = model.past_names_.size();
  const size_t floats = static_cast<size_t>(n_rows * heads * max_len * dim);
  std::vector<std::vector<float>>& buffers =
      options_.rebuild_buffers != nullptr ? *options_.rebuild_buffers : own_rebuild_;
  if (buffers.size() < tensors) buffers.resize(tensors);
  kv_.clear();
  for (size_t t = 0; t < tensors; ++t) {
    if (buffers[t].size() < floats) buffers[t].resize(floats);
    float* dst_t = buffers[t].data();
    for (int64_t r = 0; r < n_rows; ++r) {
      const SequenceState& s = *batch[r];
      for (int64_t h = 0; h < heads; ++h) {
        float* dst = dst_t + (r * heads + h) * max_len * dim;
        for (int64_t pos = 0; pos < s.cached; pos += bt) {
          const int64_t n = std::min(bt, s.cached - pos);
          const float* src = pool.Block(s.blocks[pos / bt]) + (static_cast<int64_t>(t) * heads + h) * bt * dim;
          std::memcpy(dst + pos * dim, src, static_cast<size_t>(n * dim) * sizeof(float));
        }
        // Columns [cached, max_len) keep what the buffer held: finite
        // floats (zeros, or an earlier cache), hidden by the mask.
      }
    }
    kv_.push_back(BorrowedTensor(model.past_names_[t], DataType::kFp32, {n_rows, heads, max_len, dim}, dst_t,
                       floats * sizeof(float)));
  }
  rows_.assign(static_cast<size_t>(n_rows), Row{});
  for (int64_t r = 0; r < n_rows; ++r) {
    rows_[r] = Row{batch[r], batch[r]->cached, batch[r]->cached, max_len};
    row_of_[r] = r;
  }
  width_ = max_len;
}

void ResidentBatch::PlaceInRow(const DecoderModel& model, SequenceState* s, int64_t r, const KvBlockPool& pool) {
  ++joins_in_place_;
  const int64_t heads = model.num_heads(), dim = model.head_dim(), bt = pool.block_tokens();
  const int64_t start = width_ - s->cached;  // the sequence ends where every row ends
  for (size_t t = 0; t < kv_.size(); ++t) {
    float* row = TensorData(t) + r * heads * width_ * dim;
    for (int64_t h = 0; h < heads; ++h) {
      float* dst = row + (h * width_ + start) * dim;
      for (int64_t pos = 0; pos < s->cached; pos += bt) {
        const int64_t n = std::min(bt, s->cached - pos);
        const float* src = pool.Block(s->blocks[pos / bt]) + (static_cast<int64_t>(t) * heads + h) * bt * dim;
        std::memcpy(dst + pos * dim, src, static_cast<size_t>(n * dim) * sizeof(float));
      }
    }
  }
  rows_[r] = Row{s, s->cached, 0, start};
}

absl::Status ResidentBatch::Step(const DecoderModel& model, std::span<SequenceState* const> batch,
                                 KvBlockPool& pool, std::vector<float>* logits_out) {
  const int64_t b_size = static_cast<int64_t>(batch.size());
  if (b_size == 0) {
    Clear();
    return absl::OkStatus();
  }
  const int64_t bt = pool.block_tokens();
  int64_t max_len = 0;
  for (const SequenceState* s : batch) {
    if (s->pending() != 1 || s->cached <= 0) {
      return absl::InvalidArgumentError("decode step: a sequence has other than one pending token");
    }
    if (static_cast<int64_t>(s->blocks.size()) * bt < static_cast<int64_t>(s->tokens.size())) {
      return absl::InvalidArgumentError("decode step: a sequence's cache blocks are too few for its tokens");
    }
    max_len = std::max(max_len, s->cached);
  }
  // Who is still in their row; everyone else joins.
  claimed_.assign(rows_.size(), 0);
  row_of_.assign(static_cast<size_t>(b_size), -1);
  joiners_.clear();
  bool joiner_too_long = false;
  for (int64_t b = 0; b < b_size; ++b) {
    SequenceState* s = batch[b];
    const int64_t r = s->resident_row;
    if (r >= 0 && r < rows() && rows_[r].seq == s && rows_[r].cached == s->cached && !claimed_[r]) {
      claimed_[r] = 1;
      row_of_[b] = r;
    } else {
      s->resident_row = -1;
      joiners_.push_back(b);
      joiner_too_long = joiner_too_long || s->cached > width_;
    }
  }
  int64_t free_rows = 0;
  for (size_t r = 0; r < rows_.size(); ++r) {
    if (!claimed_[r]) {
      rows_[r].seq = nullptr;
      ++free_rows;
    }
  }
  const int64_t joiners = static_cast<int64_t>(joiners_.size());
  const int64_t idle_after = free_rows - joiners;
  if (kv_.empty() || joiners > free_rows || joiner_too_long || width_ >= max_len + options_.slack_tokens ||
      idle_after * 4 > rows()) {
    Rebuild(model, batch, pool, max_len);
  } else {
    size_t r = 0;
    for (int64_t b : joiners_) {
      while (rows_[r].seq != nullptr) ++r;
      PlaceInRow(model, batch[b], static_cast<int64_t>(r), pool);
      row_of_[b] = static_cast<int64_t>(r);
    }
  }

  // Inputs: one token per row; a free row runs token 0 at position 0 and
  // sees only itself (its outputs are never read).
  const int64_t n_rows = rows(), width = width_, total = width + 1;
  const int64_t heads = model.num_heads(), dim = model.head_dim();
  ids_.assign(static_cast<size_t>(n_rows), 0);
  positions_.assign(static_cast<size_t>(n_rows), 0);
  mask_.assign(static_cast<size_t>(n_rows * total), 1);
  for (int64_t r = 0; r < n_rows; ++r) {
    const Row& row = rows_[r];
    int64_t* m = mask_.data() + r * total;
    if (row.seq == nullptr) {
      std::fill(m, m + width, 0);
      continue;
    }
    ids_[r] = row.seq->tokens[row.cached];
    positions_[r] = row.cached;
    std::fill(m + row.hole_begin, m + row.hole_end, 0);
  }
  static const std::string kIds = "input_ids", kMask = "attention_mask", kPositions = "position_ids";
  inputs_.clear();
  inputs_.push_back(BorrowedTensor(kIds, DataType::kInt64, {n_rows, 1}, ids_.data(), ids_.size() * sizeof(int64_t)));
  inputs_.push_back(
      BorrowedTensor(kMask, DataType::kInt64, {n_rows, total}, mask_.data(), mask_.size() * sizeof(int64_t)));
  if (model.has_position_ids_) {
    inputs_.push_back(BorrowedTensor(kPositions, DataType::kInt64, {n_rows, 1}, positions_.data(),
                                     positions_.size() * sizeof(int64_t)));
  }
  for (size_t t = 0; t < kv_.size(); ++t) {
    Tensor past = kv_[t];  // a view; kv_ keeps the memory
    past.name = model.past_names_[t];
    inputs_.push_back(std::move(past));
  }
  outputs_.clear();
  absl::Status status = model.session_->Run(inputs_, model.output_names_, &outputs_);
  if (status.ok() && outputs_.size() != model.output_names_.size()) {
    status = absl::InternalError("decoder step: missing outputs");
  }
  const Tensor* logits = status.ok() ? &outputs_[0] : nullptr;
  if (status.ok() && (logits->type != DataType::kFp32 || logits->shape.size() != 3 || logits->shape[0] != n_rows ||
                      logits->shape[1] != 1 || logits->shape[2] <= 0 ||
                      logits->data.size() != static_cast<size_t>(n_rows * logits->shape[2]) * sizeof(float))) {
    status = absl::InternalError("decoder step: logits of an unexpected shape");
  }
  for (size_t t = 0; status.ok() && t < kv_.size(); ++t) {
    status = model.CheckPresent(outputs_[1 + t], 1 + t, n_rows, total);
  }
  if (!status.ok()) {
    outputs_.clear();
    Clear();
    return status;
  }
  const int64_t vocab = logits->shape[2];
  logits_out->resize(static_cast<size_t>(b_size * vocab));
  const float* l = reinterpret_cast<const float*>(logits->data.data());
  for (int64_t b = 0; b < b_size; ++b) {
    std::memcpy(logits_out->data() + b * vocab, l + row_of_[b] * vocab, static_cast<size_t>(vocab) * sizeof(float));
  }
  // The new column goes to each sequence's blocks (the cache of record);
  // the present tensors become the resident past as they are.
  for (size_t t = 0; t < kv_.size(); ++t) {
    const float* present = reinterpret_cast<const float*>(outputs_[1 + t].data.data());
    for (int64_t r = 0; r < n_rows; ++r) {
      Row& row = rows_[r];
      if (row.seq == nullptr) continue;
      const int64_t pos = row.cached;
      float* block = pool.Block(row.seq->blocks[pos / bt]);
      for (int64_t h = 0; h < heads; ++h) {
        std::memcpy(block + ((static_cast<int64_t>(t) * heads + h) * bt + pos % bt) * dim,
                    present + ((r * heads + h) * total + width) * dim, static_cast<size_t>(dim) * sizeof(float));
      }
    }
    kv_[t] = std::move(outputs_[1 + t]);
  }
  outputs_.clear();
  width_ = total;
  for (int64_t r = 0; r < n_rows; ++r) {
    Row& row = rows_[r];
    if (row.seq == nullptr) continue;
    row.seq->cached += 1;
    row.seq->resident_row = r;
    row.cached += 1;
  }
  return absl::OkStatus();
}

}  // namespace ortserve::generation
