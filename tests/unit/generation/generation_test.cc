// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "backend/ort/ort_session_factory.h"
#include "core/utf8.h"
#include "generation/decoder_model.h"
#include "generation/generation_config.h"
#include "generation/generator.h"
#include "generation/sampler.h"
#include "pipeline/bpe_tokenizer.h"
#include "google/protobuf/text_format.h"
#include "simdjson.h"

namespace ortserve::generation {
namespace {

std::string SourceDir() {
  if (const char* dir = std::getenv("ORTSERVE_SOURCE_DIR")) return dir;
  return ORTSERVE_SOURCE_DIR_DEFAULT;
}

// --- sampling ---------------------------------------------------------------

TEST(SamplerTest, GreedyTakesTheArgmaxAndTheLowestIdOnATie) {
  Sampler sampler;
  Rng rng(1);
  SamplingParams greedy;
  greedy.temperature = 0;
  std::vector<float> logits = {0.5f, 2.0f, -1.0f, 2.0f};
  EXPECT_EQ(sampler.Sample(logits, {}, greedy, rng), 1);
  SamplingParams top1;
  top1.top_k = 1;
  EXPECT_EQ(sampler.Sample(logits, {}, top1, rng), 1);
}

// Argmax agrees with a plain first-maximum scan at every length and
// position, ties and NaNs included.
TEST(SamplerTest, ArgmaxIsTheFirstLargestValue) {
  auto scan = [](const std::vector<float>& v) {
    int32_t best = 0;
    for (size_t i = 1; i < v.size(); ++i) {
      if (v[i] > v[best]) best = static_cast<int32_t>(i);
    }
    return best;
  };
  EXPECT_EQ(Argmax({}), -1);
  const float nan = std::nanf("");
  EXPECT_EQ(Argmax(std::vector<float>{nan, 5, 7}), 0);  // a NaN first is never beaten, as in the scan
  EXPECT_EQ(Argmax(std::vector<float>{1, nan, 7, nan}), 2);
  EXPECT_EQ(Argmax(std::vector<float>{-0.0f, 0.0f}), 0);
  EXPECT_EQ(Argmax(std::vector<float>(2257, -INFINITY)), 0);
  std::mt19937 rng(11);
  for (size_t n : {1u, 7u, 8u, 9u, 16u, 17u, 2257u}) {
    for (int trial = 0; trial < 50; ++trial) {
      std::vector<float> v(n);
      for (float& x : v) x = static_cast<float>(rng() % 9) - 4.0f;  // many ties
      if (trial % 5 == 0) v[rng() % n] = nan;
      if (trial % 7 == 0) v[n - 1] = 100;  // the maximum in the tail
      EXPECT_EQ(Argmax(v), scan(v)) << "n " << n << " trial " << trial;
    }
  }
}

TEST(SamplerTest, RepetitionPenaltyMovesTheArgmax) {
  Sampler sampler;
  Rng rng(1);
  SamplingParams p;
  p.temperature = 0;
  p.repetition_penalty = 2.0f;
  std::vector<float> logits = {3.0f, 2.0f, -1.0f};
  const std::vector<int32_t> context = {0, 0, 2};
  EXPECT_EQ(sampler.Sample(logits, context, p, rng), 1);  // 3 / 2 = 1.5 < 2
  EXPECT_FLOAT_EQ(logits[0], 1.5f);
  EXPECT_FLOAT_EQ(logits[2], -2.0f);  // negative logits are multiplied
  EXPECT_FLOAT_EQ(logits[1], 2.0f);
}

TEST(SamplerTest, SeededSamplingIsReproducibleAndFollowsTheDistribution) {
  const std::vector<float> base = {std::log(0.5f), std::log(0.3f), std::log(0.15f), std::log(0.05f)};
  SamplingParams p;  // temperature 1: the distribution itself
  auto draw = [&](uint64_t seed, int n) {
    Sampler sampler;
    Rng rng(seed);
    std::vector<int> counts(4, 0);
    std::vector<int32_t> seq;
    for (int i = 0; i < n; ++i) {
      std::vector<float> logits = base;
      const int32_t id = sampler.Sample(logits, {}, p, rng);
      ++counts[id];
      seq.push_back(id);
    }
    return std::make_pair(counts, seq);
  };
  const auto [counts, seq] = draw(42, 20000);
  EXPECT_EQ(draw(42, 20000).second, seq);
  EXPECT_NE(draw(43, 20000).second, seq);
  const double want[] = {0.5, 0.3, 0.15, 0.05};
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(counts[i] / 20000.0, want[i], 0.015) << i;
}

TEST(SamplerTest, TopKAndTopPCutTheTail) {
  const std::vector<float> base = {std::log(0.4f), std::log(0.3f), std::log(0.2f), std::log(0.1f)};
  Rng rng(5);
  Sampler sampler;
  SamplingParams k2;
  k2.top_k = 2;
  SamplingParams p65;
  p65.top_p = 0.65f;  // 0.4 + 0.3 reaches it: two tokens
  SamplingParams p1;
  p1.top_p = 0.1f;  // the first token alone
  std::set<int32_t> seen_k, seen_p, seen_p1;
  for (int i = 0; i < 2000; ++i) {
    std::vector<float> a = base, b = base, c = base;
    seen_k.insert(sampler.Sample(a, {}, k2, rng));
    seen_p.insert(sampler.Sample(b, {}, p65, rng));
    seen_p1.insert(sampler.Sample(c, {}, p1, rng));
  }
  EXPECT_EQ(seen_k, (std::set<int32_t>{0, 1}));
  EXPECT_EQ(seen_p, (std::set<int32_t>{0, 1}));
  EXPECT_EQ(seen_p1, (std::set<int32_t>{0}));
  // A high temperature flattens, a low one sharpens.
  SamplingParams cold;
  cold.temperature = 0.05f;
  int first = 0;
  for (int i = 0; i < 1000; ++i) {
    std::vector<float> a = base;
    first += sampler.Sample(a, {}, cold, rng) == 0;
  }
  EXPECT_GT(first, 990);
}

TEST(SamplerTest, ValidateNamesTheField) {
  SamplingParams p;
  p.temperature = -1;
  EXPECT_NE(std::string(p.Validate().message()).find("temperature"), std::string::npos);
  p = {};
  p.top_p = 0;
  EXPECT_NE(std::string(p.Validate().message()).find("top_p"), std::string::npos);
  p = {};
  p.top_k = -3;
  EXPECT_NE(std::string(p.Validate().message()).find("top_k"), std::string::npos);
  p = {};
  p.repetition_penalty = NAN;
  EXPECT_NE(std::string(p.Validate().message()).find("repetition_penalty"), std::string::npos);
  EXPECT_TRUE(SamplingParams{}.Validate().ok());
}

// --- stop sequences -------------------------------------------------------

TEST(StopMatcherTest, HoldsBackAPossibleStartAndCutsBeforeTheStop) {
  const std::vector<std::string> stops = {"\n\n", "END"};
  StopMatcher m(stops);
  std::string_view ready;
  EXPECT_FALSE(m.Append("Hello E", &ready));
  EXPECT_EQ(ready, "Hello ");  // "E" may start "END"
  EXPECT_FALSE(m.Append("N", &ready));
  EXPECT_EQ(ready, "");
  EXPECT_FALSE(m.Append("x", &ready));
  EXPECT_EQ(ready, "ENx");
  EXPECT_FALSE(m.Append(" a\n", &ready));
  EXPECT_EQ(ready, " a");
  EXPECT_TRUE(m.Append("\nmore", &ready));
  EXPECT_EQ(ready, "");
  EXPECT_EQ(m.text(), "Hello ENx a");
  StopMatcher none({});
  EXPECT_FALSE(none.Append("abc", &ready));
  EXPECT_EQ(ready, "abc");
}

// --- the demo decoder on ONNX Runtime -------------------------------------

class DecoderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto factory = backend::OrtSessionFactory::Create({.shared_intra_op_threads = 1, .shared_inter_op_threads = 1});
    ASSERT_TRUE(factory.ok()) << factory.status();
    factory_ = std::move(*factory).release();
    backend::SessionOptions options;
    options.model_path = SourceDir() + "/models/tiny_decoder/1/model.onnx";
    auto session = factory_->Create(options);
    ASSERT_TRUE(session.ok()) << session.status();
    auto model = DecoderModel::Create(std::shared_ptr<backend::Session>(std::move(*session)));
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = std::move(*model).release();
    auto tokenizer = pipeline::BpeTokenizer::FromTokenizerJson(SourceDir() + "/models/tiny_decoder/tokenizer.json");
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    tokenizer_ = std::move(*tokenizer).release();
  }
  static void TearDownTestSuite() {
    delete model_;
    delete tokenizer_;
    delete factory_;
  }
  static GenerationLimits Limits() {
    GenerationLimits limits;
    limits.max_context_tokens = 256;
    limits.max_tokens_limit = 128;
    limits.eos_token_ids = {*tokenizer_->TokenId("<|endoftext|>")};
    return limits;
  }
  static std::vector<int32_t> Encode(std::string_view text) {
    std::vector<int32_t> ids;
    EXPECT_TRUE(tokenizer_->Encode(text, {}, &ids).ok());
    return ids;
  }
  static backend::OrtSessionFactory* factory_;
  static DecoderModel* model_;
  static pipeline::BpeTokenizer* tokenizer_;
};
backend::OrtSessionFactory* DecoderTest::factory_ = nullptr;
DecoderModel* DecoderTest::model_ = nullptr;
pipeline::BpeTokenizer* DecoderTest::tokenizer_ = nullptr;

