// SPDX-License-Identifier: Apache-2.0
// TextPipeline: tokenization of rows and post-processing (softmax, labels,
// threshold, pooling, normalization), and building one from a model config.
#include "pipeline/text_pipeline.h"

#include <cmath>
#include <cstdlib>
#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pipeline/wordpiece_tokenizer.h"

namespace ortserve::pipeline {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string SourceDir() {
  const char* env = std::getenv("ORTSERVE_SOURCE_DIR");
  return env != nullptr ? env : ORTSERVE_TEST_SOURCE_DIR;
}

std::shared_ptr<const Tokenizer> SmallTokenizer() {
  auto tokenizer = WordPieceTokenizer::FromVocabTxtContents(
      "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nchest\npain\nno\n##s\n,\n");
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
  return std::shared_ptr<const Tokenizer>(std::move(tokenizer).value());
}

TextPipeline::Options ClassifierOptions() {
  TextPipeline::Options options;
  options.task = TextPipeline::Task::kClassification;
  options.max_length = 8;
  options.token_type_ids = "token_type_ids";
  options.output = "logits";
  options.labels = {"not_serious", "serious"};
  options.positive_index = 1;
  options.threshold = 0.5f;
  return options;
}

Tensor Row(Shape shape, std::vector<float> values) {
  return MakeTensor<float>("out", DataType::kFp32, std::move(shape), std::span<const float>(values));
}

std::vector<int64_t> Ints(const Tensor& t) {
  auto v = t.values<int64_t>();
  return {v.begin(), v.end()};
}

TEST(SoftmaxTest, IsStableForLargeLogitsAndSumsToOne) {
  std::vector<float> p;
  Softmax(std::vector<float>{1000.0f, 1000.0f + std::log(3.0f)}, &p);
  ASSERT_EQ(p.size(), 2u);
  EXPECT_NEAR(p[0], 0.25f, 1e-4);  // 1000 + log 3 rounds to a float.
  EXPECT_NEAR(p[1], 0.75f, 1e-4);
  EXPECT_NEAR(p[0] + p[1], 1.0f, 1e-6);
}

TEST(L2NormalizeTest, ScalesToUnitLengthAndLeavesZeroAlone) {
  std::vector<float> v = {3, 4};
  L2Normalize(v);
  EXPECT_THAT(v, ElementsAre(0.6f, 0.8f));
  std::vector<float> zero = {0, 0};
  L2Normalize(zero);
  EXPECT_THAT(zero, ElementsAre(0.0f, 0.0f));
}

TEST(TextPipelineTest, TokenizesOneTextIntoUnpaddedRowTensors) {
  auto pipeline = TextPipeline::Create(ClassifierOptions(), SmallTokenizer());
  ASSERT_TRUE(pipeline.ok()) << pipeline.status();
  std::vector<Tensor> inputs;
  auto length = (*pipeline)->Tokenize("No chest pains", true, &inputs);
  ASSERT_TRUE(length.ok()) << length.status();
  EXPECT_EQ(*length, 6);
  ASSERT_EQ(inputs.size(), 3u);
  EXPECT_EQ(inputs[0].name, "input_ids");
  EXPECT_EQ(inputs[0].type, DataType::kInt64);
  EXPECT_EQ(inputs[0].shape, Shape({1, 6}));
  EXPECT_THAT(Ints(inputs[0]), ElementsAre(2, 7, 5, 6, 8, 3));
  EXPECT_EQ(inputs[1].name, "attention_mask");
  EXPECT_THAT(Ints(inputs[1]), ElementsAre(1, 1, 1, 1, 1, 1));
  EXPECT_EQ(inputs[2].name, "token_type_ids");
  EXPECT_THAT(Ints(inputs[2]), ElementsAre(0, 0, 0, 0, 0, 0));
}

TEST(TextPipelineTest, TruncatesToMaxLengthOrRefusesWhenTruncationIsOff) {
  auto pipeline = TextPipeline::Create(ClassifierOptions(), SmallTokenizer());
  ASSERT_TRUE(pipeline.ok());
  const std::string text = "chest pain chest pain chest pain chest pain";
  std::vector<Tensor> inputs;
  auto length = (*pipeline)->Tokenize(text, true, &inputs);
  ASSERT_TRUE(length.ok());
  EXPECT_EQ(*length, 8);
  EXPECT_EQ(Ints(inputs[0]).back(), 3);  // [SEP] kept.
  inputs.clear();
  auto refused = (*pipeline)->Tokenize(text, false, &inputs);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("max_length 8"));
}

