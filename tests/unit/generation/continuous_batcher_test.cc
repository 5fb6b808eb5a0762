// SPDX-License-Identifier: Apache-2.0
// The key/value block pool, the paged decoder step, and the continuous
// batcher on the demo decoder (ONNX Runtime): sequences share steps, the
// pool bounds admission, a waiting request is refused after its bound, and
// a cancelled sequence gives its blocks back before the next step.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "backend/ort/ort_session_factory.h"
#include "generation/continuous_batcher.h"
#include "generation/decoder_model.h"
#include "generation/generator.h"
#include "generation/kv_block_pool.h"
#include "generation/resident_batch.h"
#include "observability/metrics.h"
#include "pipeline/bpe_tokenizer.h"

namespace ortserve::generation {
namespace {

std::string SourceDir() {
  if (const char* dir = std::getenv("ORTSERVE_SOURCE_DIR")) return dir;
  return ORTSERVE_SOURCE_DIR_DEFAULT;
}

// The value of one series in a Prometheus exposition (`series` as
// `name{labels}`), or -1 when it is not there.
double SeriesValue(const std::string& text, const std::string& series) {
  const size_t at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 2));
}

TEST(KvBlockPoolTest, HoldsWhatTheBudgetAllowsAndGivesBlocksBack) {
  KvBlockPool::Options o{.num_layers = 2, .num_heads = 4, .head_dim = 32, .block_tokens = 16};
  o.budget_bytes = 10 * 2 * 2 * 4 * 16 * 32 * 4 + 100;  // ten blocks and a bit
  auto pool = KvBlockPool::Create(o);
  ASSERT_TRUE(pool.ok()) << pool.status();
  KvBlockPool& p = **pool;
  EXPECT_EQ(p.total_blocks(), 10);
  EXPECT_EQ(p.block_bytes(), 2 * 2 * 4 * 16 * 32 * 4);
  EXPECT_EQ(p.BlocksFor(1), 1);
  EXPECT_EQ(p.BlocksFor(16), 1);
  EXPECT_EQ(p.BlocksFor(17), 2);
  std::vector<int32_t> a, b;
  ASSERT_TRUE(p.Allocate(7, &a));
  EXPECT_FALSE(p.Allocate(4, &b));  // nothing taken
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(p.used_blocks(), 7);
  ASSERT_TRUE(p.Allocate(3, &b));
  std::vector<int32_t> all = a;
  all.insert(all.end(), b.begin(), b.end());
  std::sort(all.begin(), all.end());
  EXPECT_EQ(std::unique(all.begin(), all.end()), all.end());  // distinct blocks
  p.Free(&a);
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(p.used_blocks(), 3);
  EXPECT_TRUE(p.Allocate(7, &a));
}

TEST(KvBlockPoolTest, RefusesABudgetWithoutABlockAndBadDimensions) {
  KvBlockPool::Options o{.num_layers = 2, .num_heads = 4, .head_dim = 32, .block_tokens = 16, .budget_bytes = 1000};
  EXPECT_NE(KvBlockPool::Create(o).status().message().find("kv_cache_bytes"), std::string_view::npos);
  o.budget_bytes = 1 << 30;
  o.head_dim = 0;
  EXPECT_FALSE(KvBlockPool::Create(o).ok());
  o.head_dim = int64_t{1} << 40;
  EXPECT_FALSE(KvBlockPool::Create(o).ok());  // a block's size overflows
}

