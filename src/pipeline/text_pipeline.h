// SPDX-License-Identifier: Apache-2.0
// TextPipeline: the pre- and post-processing around a BERT-shaped model that a
// model's config declares with `text_pipeline` (text classification or
// embeddings). Pure functions over one text or one output row; the fan-out of
// a request's rows, the tokenization threads and the batching live elsewhere
// (frontend/text_inference, pipeline/tokenization_pool, scheduler/).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "backend/session.h"
#include "core/infer_request.h"
#include "core/tensor.h"
#include "pipeline/tokenizer.h"
#include "proto/model_config.pb.h"

namespace ortserve::pipeline {

// The KServe v2 tensor names of a pipeline model's text signature.
inline constexpr std::string_view kTextInput = "text";                  // BYTES [-1]
inline constexpr std::string_view kLabelOutput = "label";               // BYTES [-1]
inline constexpr std::string_view kProbabilitiesOutput = "probabilities";  // FP32 [-1, n_labels]
inline constexpr std::string_view kIsPositiveOutput = "is_positive";    // BOOL [-1]
inline constexpr std::string_view kPositiveProbabilityOutput = "positive_probability";  // FP32 [-1]
inline constexpr std::string_view kLogitsOutput = "logits";             // FP32 [-1, n_labels]
inline constexpr std::string_view kEmbeddingOutput = "embedding";       // FP32 [-1, dim]

// One text classified.
struct Classification {
  size_t label_index = 0;            // argmax of the probabilities
  std::string_view label;            // labels()[label_index]; valid while the pipeline lives
  std::vector<float> logits;         // the model's raw scores, in label order
  std::vector<float> probabilities;  // softmax of the logits, in label order
  bool is_positive = false;          // positive_probability >= threshold
  float positive_probability = 0;
};

// Numerically stable softmax of `logits` into `out` (resized).
void Softmax(std::span<const float> logits, std::vector<float>* out);
// Scales `values` to unit L2 norm (left alone when the norm is 0).
void L2Normalize(std::span<float> values);

// Pre/post-processing for one pipeline model version.
//
// Thread-safety: thread-safe; immutable after Create (the tokenizer is too).
//
// Errors: Create returns InvalidArgument when the config does not fit the
// model (a named input or output it lacks, an output of the wrong type or
// rank, a positive_label not among the labels, labels that do not match the
// logits' width) and NotFound when the tokenizer or label file is missing.
// Tokenize returns InvalidArgument for text that is not UTF-8 and OutOfRange
// when `truncate` is false and the text is longer than max_length tokens.
class TextPipeline {
 public:
  enum class Task {
    kClassification,  // logits [batch, n_labels] -> label and probabilities
    kEmbedding,       // hidden states [batch, seq, dim] or [batch, dim] -> vector
  };
  enum class Pooling {
    kCls,   // the first token's vector
    kMean,  // the mean over tokens whose attention mask is 1
  };

  struct Options {
    Task task = Task::kClassification;
    int max_length = 512;
    std::string input_ids = "input_ids";
    std::string attention_mask = "attention_mask";
    std::string token_type_ids;  // Empty: the model has no token type input.
    std::string output;          // The model output read.
    // The output's rank including the batch dimension: 2 ([batch, n]) or 3
    // ([batch, seq, dim], embeddings only).
    int output_rank = 2;
    int64_t output_width = -1;  // Its last dimension when fixed, else -1.
    // Classification.
    std::vector<std::string> labels;
    size_t positive_index = 0;
    float threshold = 0.5f;
    // Embedding.
    Pooling pooling = Pooling::kCls;
    bool normalize = false;
  };

  static absl::StatusOr<std::unique_ptr<TextPipeline>> Create(Options options,
                                                              std::shared_ptr<const Tokenizer> tokenizer);

  // Builds the pipeline a model's config declares: reads the tokenizer and the
  // label file from `model_dir` and checks names and shapes against the
  // model's own `signature`. `config` must have text_pipeline set.
  static absl::StatusOr<std::unique_ptr<TextPipeline>> FromConfig(const config::ModelConfig& config,
                                                                  const std::string& model_dir,
                                                                  const backend::ModelSignature& signature);

  const Options& options() const { return options_; }
  Task task() const { return options_.task; }
  const std::vector<std::string>& labels() const { return options_.labels; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }

  // The served text signature: inputs and outputs as clients see them
  // (batch dimension -1 first).
  const std::vector<backend::TensorSpec>& text_inputs() const { return text_inputs_; }
  const std::vector<backend::TensorSpec>& text_outputs() const { return text_outputs_; }
  const backend::TensorSpec* FindTextOutput(std::string_view name) const;

  // Encodes `text` into the model's inputs, each an owning INT64 [1, len]
  // tensor (no padding: rows are padded to the longest of their batch by the
  // batcher), appended to `inputs`. Returns len, the number of tokens.
  absl::StatusOr<int64_t> Tokenize(std::string_view text, bool truncate, std::vector<Tensor>* inputs) const;

  // Post-processes one row of the model output (shape [1, n_labels] FP32).
  absl::Status Classify(const Tensor& row, Classification* out) const;

  // Post-processes one row of the model output: [1, seq, dim] (pooled over
  // the first `length` positions; seq may exceed length when the row was
  // padded in its batch) or [1, dim]. `normalize` L2-normalizes the result.
  absl::Status Embed(const Tensor& row, int64_t length, bool normalize, std::vector<float>* out) const;

 private:
  TextPipeline(Options options, std::shared_ptr<const Tokenizer> tokenizer);

  const Options options_;
  const std::shared_ptr<const Tokenizer> tokenizer_;
  std::vector<backend::TensorSpec> text_inputs_;
  std::vector<backend::TensorSpec> text_outputs_;
};

}  // namespace ortserve::pipeline
