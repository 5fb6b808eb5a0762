// SPDX-License-Identifier: Apache-2.0
#include "generation/decoder_model.h"

#include <algorithm>
#include <cstring>

#include "core/status.h"
#include "core/strings.h"

namespace ortserve::generation {

Tensor BorrowedTensor(const std::string& name, DataType type, Shape shape, const void* data, size_t bytes) {
  Tensor t;
  t.name = name;
  t.type = type;
  t.shape = std::move(shape);
  t.data = std::span<const std::byte>(static_cast<const std::byte*>(data), bytes);
  return t;
}

size_t SequenceState::kv_bytes() const {
  size_t total = 0;
  for (const Tensor& t : kv) total += t.data.size();
  return total;
}

absl::StatusOr<std::unique_ptr<DecoderModel>> DecoderModel::Create(std::shared_ptr<backend::Session> session) {
  const backend::ModelSignature& sig = session->signature();
  std::unique_ptr<DecoderModel> m(new DecoderModel());
  auto need_input = [&](const std::string& name, DataType type, size_t rank) -> absl::StatusOr<const backend::TensorSpec*> {
    const backend::TensorSpec* spec = sig.FindInput(name);
    if (spec == nullptr) return absl::InvalidArgumentError(StrCat("decoder model: no input '", name, "'"));
    if (spec->type != type || spec->dims.size() != rank) {
      return absl::InvalidArgumentError(StrCat("decoder model: input '", name, "' must be ", DataTypeName(type),
                                               " of rank ", rank));
    }
    return spec;
  };
  RETURN_IF_ERROR(need_input("input_ids", DataType::kInt64, 2).status());
  RETURN_IF_ERROR(need_input("attention_mask", DataType::kInt64, 2).status());
  if (sig.FindInput("position_ids") != nullptr) {
    RETURN_IF_ERROR(need_input("position_ids", DataType::kInt64, 2).status());
    m->has_position_ids_ = true;
  }
  const backend::TensorSpec* logits = sig.FindOutput("logits");
  if (logits == nullptr || logits->type != DataType::kFp32 || logits->dims.size() != 3) {
    return absl::InvalidArgumentError("decoder model: needs an FP32 output 'logits' of rank 3");
  }
  m->vocab_size_ = logits->dims[2];
  m->output_names_.push_back("logits");
  for (int32_t i = 0;; ++i) {
    const std::string key = StrCat("past_key_values.", i, ".key");
    if (sig.FindInput(key) == nullptr) break;
    if (i >= 1024) return absl::InvalidArgumentError("decoder model: more than 1024 layers");
    for (const char* kind : {"key", "value"}) {
      const std::string past = StrCat("past_key_values.", i, ".", kind);
      const std::string present = StrCat("present.", i, ".", kind);
      ASSIGN_OR_RETURN(const backend::TensorSpec* spec, need_input(past, DataType::kFp32, 4));
      if (spec->dims[1] <= 0 || spec->dims[3] <= 0) {
        return absl::InvalidArgumentError(StrCat("decoder model: '", past, "' needs fixed heads and head_dim"));
      }
      if (m->num_heads_ == 0) {
        m->num_heads_ = spec->dims[1];
        m->head_dim_ = spec->dims[3];
      } else if (spec->dims[1] != m->num_heads_ || spec->dims[3] != m->head_dim_) {
        return absl::InvalidArgumentError(StrCat("decoder model: '", past, "' differs in heads or head_dim"));
      }
      if (sig.FindOutput(present) == nullptr) {
        return absl::InvalidArgumentError(StrCat("decoder model: no output '", present, "'"));
      }
      m->past_names_.push_back(past);
      m->output_names_.push_back(present);
    }
    m->num_layers_ = i + 1;
  }
  if (m->num_layers_ == 0) return absl::InvalidArgumentError("decoder model: no input 'past_key_values.0.key'");
  m->session_ = std::move(session);
  return m;
}

absl::Status DecoderModel::Step(std::span<SequenceState* const> batch, std::vector<float>* logits_out) const {
  const int64_t b_size = static_cast<int64_t>(batch.size());
  if (b_size == 0) return absl::OkStatus();
  int64_t max_past = 0, max_new = 0;
  for (const SequenceState* s : batch) {
    if (s->pending() <= 0) return absl::InvalidArgumentError("decoder step: a sequence has no pending token");
    if (!s->kv.empty() && s->kv.size() != past_names_.size()) {
      return absl::InvalidArgumentError("decoder step: a sequence's cache has the wrong number of tensors");
    }
    max_past = std::max(max_past, s->cached);
    max_new = std::max(max_new, s->pending());
  }
  const int64_t total = max_past + max_new;
  // Inputs: ids and positions [B, S], mask [B, P + S].
  std::vector<int64_t> ids(b_size * max_new, 0), positions(b_size * max_new, 0), mask(b_size * total, 0);
  for (int64_t b = 0; b < b_size; ++b) {
    const SequenceState& s = *batch[b];
    const int64_t n = s.pending();
    for (int64_t j = 0; j < s.cached; ++j) mask[b * total + j] = 1;
    for (int64_t i = 0; i < max_new; ++i) {
      const int64_t k = std::min(i, n - 1);  // padding repeats the last position
      ids[b * max_new + i] = i < n ? s.tokens[s.cached + i] : 0;
      positions[b * max_new + i] = s.cached + k;
      if (i < n) mask[b * total + max_past + i] = 1;
    }
  }
  std::vector<Tensor> inputs;
  inputs.reserve(3 + past_names_.size());
  inputs.push_back(MakeTensor<int64_t>("input_ids", DataType::kInt64, {b_size, max_new}, ids));
  inputs.push_back(MakeTensor<int64_t>("attention_mask", DataType::kInt64, {b_size, total}, mask));
  if (has_position_ids_) {
    inputs.push_back(MakeTensor<int64_t>("position_ids", DataType::kInt64, {b_size, max_new}, positions));
  }
  for (size_t t = 0; t < past_names_.size(); ++t) {
    if (b_size == 1 && !batch[0]->kv.empty()) {
      Tensor past = batch[0]->kv[t];  // shares the previous step's output
      past.name = past_names_[t];
      inputs.push_back(std::move(past));
      continue;
    }
    std::vector<std::byte> bytes(static_cast<size_t>(b_size * num_heads_ * max_past * head_dim_) * sizeof(float));
    auto* dst = reinterpret_cast<float*>(bytes.data());
    for (int64_t b = 0; b < b_size; ++b) {
      const SequenceState& s = *batch[b];
      if (s.cached == 0 || s.kv.empty()) continue;
      const float* src = reinterpret_cast<const float*>(s.kv[t].data.data());
      for (int64_t h = 0; h < num_heads_; ++h) {
        std::memcpy(dst + ((b * num_heads_ + h) * max_past) * head_dim_, src + h * s.cached * head_dim_,
                    static_cast<size_t>(s.cached * head_dim_) * sizeof(float));
      }
    }
    inputs.push_back(MakeOwnedTensor(past_names_[t], DataType::kFp32, {b_size, num_heads_, max_past, head_dim_},
                                     std::move(bytes)));
  }
  std::vector<Tensor> outputs;
  RETURN_IF_ERROR(session_->Run(inputs, output_names_, &outputs));
  if (outputs.size() != output_names_.size()) return absl::InternalError("decoder step: missing outputs");
  RETURN_IF_ERROR(TakeLogits(batch, outputs[0], max_new, logits_out));
  for (size_t t = 0; t < past_names_.size(); ++t) RETURN_IF_ERROR(CheckPresent(outputs[1 + t], 1 + t, b_size, total));
  for (int64_t b = 0; b < b_size; ++b) {
    SequenceState& s = *batch[b];
    const int64_t n = s.pending();
    const int64_t len = s.cached + n;
    s.kv.resize(past_names_.size());
    for (size_t t = 0; t < past_names_.size(); ++t) {
      const Tensor& present = outputs[1 + t];
      if (b_size == 1) {
        s.kv[t] = present;  // [1, H, total, D] is exactly this sequence's cache
        continue;
      }
      // Row b without the padding: [0, cached) and [P, P + n) of the sequence axis.
      std::vector<std::byte> bytes(static_cast<size_t>(num_heads_ * len * head_dim_) * sizeof(float));
      auto* dst = reinterpret_cast<float*>(bytes.data());
      const float* src = reinterpret_cast<const float*>(present.data.data()) + b * num_heads_ * total * head_dim_;
      for (int64_t h = 0; h < num_heads_; ++h) {
        const float* head = src + h * total * head_dim_;
        float* out = dst + h * len * head_dim_;
        std::memcpy(out, head, static_cast<size_t>(s.cached * head_dim_) * sizeof(float));
        std::memcpy(out + s.cached * head_dim_, head + max_past * head_dim_,
                    static_cast<size_t>(n * head_dim_) * sizeof(float));
      }
      s.kv[t] = MakeOwnedTensor(output_names_[1 + t], DataType::kFp32, {1, num_heads_, len, head_dim_},
                                std::move(bytes));
    }
    s.cached = len;
  }
  return absl::OkStatus();
}

}  // namespace ortserve::generation