class BatcherTest : public ::testing::Test {
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
    model_ = new std::shared_ptr<const DecoderModel>(std::move(*model));
    auto tokenizer = pipeline::BpeTokenizer::FromTokenizerJson(SourceDir() + "/models/tiny_decoder/tokenizer.json");
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    tokenizer_ = new std::shared_ptr<const pipeline::BpeTokenizer>(std::move(*tokenizer));
  }
  static void TearDownTestSuite() {
    delete model_;
    delete tokenizer_;
    delete factory_;
  }
  static GenerationLimits Limits() {
    GenerationLimits limits;
    limits.max_context_tokens = 256;
    limits.max_tokens_limit = 200;
    limits.eos_token_ids = {*(*tokenizer_)->TokenId("<|endoftext|>")};
    return limits;
  }
  static ContinuousBatcher::Options Options() {
    ContinuousBatcher::Options o;
    o.model = *model_;
    o.tokenizer = *tokenizer_;
    o.limits = Limits();
    o.kv_cache_bytes = 8 << 20;
    return o;
  }
  static GenerationRequest Request(std::string_view prompt, int32_t max_tokens) {
    GenerationRequest r;
    EXPECT_TRUE((*tokenizer_)->Encode(prompt, {}, &r.prompt_ids).ok());
    r.sampling.temperature = 0;
    r.max_tokens = max_tokens;
    r.ignore_eos = true;
    return r;
  }
  // Collects one sequence's outcome.
  struct Outcome {
    absl::Notification done;
    absl::StatusOr<GenerationResult> result;
    std::string streamed;
    ContinuousBatcher::Callbacks Callbacks() {
      ContinuousBatcher::Callbacks c;
      c.on_text = [this](std::string_view d) {
        streamed += d;
        return true;
      };
      c.on_done = [this](absl::StatusOr<GenerationResult> r) {
        result = std::move(r);
        done.Notify();
      };
      return c;
    }
    bool Wait() { return done.WaitForNotificationWithTimeout(absl::Seconds(60)); }
  };
  // Submits prompts[0] to `b`, and the others from its `join_after`-th
  // piece of text (on the loop thread, within one step, so the next
  // iteration admits them together); then checks that each gets exactly
  // the tokens and text it gets alone.
  static void JoinAfterAndMatchGeneratingAlone(ContinuousBatcher* b, const std::vector<std::string>& prompts,
                                               const std::vector<int32_t>& max_tokens, int join_after) {
    std::vector<std::unique_ptr<Outcome>> outcomes;
    for (size_t i = 0; i < prompts.size(); ++i) outcomes.push_back(std::make_unique<Outcome>());
    auto first = outcomes[0]->Callbacks();
    int texts = 0;
    auto stream_first = std::move(first.on_text);
    first.on_text = [&, stream_first](std::string_view d) {
      if (++texts == join_after) {
        for (size_t i = 1; i < prompts.size(); ++i) {
          EXPECT_TRUE(b->Submit(Request(prompts[i], max_tokens[i]), nullptr, outcomes[i]->Callbacks()).ok());
        }
      }
      return stream_first(d);
    };
    ASSERT_TRUE(b->Submit(Request(prompts[0], max_tokens[0]), nullptr, std::move(first)).ok());
    Generator alone(**model_, **tokenizer_, Limits());
    for (size_t i = 0; i < prompts.size(); ++i) {
      ASSERT_TRUE(outcomes[i]->Wait()) << prompts[i];
      ASSERT_TRUE(outcomes[i]->result.ok()) << outcomes[i]->result.status();
      auto want = alone.Generate(Request(prompts[i], max_tokens[i]));
      ASSERT_TRUE(want.ok());
      EXPECT_EQ(outcomes[i]->result->ids, want->ids) << prompts[i];
      EXPECT_EQ(outcomes[i]->streamed, want->text) << prompts[i];
    }
  }
  static backend::OrtSessionFactory* factory_;
  static std::shared_ptr<const DecoderModel>* model_;
  static std::shared_ptr<const pipeline::BpeTokenizer>* tokenizer_;
};
backend::OrtSessionFactory* BatcherTest::factory_ = nullptr;
std::shared_ptr<const DecoderModel>* BatcherTest::model_ = nullptr;
std::shared_ptr<const pipeline::BpeTokenizer>* BatcherTest::tokenizer_ = nullptr;

// Paged steps (sequences joining at different steps, caches in pool blocks)
// give the logits of unpaged steps of each sequence alone.
TEST_F(BatcherTest, PagedStepsMatchUnpagedSteps) {
  const DecoderModel& model = **model_;
  KvBlockPool::Options po{.num_layers = model.num_layers(), .num_heads = model.num_heads(),
                          .head_dim = model.head_dim(), .block_tokens = 4, .budget_bytes = 4 << 20};
  auto pool = KvBlockPool::Create(po);
  ASSERT_TRUE(pool.ok());
  const std::vector<std::string> prompts = {"I have been feeling", "my mom", "After the second dose I had a fever"};
  std::vector<float> logits;
  std::vector<std::vector<std::vector<float>>> alone(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    SequenceState s;
    s.tokens = Request(prompts[i], 1).prompt_ids;
    SequenceState* batch[] = {&s};
    for (int step = 0; step < 6; ++step) {
      ASSERT_TRUE(model.Step(batch, &logits).ok());
      alone[i].push_back(logits);
      s.tokens.push_back(static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin()));
    }
  }
  std::vector<SequenceState> seqs(prompts.size());
  std::vector<int> steps_done(prompts.size(), 0);
  const int join_at[] = {0, 2, 3};
  DecoderModel::Scratch scratch;
  for (int step = 0; step < 12; ++step) {
    std::vector<SequenceState*> batch;
    std::vector<size_t> which;
    for (size_t i = 0; i < prompts.size(); ++i) {
      if (step == join_at[i]) {
        seqs[i].tokens = Request(prompts[i], 1).prompt_ids;
        ASSERT_TRUE((*pool)->Allocate((*pool)->BlocksFor(seqs[i].tokens.size() + 6), &seqs[i].blocks));
      }
      if (step >= join_at[i] && steps_done[i] < 6) {
        batch.push_back(&seqs[i]);
        which.push_back(i);
      }
    }
    if (batch.empty()) break;
    ASSERT_TRUE(model.StepPaged(batch, **pool, &scratch, &logits).ok());
    const size_t v = static_cast<size_t>(model.vocab_size());
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
  for (size_t i = 0; i < prompts.size(); ++i) EXPECT_EQ(steps_done[i], 6);
  // Too few blocks for the tokens: refused, nothing run.
  SequenceState short_of_blocks;
  short_of_blocks.tokens = Request("I have been feeling a lot of pain", 1).prompt_ids;
  ASSERT_TRUE((*pool)->Allocate(1, &short_of_blocks.blocks));
  SequenceState* one[] = {&short_of_blocks};
  EXPECT_FALSE(model.StepPaged(one, **pool, &scratch, &logits).ok());
}