TEST_F(DecoderTest, ReadsTheLayoutFromTheModel) {
  EXPECT_EQ(model_->num_layers(), 2);
  EXPECT_EQ(model_->num_heads(), 4);
  EXPECT_EQ(model_->head_dim(), 32);
  EXPECT_EQ(model_->vocab_size(), tokenizer_->vocab_size());
}

// Greedy decoding on ORT gives the ids torch gave for the same weights
// (scripts/generation/train_decoder.py writes them).
TEST_F(DecoderTest, GreedyMatchesTheTorchGoldens) {
  const std::string path = SourceDir() + "/tests/data/generation/greedy_goldens.json";
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_FALSE(parser.load(path).get(doc)) << path;
  const int32_t eos = static_cast<int32_t>(int64_t(doc["eos_token_id"]));
  Generator generator(*model_, *tokenizer_, Limits());
  int cases = 0;
  for (auto c : doc["cases"].get_array()) {
    GenerationRequest request;
    for (auto v : c["prompt_ids"].get_array()) request.prompt_ids.push_back(static_cast<int32_t>(int64_t(v)));
    std::vector<int32_t> want;
    for (auto v : c["output_ids"].get_array()) want.push_back(static_cast<int32_t>(int64_t(v)));
    const std::string prompt{std::string_view(c["prompt"])};
    EXPECT_EQ(Encode(prompt), request.prompt_ids) << prompt;
    request.sampling.temperature = 0;
    request.max_tokens = static_cast<int32_t>(want.size());
    std::string streamed;
    auto result = generator.Generate(request, [&](std::string_view d) {
      EXPECT_EQ(FindInvalidUtf8(d), std::string_view::npos);
      streamed += d;
      return true;
    });
    ASSERT_TRUE(result.ok()) << result.status();
    std::vector<int32_t> got = result->ids;
    if (result->finish == FinishReason::kStop) got.push_back(eos);
    EXPECT_EQ(got, want) << prompt;
    EXPECT_EQ(result->completion_tokens, static_cast<int64_t>(want.size()));
    EXPECT_EQ(result->prompt_tokens, static_cast<int64_t>(request.prompt_ids.size()));
    EXPECT_EQ(streamed, result->text);
    EXPECT_EQ(result->text, *tokenizer_->Decode(result->ids));
    ++cases;
  }
  EXPECT_GE(cases, 4);
}

