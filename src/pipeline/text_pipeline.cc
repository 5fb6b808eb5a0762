// SPDX-License-Identifier: Apache-2.0
#include "pipeline/text_pipeline.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/checked_math.h"
#include "core/status.h"
#include "core/strings.h"

namespace ortserve::pipeline {
namespace fs = std::filesystem;
namespace {

absl::StatusOr<std::vector<std::string>> ReadLabels(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(StrCat("text_pipeline: cannot read label file ", path.string()));
  std::vector<std::string> labels;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    labels.push_back(std::move(line));
  }
  while (!labels.empty() && labels.back().empty()) labels.pop_back();
  if (labels.empty()) return absl::InvalidArgumentError(StrCat("text_pipeline: label file ", path.string(), " is empty"));
  return labels;
}

Tensor MakeRowTensor(const std::string& name, std::span<const int64_t> values) {
  return MakeTensor<int64_t>(name, DataType::kInt64, Shape{1, static_cast<int64_t>(values.size())}, values);
}

absl::Status ParseIntParameter(const config::ModelConfig& config, std::string_view key, int* out) {
  auto it = config.parameters().find(std::string(key));
  if (it == config.parameters().end()) return absl::OkStatus();
  const std::string& text = it->second.string_value();
  int value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) {
    return absl::InvalidArgumentError(
        StrCat("model '", config.name(), "': parameter '", key, "' must be an integer, got '", text, "'"));
  }
  *out = value;
  return absl::OkStatus();
}

absl::Status ParseFloatParameter(const config::ModelConfig& config, std::string_view key, float* out) {
  auto it = config.parameters().find(std::string(key));
  if (it == config.parameters().end()) return absl::OkStatus();
  const std::string& text = it->second.string_value();
  float value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(value)) {
    return absl::InvalidArgumentError(
        StrCat("model '", config.name(), "': parameter '", key, "' must be a number, got '", text, "'"));
  }
  *out = value;
  return absl::OkStatus();
}

}  // namespace

void Softmax(std::span<const float> logits, std::vector<float>* out) {
  out->resize(logits.size());
  if (logits.empty()) return;
  const float max = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (size_t i = 0; i < logits.size(); ++i) {
    (*out)[i] = std::exp(logits[i] - max);
    sum += (*out)[i];
  }
  for (float& p : *out) p = static_cast<float>(p / sum);
}

void L2Normalize(std::span<float> values) {
  double sum = 0;
  for (float v : values) sum += static_cast<double>(v) * v;
  if (sum <= 0) return;
  const double inv = 1.0 / std::sqrt(sum);
  for (float& v : values) v = static_cast<float>(v * inv);
}

TextPipeline::TextPipeline(Options options, std::shared_ptr<const Tokenizer> tokenizer)
    : options_(std::move(options)), tokenizer_(std::move(tokenizer)) {
  text_inputs_.push_back({std::string(kTextInput), DataType::kBytes, Shape{-1}});
  if (options_.task == Task::kClassification) {
    text_outputs_.push_back({std::string(kLabelOutput), DataType::kBytes, Shape{-1}});
    text_outputs_.push_back({std::string(kProbabilitiesOutput), DataType::kFp32,
                             Shape{-1, static_cast<int64_t>(options_.labels.size())}});
    text_outputs_.push_back({std::string(kIsPositiveOutput), DataType::kBool, Shape{-1}});
    text_outputs_.push_back({std::string(kPositiveProbabilityOutput), DataType::kFp32, Shape{-1}});
    text_outputs_.push_back({std::string(kLogitsOutput), DataType::kFp32,
                             Shape{-1, static_cast<int64_t>(options_.labels.size())}});
  } else {
    text_outputs_.push_back({std::string(kEmbeddingOutput), DataType::kFp32, Shape{-1, options_.output_width}});
  }
  if (auto unk = tokenizer_->TokenToId("[UNK]")) unk_id_ = *unk;
  for (size_t i = 0; i < options_.labels.size(); ++i) {
    if (!options_.out_of_scope_label.empty() && options_.labels[i] == options_.out_of_scope_label) {
      out_of_scope_index_ = static_cast<int64_t>(i);
    }
  }
  // Where the template puts the special tokens: those an empty text gets are
  // split around the text where the encodings of "" and "a" stop agreeing
  // ([CLS] | text | [SEP] for BERT).
  Encoding empty;
  Encoding one;
  TokenizerOptions untruncated;
  untruncated.truncate = false;
  untruncated.max_length = options_.max_length;
  if (tokenizer_->Encode("", untruncated, &empty).ok() && tokenizer_->Encode("a", untruncated, &one).ok()) {
    const auto k = static_cast<int64_t>(empty.ids.size());
    int64_t prefix = 0;
    while (prefix < k && empty.ids[static_cast<size_t>(prefix)] == one.ids[static_cast<size_t>(prefix)]) ++prefix;
    special_prefix_ = prefix;
    special_suffix_ = k - prefix;
  }
}