// Decode steps through the resident batch (sequences joining and leaving
// at different steps, free rows taken in place, rebuilds when the width
// runs past the longest sequence) give each sequence the greedy tokens and
// logits it gets stepped alone, token by token.
TEST_F(BatcherTest, ResidentDecodeStepsMatchSingleSequenceSteps) {
  const DecoderModel& model = **model_;
  KvBlockPool::Options po{.num_layers = model.num_layers(), .num_heads = model.num_heads(),
                          .head_dim = model.head_dim(), .block_tokens = 4, .budget_bytes = 4 << 20};
  auto pool = KvBlockPool::Create(po);
  ASSERT_TRUE(pool.ok());
  const std::vector<std::string> prompts = {"I have been feeling", "my mom", "After the second dose I had a fever",
                                            "The headache started", "rash", "I could not sleep for three nights",
                                            "my arm", "She said the fever was gone by morning"};
  const int join_at[] = {0, 0, 1, 2, 5, 6, 9, 12};  // 3 takes the row 1 leaves
  const int tokens_wanted[] = {24, 3, 10, 2, 14, 6, 9, 5};  // generated tokens: prefill's, then decode steps
  const size_t n = prompts.size();
  const size_t v = static_cast<size_t>(model.vocab_size());
  std::vector<float> logits;
  std::vector<std::vector<std::vector<float>>> alone(n);
  std::vector<std::vector<int32_t>> alone_tokens(n);
  for (size_t i = 0; i < n; ++i) {
    SequenceState s;
    s.tokens = Request(prompts[i], 1).prompt_ids;
    SequenceState* batch[] = {&s};
    for (int step = 0; step < tokens_wanted[i]; ++step) {
      ASSERT_TRUE(model.Step(batch, &logits).ok());
      alone[i].push_back(logits);
      s.tokens.push_back(static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin()));
    }
    alone_tokens[i] = s.tokens;
  }
  // As the batcher runs them: each loop, the new prompts as one paged
  // prefill step, then the others as one resident decode step.
  ResidentBatch resident(ResidentBatch::Options{.slack_tokens = 6});
  DecoderModel::Scratch scratch;
  std::vector<std::unique_ptr<SequenceState>> seqs(n);
  std::vector<int> produced(n, 0);
  auto check = [&](std::span<const size_t> which, std::span<SequenceState* const> batch) {
    ASSERT_EQ(logits.size(), batch.size() * v);
    for (size_t b = 0; b < batch.size(); ++b) {
      const size_t i = which[b];
      const auto& want = alone[i][produced[i]];
      float max_diff = 0;
      for (size_t k = 0; k < v; ++k) max_diff = std::max(max_diff, std::abs(logits[b * v + k] - want[k]));
      EXPECT_LT(max_diff, 1e-3) << "sequence " << i << " token " << produced[i];
      batch[b]->tokens.push_back(static_cast<int32_t>(
          std::max_element(logits.begin() + b * v, logits.begin() + (b + 1) * v) - (logits.begin() + b * v)));
      ++produced[i];
    }
  };
  for (int loop = 0; loop < 60; ++loop) {
    std::vector<SequenceState*> prefill, decode;
    std::vector<size_t> prefill_which, decode_which;
    for (size_t i = 0; i < n; ++i) {
      if (loop == join_at[i]) {
        seqs[i] = std::make_unique<SequenceState>();
        seqs[i]->tokens = Request(prompts[i], 1).prompt_ids;
        ASSERT_TRUE((*pool)->Allocate((*pool)->BlocksFor(seqs[i]->tokens.size() + tokens_wanted[i]),
                                      &seqs[i]->blocks));
      }
      if (seqs[i] == nullptr) continue;
      (seqs[i]->cached == 0 ? prefill : decode).push_back(seqs[i].get());
      (seqs[i]->cached == 0 ? prefill_which : decode_which).push_back(i);
    }
    if (prefill.empty() && decode.empty() && loop > join_at[n - 1]) break;
    if (!prefill.empty()) {
      ASSERT_TRUE(model.StepPaged(prefill, **pool, &scratch, &logits).ok());
      check(prefill_which, prefill);
    }
    if (!decode.empty()) {
      ASSERT_TRUE(resident.Step(model, decode, **pool, &logits).ok());
      check(decode_which, decode);
      EXPECT_GE(resident.rows(), static_cast<int64_t>(decode.size()));
    }
    for (size_t i = 0; i < n; ++i) {  // the finished leave, their blocks back
      if (seqs[i] != nullptr && produced[i] == tokens_wanted[i]) {
        EXPECT_EQ(seqs[i]->tokens, alone_tokens[i]) << prompts[i];
        (*pool)->Free(&seqs[i]->blocks);
        seqs[i].reset();
      }
    }
  }
  for (size_t i = 0; i < n; ++i) EXPECT_EQ(produced[i], tokens_wanted[i]) << prompts[i];
  EXPECT_GT(resident.rebuilds(), 1);
  EXPECT_GT(resident.joins_in_place(), 0);
  EXPECT_EQ((*pool)->used_blocks(), 0);
  // A sequence with a prompt still pending is refused, nothing run.
  SequenceState fresh;
  fresh.tokens = Request("my mom", 1).prompt_ids;
  ASSERT_TRUE((*pool)->Allocate(4, &fresh.blocks));
  SequenceState* one[] = {&fresh};
  EXPECT_EQ(resident.Step(model, one, **pool, &logits).code(), absl::StatusCode::kInvalidArgument);
}