// Sequences stepped together, joining at different steps and with different
// lengths, get the logits they get alone.
TEST_F(DecoderTest, BatchedStepsMatchSingleSequenceSteps) {
  const std::vector<std::string> prompts = {"I have been feeling", "my mom", "After the second dose I had a fever"};
  std::vector<float> logits;
  // Alone: greedy 6 tokens each, keeping every step's logits.
  std::vector<std::vector<std::vector<float>>> alone(prompts.size());
  std::vector<std::vector<int32_t>> alone_tokens(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    SequenceState s;
    s.tokens = Encode(prompts[i]);
    SequenceState* batch[] = {&s};
    for (int step = 0; step < 6; ++step) {
      ASSERT_TRUE(model_->Step(batch, &logits).ok());
      alone[i].push_back(logits);
      s.tokens.push_back(static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin()));
    }
    alone_tokens[i] = s.tokens;
  }
  // Together: sequence 0 starts, 1 joins at step 2 (its prefill beside 0's
  // decode), 2 joins at step 3; each leaves after its 6 steps.
  std::vector<SequenceState> seqs(prompts.size());
  std::vector<int> steps_done(prompts.size(), 0);
  const int join_at[] = {0, 2, 3};
  for (int step = 0; step < 12; ++step) {
    std::vector<SequenceState*> batch;
    std::vector<size_t> which;
    for (size_t i = 0; i < prompts.size(); ++i) {
      if (step == join_at[i]) seqs[i].tokens = Encode(prompts[i]);
      if (step >= join_at[i] && steps_done[i] < 6) {
        batch.push_back(&seqs[i]);
        which.push_back(i);
      }
    }
    if (batch.empty()) break;
    ASSERT_TRUE(model_->Step(batch, &logits).ok());
    const size_t v = static_cast<size_t>(model_->vocab_size());
    ASSERT_EQ(logits.size(), batch.size() * v);
    for (size_t b = 0; b < batch.size(); ++b) {
      const size_t i = which[b];
      const auto& want = alone[i][steps_done[i]];
      float max_diff = 0;
      for (size_t k = 0; k < v; ++k) max_diff = std::max(max_diff, std::abs(logits[b * v + k] - want[k]));
      EXPECT_LT(max_diff, 1e-3) << "sequence " << i << " step " << steps_done[i];
      batch[b]->tokens.push_back(static_cast<int32_t>(
          std::max_element(logits.begin() + b * v, logits.begin() + (b + 1) * v) - (logits.begin() + b * v)));
      ++steps_done[i];
    }
  }
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_EQ(steps_done[i], 6);
    EXPECT_EQ(seqs[i].tokens, alone_tokens[i]);
    EXPECT_EQ(seqs[i].cached + 1, static_cast<int64_t>(seqs[i].tokens.size()));
    EXPECT_EQ(seqs[i].kv_bytes(), static_cast<size_t>(seqs[i].cached * model_->kv_bytes_per_token()));
  }
}