absl::StatusOr<std::unique_ptr<TextPipeline>> TextPipeline::Create(Options options,
                                                                   std::shared_ptr<const Tokenizer> tokenizer) {
  if (tokenizer == nullptr) return absl::InvalidArgumentError("text_pipeline: no tokenizer");
  if (options.max_length < 3) {
    return absl::InvalidArgumentError(
        StrCat("text_pipeline: max_length ", options.max_length, " cannot hold [CLS] text [SEP]"));
  }
  if (options.input_ids.empty() || options.attention_mask.empty() || options.output.empty()) {
    return absl::InvalidArgumentError("text_pipeline: input_ids, attention_mask and output names are required");
  }
  if (options.task == Task::kClassification) {
    if (options.labels.empty()) {
      return absl::InvalidArgumentError("text_pipeline: a text_classification pipeline needs labels");
    }
    if (options.output_rank != 2) {
      return absl::InvalidArgumentError(StrCat("text_pipeline: classification output '", options.output,
                                               "' must be [batch, n_labels], not rank ", options.output_rank));
    }
    if (options.output_width >= 0 && options.output_width != static_cast<int64_t>(options.labels.size())) {
      return absl::InvalidArgumentError(StrCat("text_pipeline: output '", options.output, "' has ",
                                               options.output_width, " logits but there are ",
                                               options.labels.size(), " labels"));
    }
    if (options.positive_index >= options.labels.size()) {
      return absl::InvalidArgumentError("text_pipeline: positive label index out of range");
    }
    if (!(options.threshold >= 0 && options.threshold <= 1)) {
      return absl::InvalidArgumentError(
          StrCat("text_pipeline: threshold ", options.threshold, " is outside [0, 1]"));
    }
    if (!(options.temperature > 0 && std::isfinite(options.temperature))) {
      return absl::InvalidArgumentError(StrCat("text_pipeline: calibration temperature ", options.temperature,
                                               " must be a finite number > 0"));
    }
    if (!(options.review_min_known_fraction >= 0 && options.review_min_known_fraction <= 1)) {
      return absl::InvalidArgumentError(StrCat("text_pipeline: review_min_known_fraction ",
                                               options.review_min_known_fraction, " is outside [0, 1]"));
    }
  } else if (options.output_rank != 2 && options.output_rank != 3) {
    return absl::InvalidArgumentError(StrCat("text_pipeline: embedding output '", options.output,
                                             "' must be [batch, seq, dim] or [batch, dim], not rank ",
                                             options.output_rank));
  }
  if (options.window_length != 0 && (options.window_length < 3 || options.window_length > options.max_length)) {
    return absl::InvalidArgumentError(StrCat("text_pipeline: window_length ", options.window_length,
                                             " must be 0 (max_length) or from 3 to max_length ",
                                             options.max_length));
  }
  if (options.window_stride < 0 || options.window_stride > options.max_length) {
    return absl::InvalidArgumentError(StrCat("text_pipeline: window_stride ", options.window_stride,
                                             " must be from 0 (half a window) to max_length ",
                                             options.max_length));
  }
  if (options.max_windows < 1 || options.max_windows > kMaxWindowsLimit) {
    return absl::InvalidArgumentError(StrCat("text_pipeline: max_windows ", options.max_windows,
                                             " must be from 1 to ", kMaxWindowsLimit));
  }
  if (options.review_min_known_words < 0) {
    return absl::InvalidArgumentError(StrCat("text_pipeline: review_min_known_words ",
                                             options.review_min_known_words, " must be >= 0"));
  }
  return std::unique_ptr<TextPipeline>(new TextPipeline(std::move(options), std::move(tokenizer)));
}