// Static batching (the benchmarks' baseline): a request that arrives while
// a batch runs starts only once that batch has ended.
TEST_F(BatcherTest, StaticBatchingStartsWaitingRequestsOnlyInAnEmptyBatch) {
  ContinuousBatcher::Options o = Options();
  o.static_batching = true;
  o.max_wait = absl::Seconds(60);
  auto batcher = ContinuousBatcher::Create(o);
  ASSERT_TRUE(batcher.ok()) << batcher.status();
  absl::Mutex mu;
  std::vector<std::string> events;
  auto record = [&](std::string e) {
    absl::MutexLock lock(&mu);
    events.push_back(std::move(e));
  };
  Outcome a, b;
  absl::Notification started, queued;
  auto ca = a.Callbacks();
  ca.on_start = [&] {
    record("a start");
    started.Notify();
    queued.WaitForNotification();
  };
  auto done_a = std::move(ca.on_done);
  ca.on_done = [&, done_a](absl::StatusOr<GenerationResult> r) {
    record("a done");
    done_a(std::move(r));
  };
  ASSERT_TRUE((*batcher)->Submit(Request("I have been feeling", 20), nullptr, std::move(ca)).ok());
  started.WaitForNotification();
  auto cb = b.Callbacks();
  cb.on_start = [&] { record("b start"); };
  ASSERT_TRUE((*batcher)->Submit(Request("my mom", 4), nullptr, std::move(cb)).ok());
  queued.Notify();
  ASSERT_TRUE(a.Wait());
  ASSERT_TRUE(b.Wait());
  ASSERT_TRUE(b.result.ok()) << b.result.status();
  absl::MutexLock lock(&mu);
  EXPECT_EQ(events, (std::vector<std::string>{"a start", "a done", "b start"}));
  EXPECT_EQ((*batcher)->stats().max_step_sequences, 1);
}

// Requests submitted while the loop is busy join the running batch; each
// gets the text it gets alone (greedy).
TEST_F(BatcherTest, ConcurrentSequencesShareStepsAndMatchGeneratingAlone) {
  auto batcher = ContinuousBatcher::Create(Options());
  ASSERT_TRUE(batcher.ok()) << batcher.status();
  const std::vector<std::string> prompts = {"I have been feeling", "my mom", "After the second dose I had a fever",
                                            "The headache started"};
  Generator alone(**model_, **tokenizer_, Limits());
  std::vector<std::unique_ptr<Outcome>> outcomes;
  absl::Notification all_submitted;
  for (size_t i = 0; i < prompts.size(); ++i) {
    outcomes.push_back(std::make_unique<Outcome>());
    auto callbacks = outcomes.back()->Callbacks();
    // The first holds the loop until every request is queued.
    if (i == 0) callbacks.on_start = [&] { all_submitted.WaitForNotification(); };
    ASSERT_TRUE((*batcher)->Submit(Request(prompts[i], 12 + static_cast<int32_t>(i)), nullptr, std::move(callbacks)).ok());
  }
  all_submitted.Notify();
  for (size_t i = 0; i < prompts.size(); ++i) {
    ASSERT_TRUE(outcomes[i]->Wait());
    ASSERT_TRUE(outcomes[i]->result.ok()) << outcomes[i]->result.status();
    auto want = alone.Generate(Request(prompts[i], 12 + static_cast<int32_t>(i)));
    ASSERT_TRUE(want.ok());
    EXPECT_EQ(outcomes[i]->result->ids, want->ids) << prompts[i];
    EXPECT_EQ(outcomes[i]->result->text, want->text);
    EXPECT_EQ(outcomes[i]->streamed, want->text);
    EXPECT_EQ(outcomes[i]->result->finish, FinishReason::kLength);
  }
  const BatcherStats stats = (*batcher)->stats();
  EXPECT_EQ(stats.max_step_sequences, 4);
  EXPECT_LT(stats.steps, 12 + 13 + 14 + 15);  // fewer runs than sequences alone
  // The first alone (or with the others, had they all come before the loop
  // admitted it), the three that joined at one step (prompts of different
  // lengths) in one prefill run.
  EXPECT_LE(stats.prefill_steps, 2);
  EXPECT_EQ(stats.prefill_sequences, 4);
  EXPECT_EQ(stats.decode_steps + stats.prefill_steps, stats.steps);
  EXPECT_EQ(stats.decode_sequences + stats.prefill_sequences, stats.step_sequences);
  EXPECT_EQ(stats.tokens, 12 + 13 + 14 + 15);
  EXPECT_EQ(stats.finished_length, 4);
  EXPECT_EQ(stats.kv_blocks_used, 0);
}