TEST_F(DecoderTest, SeededSamplingIsReproducible) {
  Generator generator(*model_, *tokenizer_, Limits());
  GenerationRequest request;
  request.prompt_ids = Encode("The headache started");
  request.sampling.temperature = 1.0f;
  request.sampling.top_k = 50;
  request.sampling.top_p = 0.95f;
  request.sampling.repetition_penalty = 1.2f;
  request.sampling.has_seed = true;
  request.sampling.seed = 1234;
  request.max_tokens = 20;
  request.ignore_eos = true;
  auto a = generator.Generate(request);
  auto b = generator.Generate(request);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->ids, b->ids);
  EXPECT_EQ(a->ids.size(), 20u);
  EXPECT_EQ(a->finish, FinishReason::kLength);
  std::set<std::vector<int32_t>> distinct;
  for (uint64_t seed = 0; seed < 5; ++seed) {
    request.sampling.seed = seed;
    distinct.insert(generator.Generate(request)->ids);
  }
  EXPECT_GT(distinct.size(), 1u);
  // Without a seed each request draws its own: five requests on one thread
  // do not all repeat one sequence.
  request.sampling.has_seed = false;
  std::set<std::vector<int32_t>> unseeded;
  for (int i = 0; i < 5; ++i) unseeded.insert(generator.Generate(request)->ids);
  EXPECT_GT(unseeded.size(), 1u);
}