TEST(TextPipelineTest, OmitsTokenTypeIdsWhenTheModelHasNone) {
  auto options = ClassifierOptions();
  options.token_type_ids.clear();
  auto pipeline = TextPipeline::Create(options, SmallTokenizer());
  ASSERT_TRUE(pipeline.ok());
  std::vector<Tensor> inputs;
  ASSERT_TRUE((*pipeline)->Tokenize("chest", true, &inputs).ok());
  EXPECT_EQ(inputs.size(), 2u);
}

TEST(TextPipelineTest, ClassifiesWithSoftmaxArgmaxAndThreshold) {
  auto options = ClassifierOptions();
  options.threshold = 0.8f;
  auto pipeline = TextPipeline::Create(options, SmallTokenizer());
  ASSERT_TRUE(pipeline.ok());
  Classification result;
  // p(serious) = 0.75: the argmax label is serious, but below the threshold.
  ASSERT_TRUE((*pipeline)->Classify(Row({1, 2}, {0.0f, std::log(3.0f)}), &result).ok());
  EXPECT_EQ(result.label, "serious");
  EXPECT_EQ(result.label_index, 1u);
  EXPECT_NEAR(result.probabilities[0], 0.25f, 1e-6);
  EXPECT_NEAR(result.positive_probability, 0.75f, 1e-6);
  EXPECT_FALSE(result.is_positive);
  EXPECT_THAT(result.logits, ElementsAre(0.0f, std::log(3.0f)));
  ASSERT_TRUE((*pipeline)->Classify(Row({1, 2}, {0.0f, 3.0f}), &result).ok());
  EXPECT_TRUE(result.is_positive);
  // A row of the wrong width is an internal error, not a crash.
  EXPECT_FALSE((*pipeline)->Classify(Row({1, 3}, {0, 0, 0}), &result).ok());
}

TEST(TextPipelineTest, SplitsALongTextIntoOverlappingWindowsEndingAtItsEnd) {
  auto options = ClassifierOptions();  // max_length 8: [CLS] + 6 tokens + [SEP].
  options.window_stride = 4;
  auto pipeline = TextPipeline::Create(options, SmallTokenizer());
  ASSERT_TRUE(pipeline.ok()) << pipeline.status();
  // 12 tokens: no chest pain , no chest pain ##s , no chest pain.
  const std::string text = "no chest pain, no chest pains, no chest pain";
  std::vector<std::vector<Tensor>> rows;
  auto info = (*pipeline)->TokenizeRows(text, LongText::kWindows, 10, &rows);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->tokens, 14);
  EXPECT_EQ(info->windows, 3);
  EXPECT_EQ((*pipeline)->WindowCount(14), 3);
  EXPECT_EQ(info->words, 11);        // ##s continues "pain".
  EXPECT_EQ(info->known_words, 10);  // "pain" + "##s" is not one whole word.
  EXPECT_EQ(info->unknown, 0);
  ASSERT_EQ(rows.size(), 3u);
  // Starts 0 and 4; the last window is moved back to end at the text's end.
  EXPECT_THAT(Ints(rows[0][0]), ElementsAre(2, 7, 5, 6, 9, 7, 5, 3));
  EXPECT_THAT(Ints(rows[1][0]), ElementsAre(2, 7, 5, 6, 8, 9, 7, 3));
  EXPECT_THAT(Ints(rows[2][0]), ElementsAre(2, 6, 8, 9, 7, 5, 6, 3));
  for (const auto& row : rows) {
    ASSERT_EQ(row.size(), 3u);  // input_ids, attention_mask, token_type_ids
    EXPECT_THAT(Ints(row[1]), ElementsAre(1, 1, 1, 1, 1, 1, 1, 1));
    EXPECT_THAT(Ints(row[2]), ElementsAre(0, 0, 0, 0, 0, 0, 0, 0));
  }
  // A text that fits is one row, as Tokenize makes it.
  rows.clear();
  info = (*pipeline)->TokenizeRows("no chest pain", LongText::kWindows, 10, &rows);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->windows, 1);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_THAT(Ints(rows[0][0]), ElementsAre(2, 7, 5, 6, 3));
  // Windows shorter than max_length: 6 tokens, pieces of 4, 2 apart.
  auto short_windows = options;
  short_windows.window_length = 6;
  short_windows.window_stride = 0;
  auto narrow = TextPipeline::Create(short_windows, SmallTokenizer());
  ASSERT_TRUE(narrow.ok()) << narrow.status();
  EXPECT_EQ((*narrow)->WindowStride(), 2);
  rows.clear();
  info = (*narrow)->TokenizeRows(text, LongText::kWindows, 10, &rows);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->windows, 5);
  ASSERT_EQ(rows.size(), 5u);
  EXPECT_THAT(Ints(rows[0][0]), ElementsAre(2, 7, 5, 6, 9, 3));
  EXPECT_THAT(Ints(rows[4][0]), ElementsAre(2, 9, 7, 5, 6, 3));
  // Truncation and refusal are unchanged.
  rows.clear();
  info = (*pipeline)->TokenizeRows(text, LongText::kTruncate, 10, &rows);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->windows, 1);
  EXPECT_EQ(Ints(rows[0][0]).size(), 8u);
  EXPECT_EQ((*pipeline)->TokenizeRows(text, LongText::kRefuse, 10, &rows).status().code(),
            absl::StatusCode::kOutOfRange);
}