// A pool with room for one sequence: the second waits, and is refused when
// no room comes within max_wait; a full waiting queue refuses at once.
TEST_F(BatcherTest, AFullPoolMakesRequestsWaitThenRefusesThem) {
  ContinuousBatcher::Options o = Options();
  o.kv_block_tokens = 16;
  o.kv_cache_bytes = 12 * 16 * (**model_).kv_bytes_per_token();  // 12 blocks: 192 tokens, one sequence of 180
  o.max_wait = absl::ZeroDuration();
  o.max_waiting = 1;
  auto metrics = observability::Metrics::Create({});
  ASSERT_TRUE(metrics.ok());
  o.metrics = (*metrics)->ForGeneration("m", "1");
  auto batcher = ContinuousBatcher::Create(o);
  ASSERT_TRUE(batcher.ok()) << batcher.status();
  Outcome a, b;
  absl::Notification started, queued;
  auto callbacks = a.Callbacks();
  callbacks.on_start = [&] {
    started.Notify();
    queued.WaitForNotification();  // the loop holds A until B and C were tried
  };
  ASSERT_TRUE((*batcher)->Submit(Request("I have been feeling", 180), nullptr, std::move(callbacks)).ok());
  started.WaitForNotification();  // A is running: the waiting queue is empty
  ASSERT_TRUE((*batcher)->Submit(Request("my mom", 180), nullptr, b.Callbacks()).ok());
  Outcome c;
  // The waiting queue (1) is full.
  EXPECT_EQ((*batcher)->Submit(Request("my mom", 4), nullptr, c.Callbacks()).code(),
            absl::StatusCode::kResourceExhausted);
  // A request that could never fit (13 blocks) is refused as invalid.
  auto never = (*batcher)->Submit(Request("my mom", 200), nullptr, c.Callbacks());
  EXPECT_EQ(never.code(), absl::StatusCode::kInvalidArgument) << never;
  EXPECT_NE(never.message().find("pool holds 192"), std::string_view::npos) << never;
  queued.Notify();
  ASSERT_TRUE(b.Wait());
  EXPECT_EQ(b.result.status().code(), absl::StatusCode::kResourceExhausted) << b.result.status();
  ASSERT_TRUE(a.Wait());
  ASSERT_TRUE(a.result.ok());
  EXPECT_EQ(a.result->completion_tokens, 180);
  const BatcherStats stats = (*batcher)->stats();
  EXPECT_EQ(stats.refused_timeout, 1);
  EXPECT_EQ(stats.refused_queue_full, 1);
  const std::string text = (*metrics)->Serialize();
  EXPECT_EQ(SeriesValue(text, R"(ortserve_generation_requests_refused_total{model="m",reason="timeout",version="1"})"), 1);
  EXPECT_EQ(SeriesValue(text, R"(ortserve_generation_requests_refused_total{model="m",reason="queue_full",version="1"})"),
            1);
  EXPECT_EQ(SeriesValue(text, R"(ortserve_generation_waiting_requests{model="m",version="1"})"), 0);
}