TEST_F(DecoderTest, StopSequencesCancelAndLimits) {
  Generator generator(*model_, *tokenizer_, Limits());
  GenerationRequest request;
  request.prompt_ids = Encode("I have been feeling");
  request.sampling.temperature = 0;
  request.max_tokens = 24;
  request.ignore_eos = true;
  auto full = generator.Generate(request);
  ASSERT_TRUE(full.ok());
  ASSERT_GE(full->text.size(), 6u);
  // Stop at the text's second word boundary or its fourth character.
  const size_t at = full->text.find(' ', 1) != std::string::npos ? full->text.find(' ', 1) : 4;
  request.stop = {full->text.substr(at, 2)};
  std::string streamed;
  auto stopped = generator.Generate(request, [&](std::string_view d) {
    streamed += d;
    return true;
  });
  ASSERT_TRUE(stopped.ok());
  EXPECT_EQ(stopped->finish, FinishReason::kStop);
  EXPECT_EQ(stopped->text, full->text.substr(0, full->text.find(request.stop[0])));
  EXPECT_EQ(streamed, stopped->text);
  EXPECT_LT(stopped->ids.size(), full->ids.size());

  request.stop.clear();
  int calls = 0;
  auto cancelled = generator.Generate(request, [&](std::string_view) { return ++calls < 2; });
  ASSERT_TRUE(cancelled.ok());
  EXPECT_EQ(cancelled->finish, FinishReason::kCancelled);
  EXPECT_LT(cancelled->ids.size(), full->ids.size());

  request.max_tokens = 250;  // 250 + prompt > 256, and over max_tokens_limit
  EXPECT_EQ(generator.Generate(request).status().code(), absl::StatusCode::kInvalidArgument);
  request.max_tokens = 100;
  request.prompt_ids.assign(200, 5);
  auto too_long = generator.Generate(request);
  EXPECT_EQ(too_long.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(too_long.status().message()).find("maximum context length is 256"), std::string::npos);
  request.prompt_ids = {1, 999999};
  EXPECT_EQ(generator.Generate(request).status().code(), absl::StatusCode::kInvalidArgument);
  request.prompt_ids.clear();
  EXPECT_EQ(generator.Generate(request).status().code(), absl::StatusCode::kInvalidArgument);
  request.prompt_ids = {1};
  request.stop = {"a", "b", "c", "d", "e"};
  EXPECT_EQ(generator.Generate(request).status().code(), absl::StatusCode::kInvalidArgument);
}

// A stream interval of N delivers the same text in pieces of N tokens'
// worth (and the rest at the end), with a stop sequence and a cancel too.
TEST_F(DecoderTest, AStreamIntervalDeliversTheSameTextInFewerPieces) {
  GenerationRequest request;
  request.prompt_ids = Encode("I have been feeling");
  request.sampling.temperature = 0;
  request.max_tokens = 30;
  request.ignore_eos = true;
  auto pieces = [&](int32_t interval, const GenerationRequest& r, std::string* text) {
    GenerationLimits limits = Limits();
    limits.stream_interval_tokens = interval;
    Generator generator(*model_, *tokenizer_, limits);
    int calls = 0;
    auto result = generator.Generate(r, [&](std::string_view d) {
      EXPECT_FALSE(d.empty());
      *text += d;
      ++calls;
      return true;
    });
    EXPECT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(*text, result->text) << "interval " << interval;
    return calls;
  };
  std::string one, four, seven;
  const int each = pieces(1, request, &one);
  EXPECT_GE(each, 20);                             // about one piece per token
  EXPECT_LE(pieces(4, request, &four), 30 / 4 + 1);  // at most one per 4 tokens, and the end
  EXPECT_LE(pieces(7, request, &seven), 30 / 7 + 1);
  EXPECT_EQ(four, one);
  EXPECT_EQ(seven, one);
  // A stop sequence still cuts the text where it starts.
  const size_t at = one.find(' ', 1) != std::string::npos ? one.find(' ', 1) : 4;
  request.stop = {one.substr(at, 2)};
  std::string stopped_one, stopped_four;
  pieces(1, request, &stopped_one);
  pieces(4, request, &stopped_four);
  EXPECT_EQ(stopped_four, stopped_one);
  EXPECT_EQ(stopped_four, one.substr(0, one.find(request.stop[0])));
  // A callback that says stop ends the sequence at its delivery.
  request.stop.clear();
  GenerationLimits limits = Limits();
  limits.stream_interval_tokens = 4;
  Generator generator(*model_, *tokenizer_, limits);
  auto cancelled = generator.Generate(request, [](std::string_view) { return false; });
  ASSERT_TRUE(cancelled.ok());
  EXPECT_EQ(cancelled->finish, FinishReason::kCancelled);
  EXPECT_EQ(cancelled->ids.size(), 4u);
}