namespace ortserve::generation {

absl::Status DecoderModel::CheckPresent(const Tensor& present, size_t index, int64_t b_size, int64_t total) const {
  if (present.type != DataType::kFp32 || present.shape.size() != 4 || present.shape[0] != b_size ||
      present.shape[1] != num_heads_ || present.shape[2] != total || present.shape[3] != head_dim_ ||
      present.data.size() != static_cast<size_t>(b_size * num_heads_ * total * head_dim_) * sizeof(float)) {
    return absl::InternalError(StrCat("decoder step: '", output_names_[index], "' of an unexpected shape"));
  }
  return absl::OkStatus();
}

absl::Status DecoderModel::TakeLogits(std::span<SequenceState* const> batch, const Tensor& logits, int64_t max_new,
                                      std::vector<float>* logits_out) const {
  const int64_t b_size = static_cast<int64_t>(batch.size());
  if (logits.type != DataType::kFp32 || logits.shape.size() != 3 || logits.shape[0] != b_size ||
      logits.shape[1] != max_new || logits.shape[2] <= 0 ||
      logits.data.size() != static_cast<size_t>(b_size * max_new * logits.shape[2]) * sizeof(float)) {
    return absl::InternalError("decoder step: logits of an unexpected shape");
  }
  const int64_t vocab = logits.shape[2];
  logits_out->resize(static_cast<size_t>(b_size * vocab));
  const float* l = reinterpret_cast<const float*>(logits.data.data());
  for (int64_t b = 0; b < b_size; ++b) {
    const int64_t last = batch[b]->pending() - 1;
    std::memcpy(logits_out->data() + b * vocab, l + (b * max_new + last) * vocab, vocab * sizeof(float));
  }
  return absl::OkStatus();
}

absl::Status DecoderModel::StepPaged(std::span<SequenceState* const> batch, KvBlockPool& pool, Scratch* scratch,
                                     std::vector<float>* logits_out) const {
  const int64_t b_size = static_cast<int64_t>(batch.size());
  if (b_size == 0) return absl::OkStatus();
  const int64_t bt = pool.block_tokens();
  int64_t max_past = 0, max_new = 0;
  for (const SequenceState* s : batch) {
    if (s->pending() <= 0) return absl::InvalidArgumentError("decoder step: a sequence has no pending token");
    if (static_cast<int64_t>(s->blocks.size()) * bt < static_cast<int64_t>(s->tokens.size())) {
      return absl::InvalidArgumentError("decoder step: a sequence's cache blocks are too few for its tokens");
    }
    max_past = std::max(max_past, s->cached);
    max_new = std::max(max_new, s->pending());
  }
  const int64_t total = max_past + max_new;
  Scratch& sc = *scratch;
  sc.ids.assign(static_cast<size_t>(b_size * max_new), 0);
  sc.positions.assign(static_cast<size_t>(b_size * max_new), 0);
  sc.mask.assign(static_cast<size_t>(b_size * total), 0);
  for (int64_t b = 0; b < b_size; ++b) {
    const SequenceState& s = *batch[b];
    const int64_t n = s.pending();
    for (int64_t j = 0; j < s.cached; ++j) sc.mask[b * total + j] = 1;
    for (int64_t i = 0; i < max_new; ++i) {
      sc.ids[b * max_new + i] = i < n ? s.tokens[s.cached + i] : 0;
      sc.positions[b * max_new + i] = s.cached + std::min(i, n - 1);  // padding repeats the last position
      if (i < n) sc.mask[b * total + max_past + i] = 1;
    }
  }
  // The past of every cache tensor, gathered from the blocks and padded to max_past.
  const int64_t tensor_floats = b_size * num_heads_ * max_past * head_dim_;
  const int64_t tensors = static_cast<int64_t>(past_names_.size());
  if (sc.past.size() < static_cast<size_t>(tensors * tensor_floats)) sc.past.resize(tensors * tensor_floats);
  for (int64_t t = 0; t < tensors; ++t) {
    float* dst_t = sc.past.data() + t * tensor_floats;
    for (int64_t b = 0; b < b_size; ++b) {
      const SequenceState& s = *batch[b];
      for (int64_t h = 0; h < num_heads_; ++h) {
        float* dst = dst_t + (b * num_heads_ + h) * max_past * head_dim_;
        for (int64_t pos = 0; pos < s.cached; pos += bt) {
          const int64_t rows = std::min(bt, s.cached - pos);
          const float* src = pool.Block(s.blocks[pos / bt]) + (t * num_heads_ + h) * bt * head_dim_;
          std::memcpy(dst + pos * head_dim_, src, static_cast<size_t>(rows * head_dim_) * sizeof(float));
        }
        // Padding rows stay as they were: the mask hides them.
      }
    }
  }
  static const std::string kIds = "input_ids", kMask = "attention_mask", kPositions = "position_ids";
  sc.inputs.clear();
  sc.inputs.push_back(BorrowedTensor(kIds, DataType::kInt64, {b_size, max_new}, sc.ids.data(), sc.ids.size() * 8));
  sc.inputs.push_back(BorrowedTensor(kMask, DataType::kInt64, {b_size, total}, sc.mask.data(), sc.mask.size() * 8));
  if (has_position_ids_) {
    sc.inputs.push_back(
        BorrowedTensor(kPositions, DataType::kInt64, {b_size, max_new}, sc.positions.data(), sc.positions.size() * 8));
  }
  for (int64_t t = 0; t < tensors; ++t) {
    sc.inputs.push_back(BorrowedTensor(past_names_[t], DataType::kFp32, {b_size, num_heads_, max_past, head_dim_},
                             sc.past.data() + t * tensor_floats, static_cast<size_t>(tensor_floats) * sizeof(float)));
  }
  sc.outputs.clear();
  RETURN_IF_ERROR(session_->Run(sc.inputs, output_names_, &sc.outputs));
  if (sc.outputs.size() != output_names_.size()) return absl::InternalError("decoder step: missing outputs");
  RETURN_IF_ERROR(TakeLogits(batch, sc.outputs[0], max_new, logits_out));
  for (int64_t t = 0; t < tensors; ++t) {
    RETURN_IF_ERROR(CheckPresent(sc.outputs[1 + t], static_cast<size_t>(1 + t), b_size, total));
  }
  // Only the new rows go back: [max_past, max_past + n) of the sequence axis
  // lands at [cached, cached + n) of the sequence's blocks.
  for (int64_t b = 0; b < b_size; ++b) {
    SequenceState& s = *batch[b];
    const int64_t n = s.pending();
    for (int64_t t = 0; t < tensors; ++t) {
      const float* present = reinterpret_cast<const float*>(sc.outputs[1 + t].data.data()) +
                             b * num_heads_ * total * head_dim_;
      for (int64_t h = 0; h < num_heads_; ++h) {
        const float* head = present + (h * total + max_past) * head_dim_;
        for (int64_t i = 0; i < n; ++i) {
          const int64_t pos = s.cached + i;
          float* dst = pool.Block(s.blocks[pos / bt]) + ((t * num_heads_ + h) * bt + pos % bt) * head_dim_;
          std::memcpy(dst, head + i * head_dim_, static_cast<size_t>(head_dim_) * sizeof(float));
        }
      }
    }
    s.cached += n;
  }
  sc.outputs.clear();  // the engine's buffers go back now, not at the next step
  return absl::OkStatus();
}

}  // namespace ortserve::generation