// A sequence whose client went away ends before the next step and its
// blocks go back: the request waiting behind it is admitted.
TEST_F(BatcherTest, ACancelledSequenceFreesItsBlocksForTheNextRequest) {
  ContinuousBatcher::Options o = Options();
  o.kv_cache_bytes = 12 * 16 * (**model_).kv_bytes_per_token();  // one sequence of 180 tokens
  o.max_wait = absl::Seconds(60);
  auto batcher = ContinuousBatcher::Create(o);
  ASSERT_TRUE(batcher.ok()) << batcher.status();
  auto cancel = std::make_shared<CancellationFlag>();
  Outcome a, b;
  int texts = 0;
  auto callbacks = a.Callbacks();
  callbacks.on_text = [&](std::string_view) {
    if (++texts == 3) cancel->Cancel();  // the client hangs up after three pieces
    return true;
  };
  absl::Notification queued;
  callbacks.on_start = [&] { queued.WaitForNotification(); };
  ASSERT_TRUE((*batcher)->Submit(Request("I have been feeling", 180), cancel, std::move(callbacks)).ok());
  ASSERT_TRUE((*batcher)->Submit(Request("my mom", 180), nullptr, b.Callbacks()).ok());  // waits for A's blocks
  queued.Notify();
  ASSERT_TRUE(a.Wait());
  ASSERT_TRUE(a.result.ok());
  EXPECT_EQ(a.result->finish, FinishReason::kCancelled);
  EXPECT_LE(a.result->completion_tokens, 4);
  ASSERT_TRUE(b.Wait());
  ASSERT_TRUE(b.result.ok()) << b.result.status();
  EXPECT_EQ(b.result->completion_tokens, 180);
  EXPECT_EQ((*batcher)->stats().finished_cancelled, 1);
  EXPECT_EQ((*batcher)->stats().kv_blocks_used, 0);
}

// The Prometheus series count what the batcher did, as its stats do, and
// the gauges go back to 0 when the sequences end and the pool is gone.
TEST_F(BatcherTest, PrometheusSeriesFollowTheBatcher) {
  auto metrics = observability::Metrics::Create({});
  ASSERT_TRUE(metrics.ok());
  ContinuousBatcher::Options o = Options();
  o.metrics = (*metrics)->ForGeneration("m", "1");
  o.max_batch_sequences = 1;  // one runs, the others wait
  auto batcher = ContinuousBatcher::Create(o);
  ASSERT_TRUE(batcher.ok()) << batcher.status();
  const std::string labels = R"({model="m",version="1"})";
  auto value = [&](const std::string& name, const std::string& series_labels) {
    return SeriesValue((*metrics)->Serialize(), name + series_labels);
  };
  const double pool_blocks = static_cast<double>((*batcher)->pool().total_blocks());
  EXPECT_EQ(value("ortserve_generation_kv_blocks_total", labels), pool_blocks);
  const std::vector<std::string> prompts = {"I have been feeling", "my mom", "The headache started"};
  std::vector<std::unique_ptr<Outcome>> outcomes;
  absl::Notification all_submitted, running;
  int64_t prompt_tokens = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    outcomes.push_back(std::make_unique<Outcome>());
    auto callbacks = outcomes.back()->Callbacks();
    if (i == 0) {
      callbacks.on_start = [&] {
        running.Notify();
        all_submitted.WaitForNotification();
      };
    }
    GenerationRequest r = Request(prompts[i], 10 + static_cast<int32_t>(i));
    prompt_tokens += static_cast<int64_t>(r.prompt_ids.size());
    ASSERT_TRUE((*batcher)->Submit(std::move(r), nullptr, std::move(callbacks)).ok());
  }
  running.WaitForNotification();  // the first joined the batch, the others wait
  EXPECT_EQ(value("ortserve_generation_running_sequences", labels), 1);
  EXPECT_EQ(value("ortserve_generation_waiting_requests", labels), 2);
  EXPECT_GT(value("ortserve_generation_kv_blocks_used", labels), 0);
  all_submitted.Notify();
  int64_t completion_tokens = 0;
  for (auto& outcome : outcomes) {
    ASSERT_TRUE(outcome->Wait());
    ASSERT_TRUE(outcome->result.ok()) << outcome->result.status();
    completion_tokens += outcome->result->completion_tokens;
  }
  EXPECT_EQ(completion_tokens, 10 + 11 + 12);
  // A sequence leaves the gauges before its on_done is called.
  EXPECT_EQ(value("ortserve_generation_tokens_generated_total", labels), completion_tokens);
  EXPECT_EQ(value("ortserve_generation_prompt_tokens_total", labels), prompt_tokens);
  EXPECT_EQ(value("ortserve_generation_time_to_first_token_seconds_count", labels), 3);
  EXPECT_EQ(value("ortserve_generation_inter_token_latency_seconds_count", labels), completion_tokens - 3);
  EXPECT_EQ(value("ortserve_generation_sequences_finished_total", R"({model="m",reason="length",version="1"})"), 3);
  EXPECT_EQ(value("ortserve_generation_steps_total", labels), (*batcher)->stats().steps);
  EXPECT_EQ(value("ortserve_generation_step_sequences_total", labels), (*batcher)->stats().step_sequences);
  EXPECT_EQ(value("ortserve_generation_decode_past_tokens_total", labels), (*batcher)->stats().decode_past_tokens);
  EXPECT_EQ(value("ortserve_generation_decode_padded_tokens_total", labels),
            (*batcher)->stats().decode_padded_tokens);
  EXPECT_GT(value("ortserve_generation_decode_past_tokens_total", labels), 0);
  EXPECT_EQ(value("ortserve_generation_running_sequences", labels), 0);
  EXPECT_EQ(value("ortserve_generation_waiting_requests", labels), 0);
  EXPECT_EQ(value("ortserve_generation_kv_blocks_used", labels), 0);
  // The pool leaves with the batcher.
  batcher->reset();
  EXPECT_EQ(value("ortserve_generation_kv_blocks_total", labels), 0);
}