// --- the config block ----------------------------------------------------

absl::StatusOr<GenerationSetup> Load(const std::string& text) {
  config::ModelGeneration block;
  if (!google::protobuf::TextFormat::ParseFromString(text, &block)) return absl::InvalidArgumentError("parse");
  return LoadGenerationConfig(block, SourceDir() + "/models/tiny_decoder");
}

TEST(GenerationConfigTest, LoadsTheDemoModelsBlockWithDefaults) {
  auto setup = Load("tokenizer: 'tokenizer.json' max_context_tokens: 256 top_k: 40 temperature: 0.7");
  ASSERT_TRUE(setup.ok()) << setup.status();
  EXPECT_EQ(setup->limits.max_context_tokens, 256);
  EXPECT_EQ(setup->limits.max_tokens_limit, 255);  // 1024 capped by the context
  EXPECT_EQ(setup->limits.default_max_tokens, 16);
  EXPECT_EQ(setup->limits.eos_token_ids, std::vector<int32_t>{*setup->tokenizer->TokenId("<|endoftext|>")});
  EXPECT_EQ(setup->defaults.top_k, 40);
  EXPECT_FLOAT_EQ(setup->defaults.temperature, 0.7f);
  EXPECT_FLOAT_EQ(setup->defaults.top_p, 1.0f);
  auto pair = Load("tokenizer: 'vocab.json' merges: 'merges.txt' eos_token: 'zzqqzz'");
  EXPECT_FALSE(pair.ok());  // no single token of this vocabulary
  pair = Load("tokenizer: 'vocab.json' merges: 'merges.txt'");
  ASSERT_TRUE(pair.ok()) << pair.status();
  EXPECT_EQ(pair->limits.eos_token_ids, setup->limits.eos_token_ids);
}

// The benchmarks' static batching switch is a 0/1 model parameter.
TEST(GenerationConfigTest, ReadsTheStaticBatchingSwitch) {
  config::ModelConfig config;
  GenerationSetup setup;
  ASSERT_TRUE(ReadGenerationParameters(config, &setup).ok());
  EXPECT_FALSE(setup.batching.static_batching);
  (*config.mutable_parameters())["generation.static_batching"].set_string_value("1");
  ASSERT_TRUE(ReadGenerationParameters(config, &setup).ok());
  EXPECT_TRUE(setup.batching.static_batching);
  (*config.mutable_parameters())["generation.static_batching"].set_string_value("2");
  const absl::Status bad = ReadGenerationParameters(config, &setup);
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.message().find("generation.static_batching"), std::string_view::npos) << bad;
}