absl::StatusOr<std::unique_ptr<TextPipeline>> TextPipeline::FromConfig(const config::ModelConfig& config,
                                                                       const std::string& model_dir,
                                                                       const backend::ModelSignature& signature) {
  const config::TextPipeline& tp = config.text_pipeline();
  Options options;
  switch (tp.task()) {
    case config::TextPipeline::TEXT_CLASSIFICATION: options.task = Task::kClassification; break;
    case config::TextPipeline::EMBEDDING: options.task = Task::kEmbedding; break;
    default:
      return absl::InvalidArgumentError(StrCat("model '", config.name(),
                                               "': text_pipeline.task must be TEXT_CLASSIFICATION or EMBEDDING"));
  }
  options.max_length = tp.max_length() == 0 ? 512 : tp.max_length();
  if (tp.tokenizer().empty()) {
    return absl::InvalidArgumentError(StrCat("model '", config.name(),
                                             "': text_pipeline.tokenizer (vocab.txt or tokenizer.json) is required"));
  }

  // Inputs: the model must have input_ids and attention_mask; token_type_ids
  // is fed only when the model has it.
  auto require_input = [&](const std::string& configured, std::string_view fallback,
                           bool optional) -> absl::StatusOr<std::string> {
    const std::string name = configured.empty() ? std::string(fallback) : configured;
    const backend::TensorSpec* spec = signature.FindInput(name);
    if (spec == nullptr) {
      if (optional && configured.empty()) return std::string();
      return absl::InvalidArgumentError(
          StrCat("model '", config.name(), "': text_pipeline input '", name, "' is not an input of the model"));
    }
    if (spec->type != DataType::kInt64) {
      return absl::InvalidArgumentError(StrCat("model '", config.name(), "': text_pipeline input '", name,
                                               "' has type ", DataTypeName(spec->type),
                                               "; token inputs must be INT64"));
    }
    return name;
  };
  ASSIGN_OR_RETURN(options.input_ids, require_input(tp.input_ids(), "input_ids", false));
  ASSIGN_OR_RETURN(options.attention_mask, require_input(tp.attention_mask(), "attention_mask", false));
  ASSIGN_OR_RETURN(options.token_type_ids, require_input(tp.token_type_ids(), "token_type_ids", true));
  for (const auto& input : signature.inputs) {
    if (input.name != options.input_ids && input.name != options.attention_mask &&
        input.name != options.token_type_ids) {
      return absl::InvalidArgumentError(StrCat("model '", config.name(), "': input '", input.name,
                                               "' is not one text_pipeline feeds (input_ids, attention_mask, "
                                               "token_type_ids)"));
    }
  }

  const backend::TensorSpec* output = nullptr;
  if (tp.output().empty()) {
    if (signature.outputs.empty()) return absl::InvalidArgumentError(StrCat("model '", config.name(), "' has no outputs"));
    output = &signature.outputs[0];
  } else {
    output = signature.FindOutput(tp.output());
    if (output == nullptr) {
      return absl::InvalidArgumentError(StrCat("model '", config.name(), "': text_pipeline.output '",
                                               tp.output(), "' is not an output of the model"));
    }
  }
  if (output->type != DataType::kFp32) {
    return absl::InvalidArgumentError(StrCat("model '", config.name(), "': text_pipeline output '", output->name,
                                             "' has type ", DataTypeName(output->type), "; FP32 is required"));
  }
  options.output = output->name;
  options.output_rank = static_cast<int>(output->dims.size());
  options.output_width = output->dims.empty() ? -1 : output->dims.back();

  if (options.task == Task::kClassification) {
    std::string label_file = tp.labels();
    if (label_file.empty()) {
      for (const auto& out : config.output()) {
        if (out.name() == output->name) label_file = out.label_filename();
      }
    }
    if (label_file.empty()) {
      return absl::InvalidArgumentError(StrCat("model '", config.name(),
                                               "': text_pipeline.labels (a label file) is required for "
                                               "TEXT_CLASSIFICATION"));
    }
    ASSIGN_OR_RETURN(options.labels, ReadLabels(fs::path(model_dir) / label_file));
    options.positive_index = options.labels.size() - 1;
    if (!tp.positive_label().empty()) {
      auto it = std::find(options.labels.begin(), options.labels.end(), tp.positive_label());
      if (it == options.labels.end()) {
        return absl::InvalidArgumentError(StrCat("model '", config.name(), "': text_pipeline.positive_label '",
                                                 tp.positive_label(), "' is not in ", label_file));
      }
      options.positive_index = static_cast<size_t>(it - options.labels.begin());
    }
    options.threshold = tp.threshold() == 0 ? 0.5f : tp.threshold();
    RETURN_IF_ERROR(ParseFloatParameter(config, kTemperatureParameter, &options.temperature));
    RETURN_IF_ERROR(ParseIntParameter(config, kWindowLengthParameter, &options.window_length));
    RETURN_IF_ERROR(ParseIntParameter(config, kWindowStrideParameter, &options.window_stride));
    RETURN_IF_ERROR(ParseIntParameter(config, kMaxWindowsParameter, &options.max_windows));
    RETURN_IF_ERROR(ParseIntParameter(config, kReviewMinKnownWordsParameter, &options.review_min_known_words));
    RETURN_IF_ERROR(
        ParseFloatParameter(config, kReviewMinKnownFractionParameter, &options.review_min_known_fraction));
    if (auto it = config.parameters().find(std::string(kOutOfScopeLabelParameter)); it != config.parameters().end()) {
      options.out_of_scope_label = it->second.string_value();
    }
    if (auto it = config.parameters().find(std::string(kDisclaimerParameter)); it != config.parameters().end()) {
      options.disclaimer = it->second.string_value();
    }
  } else {
    options.pooling = tp.pooling() == config::TextPipeline::MEAN ? Pooling::kMean : Pooling::kCls;
    options.normalize = tp.normalize();
  }

  VocabTxtOptions vocab_options;
  vocab_options.lowercase = tp.lowercase();
  ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer,
                   LoadTokenizer((fs::path(model_dir) / tp.tokenizer()).string(), vocab_options));
  auto created = Create(std::move(options), std::shared_ptr<const Tokenizer>(std::move(tokenizer)));
  if (!created.ok()) {
    return absl::Status(created.status().code(),
                        StrCat("model '", config.name(), "': ", ToStd(created.status().message())));
  }
  return created;
}