// A StepOutput shared by several sequences (an event loop's streams) is
// flushed once per step, after every callback of that step: each step's
// texts reach it in one flush, each sequence's in order, the starts with the
// first token and the ends with the last; a sequence without an output is
// never flushed for.
TEST_F(BatcherTest, AStepOutputIsFlushedOncePerStepAfterTheStepsCallbacks) {
  struct Log : StepOutput {
    void Flush() override {
      absl::MutexLock lock(&mu);
      events.push_back("flush");
    }
    void Add(std::string event) {
      absl::MutexLock lock(&mu);
      events.push_back(std::move(event));
    }
    absl::Mutex mu;
    std::vector<std::string> events;
  };
  auto log = std::make_shared<Log>();
  auto batcher = ContinuousBatcher::Create(Options());
  ASSERT_TRUE(batcher.ok()) << batcher.status();
  const std::vector<std::string> prompts = {"I have been feeling", "my mom", "The headache started"};
  const std::vector<int32_t> lengths = {5, 9, 7};
  std::vector<std::unique_ptr<Outcome>> outcomes;
  absl::Notification all_submitted;
  for (size_t i = 0; i < prompts.size(); ++i) {
    outcomes.push_back(std::make_unique<Outcome>());
    auto callbacks = outcomes.back()->Callbacks();
    const std::string name(1, static_cast<char>('a' + i));
    callbacks.on_start = [&, name, i] {
      log->Add(name + " start");
      if (i == 0) all_submitted.WaitForNotification();  // the others join at this step or the next
    };
    callbacks.on_text = [&, name, i](std::string_view d) {
      outcomes[i]->streamed += d;
      log->Add(name + " text");
      return true;
    };
    auto on_done = std::move(callbacks.on_done);
    callbacks.on_done = [&, name, on_done](absl::StatusOr<GenerationResult> r) {
      log->Add(name + " done");
      on_done(std::move(r));
    };
    callbacks.output = log;
    ASSERT_TRUE((*batcher)->Submit(Request(prompts[i], lengths[i]), nullptr, std::move(callbacks)).ok());
  }
  all_submitted.Notify();
  // Without an output: its callbacks run, nothing is flushed for it.
  Outcome alone;
  ASSERT_TRUE((*batcher)->Submit(Request("my mom", 3), nullptr, alone.Callbacks()).ok());
  for (auto& o : outcomes) ASSERT_TRUE(o->Wait());
  ASSERT_TRUE(alone.Wait());
  const BatcherStats stats = (*batcher)->stats();
  batcher->reset();  // joins the loop: every flush has happened
  Generator single(**model_, **tokenizer_, Limits());
  for (size_t i = 0; i < prompts.size(); ++i) {
    ASSERT_TRUE(outcomes[i]->result.ok()) << outcomes[i]->result.status();
    auto want = single.Generate(Request(prompts[i], lengths[i]));
    ASSERT_TRUE(want.ok());
    EXPECT_EQ(outcomes[i]->streamed, want->text) << prompts[i];
  }
  absl::MutexLock lock(&log->mu);
  const std::vector<std::string>& events = log->events;
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back(), "flush");
  // Between two flushes (one step): at most one text per sequence.
  int flushes = 0, texts = 0, starts = 0, dones = 0;
  std::vector<std::string> step;
  for (const std::string& e : events) {
    if (e == "flush") {
      ++flushes;
      step.clear();
      continue;
    }
    if (e.ends_with("text")) {
      EXPECT_EQ(std::count(step.begin(), step.end(), e), 0) << "two texts of one sequence in one step";
      ++texts;
    }
    starts += e.ends_with("start");
    dones += e.ends_with("done");
    step.push_back(e);
  }
  EXPECT_EQ(starts, 3);
  EXPECT_EQ(dones, 3);
  EXPECT_GT(texts, 9);  // a token whose bytes end mid-character gives no text
  EXPECT_LE(texts, 5 + 9 + 7);
  // One flush per step of these sequences: at least one per token of the
  // longest (9), at most one per run of the batcher (whose runs include
  // the sequence without an output).
  EXPECT_GE(flushes, 9);
  EXPECT_LE(flushes, stats.steps);
}