TEST(GenerationConfigTest, RejectsBadFieldsByName) {
  auto expect = [](const std::string& text, std::string_view field) {
    auto setup = Load(text);
    ASSERT_FALSE(setup.ok()) << text;
    EXPECT_NE(std::string(setup.status().message()).find(field), std::string::npos) << setup.status();
  };
  expect("", "generation.tokenizer");
  expect("tokenizer: '../tiny_decoder/tokenizer.json'", "'..'");
  expect("tokenizer: '/etc/passwd'", "relative");
  expect("tokenizer: 'tokenizer.json' max_context_tokens: -5", "max_context_tokens");
  expect("tokenizer: 'tokenizer.json' max_stop_sequences: 1000", "max_stop_sequences");
  expect("tokenizer: 'tokenizer.json' temperature: -1", "temperature");
  expect("tokenizer: 'tokenizer.json' top_p: 2", "top_p");
  expect("tokenizer: 'tokenizer.json' eos_token: '<|nope|>'", "eos_token");
  expect("tokenizer: 'missing.json'", "missing.json");
  expect("tokenizer: 'tokenizer.json' stream_interval_tokens: 0", "stream_interval_tokens");
  expect("tokenizer: 'tokenizer.json' stream_interval_tokens: 257", "stream_interval_tokens");
  auto interval = Load("tokenizer: 'tokenizer.json' stream_interval_tokens: 8");
  ASSERT_TRUE(interval.ok()) << interval.status();
  EXPECT_EQ(interval->limits.stream_interval_tokens, 8);
  EXPECT_EQ(Load("tokenizer: 'tokenizer.json'")->limits.stream_interval_tokens, 1);
}

// --- the batching settings ------------------------------------------------

// ReadGenerationParameters over a whole model config in text format.
absl::StatusOr<GenerationSetup> Batching(const std::string& text) {
  config::ModelConfig config;
  if (!google::protobuf::TextFormat::ParseFromString(text, &config)) return absl::InvalidArgumentError("parse");
  GenerationSetup setup;
  if (absl::Status s = ReadGenerationParameters(config, &setup); !s.ok()) return s;
  return setup;
}

TEST(GenerationConfigTest, ReadsTheBatchingFieldsOfTheBlock) {
  auto setup = Batching(
      "generation { tokenizer: 't' kv_cache_bytes: 1048576 kv_block_tokens: 8 max_batch_sequences: 3 "
      "max_waiting_requests: 5 max_queue_wait_ms: 0 max_decode_runs: 2 decode_run_cost_tokens: 0 }");
  ASSERT_TRUE(setup.ok()) << setup.status();
  EXPECT_EQ(setup->batching.kv_cache_bytes, 1048576);
  EXPECT_EQ(setup->batching.kv_block_tokens, 8);
  EXPECT_EQ(setup->batching.max_batch_sequences, 3);
  EXPECT_EQ(setup->batching.max_waiting, 5);
  EXPECT_EQ(setup->batching.max_wait, absl::ZeroDuration());  // 0 is a value: refuse unless room now
  EXPECT_EQ(setup->batching.decode_plan.max_runs, 2);
  EXPECT_EQ(setup->batching.decode_plan.run_cost_tokens, 0);
  EXPECT_TRUE(setup->warnings.empty());
  // Unset fields keep the defaults.
  auto defaults = Batching("generation { tokenizer: 't' kv_block_tokens: 32 }");
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->batching.kv_cache_bytes, int64_t{256} << 20);
  EXPECT_EQ(defaults->batching.kv_block_tokens, 32);
  EXPECT_EQ(defaults->batching.max_batch_sequences, 32);
  EXPECT_EQ(defaults->batching.max_waiting, 64);
  EXPECT_EQ(defaults->batching.max_wait, absl::Seconds(2));
  EXPECT_EQ(defaults->batching.decode_plan.max_runs, DecodePlanOptions{}.max_runs);
  EXPECT_EQ(defaults->batching.decode_plan.run_cost_tokens, DecodePlanOptions{}.run_cost_tokens);
}