TEST(TextPipelineTest, RefusesATextNeedingMoreWindowsThanTheRequestMayHave) {
  auto options = ClassifierOptions();
  options.window_stride = 1;
  options.max_windows = 4;
  auto pipeline = TextPipeline::Create(options, SmallTokenizer());
  ASSERT_TRUE(pipeline.ok());
  std::vector<std::vector<Tensor>> rows;
  // 12 tokens, windows of 6 one token apart: 7 windows.
  auto info = (*pipeline)->TokenizeRows("no chest pain, no chest pains, no chest pain", LongText::kWindows, 4, &rows);
  ASSERT_EQ(info.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(info.status().message(), HasSubstr("7 windows"));
  EXPECT_THAT(info.status().message(), HasSubstr("max_windows"));
  EXPECT_TRUE(rows.empty());
  // Bad window settings fail the pipeline, not a request.
  options.max_windows = 0;
  EXPECT_FALSE(TextPipeline::Create(options, SmallTokenizer()).ok());
  options.max_windows = 4;
  options.window_stride = 9;  // More than max_length.
  EXPECT_FALSE(TextPipeline::Create(options, SmallTokenizer()).ok());
}

TEST(TextPipelineTest, AppliesTheCalibrationTemperatureToTheLogits) {
  auto options = ClassifierOptions();
  options.temperature = 2.0f;
  auto pipeline = TextPipeline::Create(options, SmallTokenizer());
  ASSERT_TRUE(pipeline.ok());
  Classification result;
  ASSERT_TRUE((*pipeline)->Classify(Row({1, 2}, {0.0f, std::log(3.0f)}), &result).ok());
  // softmax(logits / 2): p = sqrt(3) / (1 + sqrt(3)).
  EXPECT_NEAR(result.positive_probability, std::sqrt(3.0) / (1 + std::sqrt(3.0)), 1e-6);
  EXPECT_THAT(result.logits, ElementsAre(0.0f, std::log(3.0f)));  // The model's own.
  options.temperature = 0;
  EXPECT_FALSE(TextPipeline::Create(options, SmallTokenizer()).ok());
}

TEST(TextPipelineTest, RecommendsReviewWhenTooFewWordsAreKnown) {
  auto options = ClassifierOptions();
  options.review_min_known_words = 2;
  options.review_min_known_fraction = 0.5f;
  options.labels = {"not_serious", "serious", "out_of_scope"};
  auto pipeline = TextPipeline::Create(options, SmallTokenizer());
  ASSERT_TRUE(pipeline.ok());
  std::vector<std::vector<Tensor>> rows;
  auto info = [&](std::string_view text) {
    auto got = (*pipeline)->TokenizeRows(text, LongText::kTruncate, 10, &rows);
    EXPECT_TRUE(got.ok());
    return *got;
  };
  EXPECT_FALSE((*pipeline)->ReviewRecommended(info("no chest pain")));
  EXPECT_TRUE((*pipeline)->ReviewRecommended(info("chest")));            // 1 known word < 2
  EXPECT_TRUE((*pipeline)->ReviewRecommended(info("xq zz chest pain yy")));  // 2 of 5 < half
  EXPECT_EQ(info("xq zz").unknown, 2);
  Classification result;
  ASSERT_TRUE((*pipeline)->Classify(Row({1, 3}, {0.0f, 0.0f, 5.0f}), &result).ok());
  EXPECT_TRUE((*pipeline)->OutOfScope(result));
  ASSERT_TRUE((*pipeline)->Classify(Row({1, 3}, {0.0f, 5.0f, 0.0f}), &result).ok());
  EXPECT_FALSE((*pipeline)->OutOfScope(result));
}

TEST(TextPipelineTest, PoolsEmbeddingsOverTheTextsOwnTokensOnly) {
  TextPipeline::Options options;
  options.task = TextPipeline::Task::kEmbedding;
  options.output = "last_hidden_state";
  options.output_rank = 3;
  options.output_width = 2;
  options.pooling = TextPipeline::Pooling::kMean;
  auto mean = TextPipeline::Create(options, SmallTokenizer());
  ASSERT_TRUE(mean.ok()) << mean.status();
  // Two real tokens, then one position of batch padding (garbage values).
  const Tensor row = Row({1, 3, 2}, {1, 2, 3, 6, 100, 100});
  std::vector<float> out;
  ASSERT_TRUE((*mean)->Embed(row, 2, false, &out).ok());
  EXPECT_THAT(out, ElementsAre(2.0f, 4.0f));
  ASSERT_TRUE((*mean)->Embed(row, 2, true, &out).ok());
  EXPECT_NEAR(out[0], 2 / std::sqrt(20.0f), 1e-6);
  EXPECT_NEAR(out[1], 4 / std::sqrt(20.0f), 1e-6);
  EXPECT_FALSE((*mean)->Embed(row, 4, false, &out).ok());  // Longer than the row.

  options.pooling = TextPipeline::Pooling::kCls;
  auto cls = TextPipeline::Create(options, SmallTokenizer());
  ASSERT_TRUE(cls.ok());
  ASSERT_TRUE((*cls)->Embed(row, 2, false, &out).ok());
  EXPECT_THAT(out, ElementsAre(1.0f, 2.0f));
}

TEST(TextPipelineTest, RejectsLabelsThatDoNotMatchTheLogits) {
  auto options = ClassifierOptions();
  options.output_width = 3;
  auto pipeline = TextPipeline::Create(options, SmallTokenizer());
  EXPECT_EQ(pipeline.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(pipeline.status().message()), HasSubstr("3 logits but there are 2 labels"));
}

backend::ModelSignature SaeSignature() {
  backend::ModelSignature signature;
  for (const char* name : {"input_ids", "attention_mask", "token_type_ids"}) {
    signature.inputs.push_back({name, DataType::kInt64, Shape{-1, -1}});
  }
  signature.outputs.push_back({"logits", DataType::kFp32, Shape{-1, 3}});
  return signature;
}

config::ModelConfig SaeConfig() {
  config::ModelConfig config;
  config.set_name("sae_classifier");
  auto* tp = config.mutable_text_pipeline();
  tp->set_task(config::TextPipeline::TEXT_CLASSIFICATION);
  tp->set_tokenizer("vocab.txt");
  tp->set_lowercase(true);
  tp->set_max_length(128);
  tp->set_labels("labels.txt");
  tp->set_positive_label("serious");
  return config;
}

TEST(TextPipelineFromConfigTest, BuildsTheDemoSaePipeline) {
  auto pipeline = TextPipeline::FromConfig(SaeConfig(), SourceDir() + "/models/sae_classifier", SaeSignature());
  ASSERT_TRUE(pipeline.ok()) << pipeline.status();
  EXPECT_THAT((*pipeline)->labels(), ElementsAre("not_serious", "serious", "out_of_scope"));
  EXPECT_EQ((*pipeline)->options().positive_index, 1u);
  EXPECT_EQ((*pipeline)->options().output, "logits");
  ASSERT_NE((*pipeline)->FindTextOutput("probabilities"), nullptr);
  EXPECT_EQ((*pipeline)->FindTextOutput("probabilities")->dims, Shape({-1, 3}));
  // The ids metrics.json lists for this text.
  std::vector<Tensor> inputs;
  ASSERT_TRUE((*pipeline)->Tokenize("cant breath", true, &inputs).ok());
  EXPECT_THAT(Ints(inputs[0]), ElementsAre(2, 836, 586, 3));
}

TEST(TextPipelineFromConfigTest, ReadsWindowCalibrationAndReviewParameters) {
  auto config = SaeConfig();
  auto set = [&](std::string_view key, std::string value) {
    (*config.mutable_parameters())[std::string(key)].set_string_value(std::move(value));
  };
  set(kWindowLengthParameter, "64");
  set(kWindowStrideParameter, "32");
  set(kMaxWindowsParameter, "256");
  set(kTemperatureParameter, "1.5");
  set(kReviewMinKnownWordsParameter, "2");
  set(kReviewMinKnownFractionParameter, "0.5");
  set(kDisclaimerParameter, "demo only");
  auto pipeline = TextPipeline::FromConfig(config, SourceDir() + "/models/sae_classifier", SaeSignature());
  ASSERT_TRUE(pipeline.ok()) << pipeline.status();
  const auto& o = (*pipeline)->options();
  EXPECT_EQ(o.window_length, 64);
  EXPECT_EQ(o.window_stride, 32);
  EXPECT_EQ(o.max_windows, 256);
  EXPECT_FLOAT_EQ(o.temperature, 1.5f);
  EXPECT_EQ(o.review_min_known_words, 2);
  EXPECT_FLOAT_EQ(o.review_min_known_fraction, 0.5f);
  EXPECT_EQ(o.disclaimer, "demo only");
  // A value that is not a number names the parameter.
  set(kTemperatureParameter, "warm");
  pipeline = TextPipeline::FromConfig(config, SourceDir() + "/models/sae_classifier", SaeSignature());
  ASSERT_FALSE(pipeline.ok());
  EXPECT_THAT(pipeline.status().message(), HasSubstr("text_pipeline.calibration_temperature"));
  set(kTemperatureParameter, "1");
  set(kMaxWindowsParameter, "100000");
  EXPECT_FALSE(TextPipeline::FromConfig(config, SourceDir() + "/models/sae_classifier", SaeSignature()).ok());
}

TEST(TextPipelineFromConfigTest, NamesWhatDoesNotFitTheModel) {
  auto config = SaeConfig();
  config.mutable_text_pipeline()->set_positive_label("fatal");
  auto pipeline = TextPipeline::FromConfig(config, SourceDir() + "/models/sae_classifier", SaeSignature());
  EXPECT_THAT(std::string(pipeline.status().message()), HasSubstr("positive_label 'fatal'"));

  config = SaeConfig();
  config.mutable_text_pipeline()->set_output("hidden");
  pipeline = TextPipeline::FromConfig(config, SourceDir() + "/models/sae_classifier", SaeSignature());
  EXPECT_THAT(std::string(pipeline.status().message()), HasSubstr("'hidden' is not an output"));

  config = SaeConfig();
  config.mutable_text_pipeline()->set_tokenizer("missing.txt");
  pipeline = TextPipeline::FromConfig(config, SourceDir() + "/models/sae_classifier", SaeSignature());
  EXPECT_FALSE(pipeline.ok());
}

}  // namespace
}  // namespace ortserve::pipeline