// Destroying the batcher ends every sequence with Unavailable, once each.
TEST_F(BatcherTest, ShutdownEndsEverySequence) {
  auto batcher = ContinuousBatcher::Create(Options());
  ASSERT_TRUE(batcher.ok());
  std::vector<std::unique_ptr<Outcome>> outcomes;
  absl::Notification hold;
  for (int i = 0; i < 3; ++i) {
    outcomes.push_back(std::make_unique<Outcome>());
    auto callbacks = outcomes.back()->Callbacks();
    if (i == 0) callbacks.on_start = [&] { hold.WaitForNotification(); };
    ASSERT_TRUE((*batcher)->Submit(Request("my mom", 200), nullptr, std::move(callbacks)).ok());
  }
  std::thread release([&] { hold.Notify(); });
  batcher->reset();
  release.join();
  for (auto& o : outcomes) {
    ASSERT_TRUE(o->Wait());
    if (!o->result.ok()) EXPECT_EQ(o->result.status().code(), absl::StatusCode::kUnavailable);
  }
}

}  // namespace
}  // namespace ortserve::generation

namespace ortserve::generation {
namespace {

// Newcomers that join at one step while another sequence decodes are
// prefilled in one model run (padded to the longest of their prompts, all
// of different lengths), and each gets exactly the greedy tokens it gets alone.
TEST_F(BatcherTest, NewcomersJoiningAtOneStepShareOnePrefillRunAndMatchGeneratingAlone) {
  auto batcher = ContinuousBatcher::Create(Options());
  ASSERT_TRUE(batcher.ok()) << batcher.status();
  const std::vector<std::string> prompts = {"I have been feeling", "rash", "my mom",
                                            "After the second dose I had a fever"};
  const std::vector<int32_t> max_tokens = {30, 10, 7, 12};
  // The three join from A's third piece of text.
  JoinAfterAndMatchGeneratingAlone(batcher->get(), prompts, max_tokens, 3);
  const BatcherStats stats = (*batcher)->stats();
  EXPECT_EQ(stats.prefill_steps, 2);  // A alone, then the three together
  EXPECT_EQ(stats.prefill_sequences, 4);
  EXPECT_EQ(stats.max_step_sequences, 4);
  EXPECT_EQ(stats.decode_steps, 30 - 1);  // A's; the others decode in the same runs
  EXPECT_EQ(stats.tokens, 30 + 10 + 7 + 12);
  EXPECT_EQ(stats.kv_blocks_used, 0);
}

// Sequences of very different lengths decode in separate runs, each padded
// only to its own longest (DecodePlanOptions), and each still gets exactly
// the tokens it gets alone; with one run allowed, every step is one run.
TEST_F(BatcherTest, SequencesOfDifferentLengthsDecodeInSeparateRunsAndMatchGeneratingAlone) {
  const std::vector<std::string> prompts = {"After the second dose I had a fever", "rash", "my mom",
                                            "I have been feeling"};
  const std::vector<int32_t> max_tokens = {60, 12, 14, 10};
  std::map<int32_t, double> padding;  // padded row-tokens per token of past, by max_runs
  for (int32_t max_runs : {4, 1}) {
    SCOPED_TRACE(max_runs);
    ContinuousBatcher::Options o = Options();
    o.decode_plan = DecodePlanOptions{.max_runs = max_runs, .run_cost_tokens = 0};
    auto batcher = ContinuousBatcher::Create(o);
    ASSERT_TRUE(batcher.ok()) << batcher.status();
    // The short ones join once the first is 40 tokens on.
    JoinAfterAndMatchGeneratingAlone(batcher->get(), prompts, max_tokens, 40);
    const BatcherStats stats = (*batcher)->stats();
    EXPECT_EQ(stats.tokens, 60 + 12 + 14 + 10);
    EXPECT_EQ(stats.decode_rounds, 60 - 1);  // the first's steps; the others decode beside it
    EXPECT_GT(stats.decode_past_tokens, 0);
    EXPECT_GE(stats.decode_padded_tokens, stats.decode_past_tokens);
    padding[max_runs] = static_cast<double>(stats.decode_padded_tokens) / static_cast<double>(stats.decode_past_tokens);
    if (max_runs == 1) {
      EXPECT_EQ(stats.decode_steps, stats.decode_rounds);
    } else {
      // Prompts of 1 to 9 tokens: while they run, the first (50 and more)
      // and they take runs of their own.
      EXPECT_GT(stats.decode_steps, stats.decode_rounds);
      EXPECT_LE(stats.decode_steps, stats.decode_rounds + 3 * 13);
    }
    EXPECT_EQ(stats.kv_blocks_used, 0);
  }
  EXPECT_LT(padding[4], padding[1]);
}

}  // namespace
}  // namespace ortserve::generation