TEST(GenerationConfigTest, RejectsOutOfRangeBatchingFieldsByName) {
  auto expect = [](const std::string& field, const std::string& value, std::string_view range) {
    auto setup = Batching("generation { tokenizer: 't' " + field + ": " + value + " }");
    ASSERT_FALSE(setup.ok()) << field << " " << value;
    EXPECT_EQ(setup.status().code(), absl::StatusCode::kInvalidArgument);
    const std::string message(setup.status().message());
    EXPECT_NE(message.find("generation." + field), std::string::npos) << message;
    EXPECT_NE(message.find(range), std::string::npos) << message;
    EXPECT_NE(message.find("got " + value), std::string::npos) << message;
  };
  expect("kv_cache_bytes", "0", "[1, 1099511627776]");
  expect("kv_cache_bytes", "-1", "[1, 1099511627776]");
  expect("kv_cache_bytes", "1099511627777", "[1, 1099511627776]");
  expect("kv_block_tokens", "0", "[1, 4096]");
  expect("kv_block_tokens", "4097", "[1, 4096]");
  expect("max_batch_sequences", "0", "[1, 4096]");
  expect("max_batch_sequences", "-7", "[1, 4096]");
  expect("max_waiting_requests", "0", "[1, 1048576]");
  expect("max_queue_wait_ms", "-1", "[0, 3600000]");
  expect("max_queue_wait_ms", "3600001", "[0, 3600000]");
  expect("max_decode_runs", "0", "[1, 16]");
  expect("max_decode_runs", "17", "[1, 16]");
  expect("decode_run_cost_tokens", "-1", "[0, 1073741824]");
}

TEST(GenerationConfigTest, TheDeprecatedParametersStillWorkWithAWarning) {
  auto setup = Batching(
      "generation { tokenizer: 't' max_batch_sequences: 4 }\n"
      "parameters { key: 'generation.kv_block_tokens' value { string_value: '8' } }\n"
      "parameters { key: 'generation.max_queue_wait_ms' value { string_value: '250' } }");
  ASSERT_TRUE(setup.ok()) << setup.status();
  EXPECT_EQ(setup->batching.kv_block_tokens, 8);
  EXPECT_EQ(setup->batching.max_wait, absl::Milliseconds(250));
  EXPECT_EQ(setup->batching.max_batch_sequences, 4);
  ASSERT_EQ(setup->warnings.size(), 2u);
  EXPECT_NE(setup->warnings[0].find("'generation.kv_block_tokens' is deprecated"), std::string::npos)
      << setup->warnings[0];
  EXPECT_NE(setup->warnings[0].find("kv_block_tokens: 8"), std::string::npos) << setup->warnings[0];
  // The old spelling keeps its own checks.
  auto bad = Batching("parameters { key: 'generation.kv_block_tokens' value { string_value: '8x' } }");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(std::string(bad.status().message()).find("parameter 'generation.kv_block_tokens'"), std::string::npos)
      << bad.status();
  bad = Batching("parameters { key: 'generation.max_batch_sequences' value { string_value: '0' } }");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(std::string(bad.status().message()).find("[1, 4096]"), std::string::npos) << bad.status();
}

TEST(GenerationConfigTest, RefusesASettingGivenBothWays) {
  auto setup = Batching(
      "generation { tokenizer: 't' kv_cache_bytes: 1048576 }\n"
      "parameters { key: 'generation.kv_cache_bytes' value { string_value: '1048576' } }");
  ASSERT_FALSE(setup.ok());
  const std::string message(setup.status().message());
  EXPECT_NE(message.find("generation.kv_cache_bytes is set both"), std::string::npos) << message;
}

TEST(GenerationConfigTest, TheDemoModelsConfigSpellsTheBatchingFields) {
  std::ifstream in(SourceDir() + "/models/tiny_decoder/config.pbtxt");
  std::stringstream text;
  text << in.rdbuf();
  auto setup = Batching(text.str());
  ASSERT_TRUE(setup.ok()) << setup.status();
  EXPECT_TRUE(setup->warnings.empty());
  EXPECT_EQ(setup->batching.kv_cache_bytes, int64_t{32} << 20);
  EXPECT_EQ(setup->batching.kv_block_tokens, 16);
}

}  // namespace
}  // namespace ortserve::generation