const backend::TensorSpec* TextPipeline::FindTextOutput(std::string_view name) const {
  for (const auto& spec : text_outputs_) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

absl::StatusOr<int64_t> TextPipeline::Tokenize(std::string_view text, bool truncate,
                                               std::vector<Tensor>* inputs) const {
  // One Encoding per thread: its vectors keep their capacity between calls.
  thread_local Encoding encoding;
  TokenizerOptions tokenizer_options;
  tokenizer_options.max_length = options_.max_length;
  tokenizer_options.truncate = truncate;
  RETURN_IF_ERROR(tokenizer_->Encode(text, tokenizer_options, &encoding));
  const auto length = static_cast<int64_t>(encoding.size());
  if (length > options_.max_length) {
    return absl::OutOfRangeError(StrCat("input text has ", length, " tokens, more than the model's max_length ",
                                        options_.max_length, " (truncation is off)"));
  }
  inputs->push_back(MakeRowTensor(options_.input_ids, encoding.ids));
  inputs->push_back(MakeRowTensor(options_.attention_mask, encoding.attention_mask));
  if (!options_.token_type_ids.empty()) inputs->push_back(MakeRowTensor(options_.token_type_ids, encoding.type_ids));
  return length;
}

int64_t TextPipeline::WindowStride() const {
  const int64_t piece = std::max<int64_t>(1, WindowLength() - special_prefix_ - special_suffix_);
  return options_.window_stride > 0 ? std::min<int64_t>(options_.window_stride, piece) : std::max<int64_t>(1, piece / 2);
}

int64_t TextPipeline::WindowCount(int64_t tokens) const {
  const int64_t specials = special_prefix_ + special_suffix_;
  if (tokens <= WindowLength()) return 1;
  const int64_t piece = std::max<int64_t>(1, WindowLength() - specials);
  const int64_t stride = WindowStride();
  const int64_t content = tokens - specials;
  if (content <= piece) return 1;
  // 1 + ceil((content - piece) / stride). No product: every term is at most
  // `tokens`, so nothing here can wrap.
  return 1 + (content - piece + stride - 1) / stride;
}

bool TextPipeline::ReviewRecommended(const TextEncodingInfo& info) const {
  if (info.known_words < options_.review_min_known_words) return true;
  if (options_.review_min_known_fraction > 0 && info.words > 0 &&
      static_cast<double>(info.known_words) <
          static_cast<double>(options_.review_min_known_fraction) * static_cast<double>(info.words)) {
    return true;
  }
  return false;
}

absl::StatusOr<TextEncodingInfo> TextPipeline::TokenizeRows(std::string_view text, LongText mode,
                                                            int64_t max_windows,
                                                            std::vector<std::vector<Tensor>>* rows) const {
  thread_local Encoding encoding;
  TokenizerOptions tokenizer_options;
  tokenizer_options.max_length = options_.max_length;
  tokenizer_options.truncate = mode == LongText::kTruncate;
  RETURN_IF_ERROR(tokenizer_->Encode(text, tokenizer_options, &encoding));
  TextEncodingInfo info;
  info.tokens = static_cast<int64_t>(encoding.size());
  // Vocabulary coverage over the text's own tokens (specials excluded).
  const auto n = static_cast<int64_t>(encoding.ids.size());
  const int64_t first = std::min(special_prefix_, n);
  const int64_t last = std::max(first, n - special_suffix_);
  for (int64_t t = first; t < last; ++t) {
    const int64_t id = encoding.ids[static_cast<size_t>(t)];
    if (id == unk_id_) ++info.unknown;
    if (tokenizer_->IsContinuation(id)) continue;
    ++info.words;
    const bool whole = t + 1 >= last || !tokenizer_->IsContinuation(encoding.ids[static_cast<size_t>(t + 1)]);
    if (whole && id != unk_id_) ++info.known_words;
  }
  if (mode != LongText::kWindows || info.tokens <= WindowLength()) {
    if (info.tokens > options_.max_length) {
      return absl::OutOfRangeError(StrCat("input text has ", info.tokens,
                                          " tokens, more than the model's max_length ", options_.max_length,
                                          " (truncation is off)"));
    }
    if (max_windows < 1) {
      return absl::OutOfRangeError(StrCat("the request needs more than ", options_.max_windows,
                                          " model rows (text_pipeline.max_windows)"));
    }
    auto& inputs = rows->emplace_back();
    inputs.push_back(MakeRowTensor(options_.input_ids, encoding.ids));
    inputs.push_back(MakeRowTensor(options_.attention_mask, encoding.attention_mask));
    if (!options_.token_type_ids.empty()) inputs.push_back(MakeRowTensor(options_.token_type_ids, encoding.type_ids));
    return info;
  }
  const int64_t piece = std::max<int64_t>(1, WindowLength() - special_prefix_ - special_suffix_);
  const int64_t stride = WindowStride();
  info.windows = WindowCount(info.tokens);
  if (info.windows > max_windows) {
    return absl::OutOfRangeError(StrCat(
        "the text has ", info.tokens, " tokens and would need ", info.windows, " windows of ", piece,
        " tokens ", stride, " apart; the limit is ", options_.max_windows,
        " windows per request (text_pipeline.max_windows): send a shorter text or split it"));
  }
  const int64_t content = last - first;
  thread_local std::vector<int64_t> window;
  thread_local std::vector<int64_t> ones;
  thread_local std::vector<int64_t> zeros;
  for (int64_t w = 0; w < info.windows; ++w) {
    // The last window ends at the text's end (it may overlap its neighbour
    // more than the others do).
    const int64_t start = std::max<int64_t>(0, std::min(w * stride, content - piece));
    const int64_t end = std::min(content, start + piece);
    window.clear();
    window.insert(window.end(), encoding.ids.begin(), encoding.ids.begin() + first);
    window.insert(window.end(), encoding.ids.begin() + first + start, encoding.ids.begin() + first + end);
    window.insert(window.end(), encoding.ids.begin() + last, encoding.ids.end());
    ones.assign(window.size(), 1);
    auto& inputs = rows->emplace_back();
    inputs.push_back(MakeRowTensor(options_.input_ids, window));
    inputs.push_back(MakeRowTensor(options_.attention_mask, ones));
    if (!options_.token_type_ids.empty()) {
      zeros.assign(window.size(), 0);
      inputs.push_back(MakeRowTensor(options_.token_type_ids, zeros));
    }
  }
  return info;
}

absl::Status TextPipeline::Classify(const Tensor& row, Classification* out) const {
  const size_t n = options_.labels.size();
  if (row.type != DataType::kFp32 || row.shape.size() != 2 || row.shape[0] != 1 ||
      row.shape[1] != static_cast<int64_t>(n) || row.data.size() != n * sizeof(float)) {
    return absl::InternalError(StrCat("output '", options_.output, "' row has type ", DataTypeName(row.type),
                                      " shape ", ShapeToString(row.shape), "; expected FP32 [1,", n, "]"));
  }
  const auto logits = row.values<float>();
  out->logits.assign(logits.begin(), logits.end());
  if (options_.temperature == 1.0f) {
    Softmax(logits, &out->probabilities);
  } else {
    // Temperature scaling: the calibrated probabilities; `logits` stay the
    // model's own.
    thread_local std::vector<float> scaled;
    scaled.resize(logits.size());
    for (size_t i = 0; i < logits.size(); ++i) scaled[i] = logits[i] / options_.temperature;
    Softmax(scaled, &out->probabilities);
  }
  out->label_index = static_cast<size_t>(
      std::max_element(out->probabilities.begin(), out->probabilities.end()) - out->probabilities.begin());
  out->label = options_.labels[out->label_index];
  out->positive_probability = out->probabilities[options_.positive_index];
  out->is_positive = out->positive_probability >= options_.threshold;
  return absl::OkStatus();
}

absl::Status TextPipeline::Embed(const Tensor& row, int64_t length, bool normalize, std::vector<float>* out) const {
  if (row.type != DataType::kFp32 || row.shape.empty() || row.shape[0] != 1 ||
      (row.shape.size() != 2 && row.shape.size() != 3)) {
    return absl::InternalError(StrCat("output '", options_.output, "' row has type ", DataTypeName(row.type),
                                      " shape ", ShapeToString(row.shape),
                                      "; expected FP32 [1, seq, dim] or [1, dim]"));
  }
  const auto values = row.values<float>();
  if (row.shape.size() == 2) {
    out->assign(values.begin(), values.end());
  } else {
    const int64_t seq = row.shape[1];
    const int64_t dim = row.shape[2];
    if (length < 1 || length > seq || static_cast<int64_t>(values.size()) != seq * dim) {
      return absl::InternalError(StrCat("output '", options_.output, "' row shape ", ShapeToString(row.shape),
                                        " does not cover the text's ", length, " tokens"));
    }
    out->assign(static_cast<size_t>(dim), 0.0f);
    if (options_.pooling == Pooling::kCls) {
      std::copy(values.begin(), values.begin() + dim, out->begin());
    } else {
      // The attention mask of an unpadded encoding is all ones, so the mean
      // runs over the text's own positions; padding the batcher added (after
      // `length`) is excluded.
      std::vector<double> sum(static_cast<size_t>(dim), 0.0);
      for (int64_t t = 0; t < length; ++t) {
        for (int64_t d = 0; d < dim; ++d) sum[static_cast<size_t>(d)] += values[static_cast<size_t>(t * dim + d)];
      }
      for (int64_t d = 0; d < dim; ++d) {
        (*out)[static_cast<size_t>(d)] = static_cast<float>(sum[static_cast<size_t>(d)] / static_cast<double>(length));
      }
    }
  }
  if (normalize) L2Normalize(*out);
  return absl::OkStatus();
}

}  // namespace ortserve::pipeline
