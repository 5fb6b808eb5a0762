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

// Model config `parameters` a TEXT_CLASSIFICATION pipeline reads (string
// values, docs/pipeline.md "Long texts, calibration and review"):
inline constexpr std::string_view kTemperatureParameter = "text_pipeline.calibration_temperature";  // > 0
inline constexpr std::string_view kWindowLengthParameter = "text_pipeline.window_length";  // tokens
inline constexpr std::string_view kWindowStrideParameter = "text_pipeline.window_stride";  // tokens
inline constexpr std::string_view kMaxWindowsParameter = "text_pipeline.max_windows";      // per request
inline constexpr std::string_view kReviewMinKnownWordsParameter = "text_pipeline.review_min_known_words";
inline constexpr std::string_view kReviewMinKnownFractionParameter = "text_pipeline.review_min_known_fraction";
inline constexpr std::string_view kOutOfScopeLabelParameter = "text_pipeline.out_of_scope_label";
inline constexpr std::string_view kDisclaimerParameter = "text_pipeline.disclaimer";  // the bundled demo's caveat
// The largest text_pipeline.max_windows a config may set.
inline constexpr int kMaxWindowsLimit = 4096;

// One text classified.
struct Classification {
  size_t label_index = 0;            // argmax of the probabilities
  std::string_view label;            // labels()[label_index]; valid while the pipeline lives
  std::vector<float> logits;         // the model's raw scores, in label order
  std::vector<float> probabilities;  // softmax of the logits, in label order
  bool is_positive = false;          // positive_probability >= threshold
  float positive_probability = 0;
};

// What tokenizing one text found, for the long-text and review decisions.
struct TextEncodingInfo {
  int64_t tokens = 0;       // the whole text's encoding, special tokens included (before any cut)
  int64_t windows = 1;      // model rows the text became (1 unless it was split into windows)
  int64_t words = 0;        // word starts: tokens that do not continue a word (specials excluded)
  int64_t known_words = 0;  // words that are one whole vocabulary token (not [UNK], not split)
  int64_t unknown = 0;      // [UNK] tokens
};

// How a text longer than the model's max_length is handled.
enum class LongText {
  kTruncate,  // cut to max_length tokens (the KServe default)
  kRefuse,    // OutOfRange (`truncate: false`)
  kWindows,   // split into overlapping windows of max_length tokens (`sliding_window: true`)
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
    // Calibration: logits are divided by this temperature before the softmax
    // (temperature scaling fit on a validation split). 1: the raw model.
    float temperature = 1.0f;
    // Long texts split into windows (LongText::kWindows): a text of more
    // than `window_length` tokens (special tokens included; 0: max_length)
    // becomes windows of that many tokens, [CLS] piece [SEP];
    // `window_stride` content tokens separate the starts of consecutive
    // windows (0: half a piece, so consecutive windows overlap by half). At
    // most `max_windows` rows per request, all texts together; more is
    // OutOfRange. A model trained on short texts reads long ones best in
    // windows as short as its training texts.
    int window_length = 0;
    int window_stride = 0;
    int max_windows = 128;
    // Review signal (reviewRecommended): a text with fewer than
    // `review_min_known_words` whole known words, or whose known words are
    // less than `review_min_known_fraction` of its words, is one the model
    // knows too little of to judge. The label `out_of_scope_label`, when the
    // model has it and it wins the decisive window, says the same.
    int review_min_known_words = 1;
    float review_min_known_fraction = 0.0f;
    std::string out_of_scope_label = "out_of_scope";
    // Set for the bundled demo model: the caveat the SAE API returns as
    // `disclaimer`. Empty: none.
    std::string disclaimer;
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

  // Encodes `text` into one model row per window, each row its inputs as
  // Tokenize makes them, appended to `rows`. kTruncate and kRefuse give one
  // row (as Tokenize); kWindows gives one row when the text has at most
  // window_length tokens and else windows of window_length tokens ([CLS]
  // piece [SEP]) whose pieces start window_stride tokens apart, the last
  // ending at the text's end.
  // `max_windows` bounds the rows added: OutOfRange, naming the count and
  // the limit, when the text needs more. Errors as Tokenize's.
  absl::StatusOr<TextEncodingInfo> TokenizeRows(std::string_view text, LongText mode, int64_t max_windows,
                                                std::vector<std::vector<Tensor>>* rows) const;

  // The number of windows a text of `tokens` tokens (specials included)
  // needs under kWindows; at least 1.
  int64_t WindowCount(int64_t tokens) const;
  // Tokens per window (specials included) and content tokens between
  // window starts, after defaults.
  int64_t WindowLength() const { return options_.window_length > 0 ? options_.window_length : options_.max_length; }
  int64_t WindowStride() const;

  // Whether a text with `info` should go to a human instead of being judged
  // (too little known vocabulary), before looking at the model's answer.
  bool ReviewRecommended(const TextEncodingInfo& info) const;
  // Whether `result`'s label is the out-of-scope label.
  bool OutOfScope(const Classification& result) const {
    return out_of_scope_index_ >= 0 && result.label_index == static_cast<size_t>(out_of_scope_index_);
  }

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
  int64_t unk_id_ = -1;             // The tokenizer's [UNK], if it has one.
  int64_t out_of_scope_index_ = -1;  // The out-of-scope label's index, if the model has one.
  int64_t special_prefix_ = 0;      // Special tokens before the text ([CLS]).
  int64_t special_suffix_ = 0;      // Special tokens after it ([SEP]).
};

}  // namespace ortserve::pipeline
