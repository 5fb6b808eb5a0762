// SPDX-License-Identifier: Apache-2.0
// Continuous (iteration-level) batching for one generative model: one decode
// loop thread steps every running sequence together; sequences join the
// running batch at the next step once the key/value pool has room for them
// and leave it the step they finish or their client goes away.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/clock.h"
#include "core/infer_request.h"
#include "generation/decode_plan.h"
#include "generation/decoder_model.h"
#include "generation/generator.h"
#include "generation/kv_block_pool.h"
#include "generation/resident_batch.h"
#include "observability/generation_metrics.h"
#include "pipeline/bpe_tokenizer.h"

namespace ortserve::generation {

// What the decode loop has done, for the metrics (monotonic counters and
// gauges). Read from any thread.
struct BatcherStats {
  int64_t steps = 0;              // model runs (prefill and decode steps)
  int64_t step_sequences = 0;     // sum over runs of the sequences in each
  int64_t max_step_sequences = 0; // the largest batch one run has held
  // The same split by kind: prefill runs (newcomers' prompts, all the
  // newcomers of one loop iteration in one run) and decode runs (one token
  // for every running sequence), so that the mean decode batch is
  // decode_sequences / decode_steps and prefill runs per decode step
  // prefill_steps / decode_steps.
  int64_t prefill_steps = 0, prefill_sequences = 0;
  int64_t decode_steps = 0, decode_sequences = 0;
  // Loop iterations that decoded (each makes one decode run per group of
  // sequences of similar length, DecodePlanOptions), and over the decode
  // runs the tokens of past the rows held and the row-tokens the runs
  // padded them to: 1 - decode_past_tokens / decode_padded_tokens is the
  // share of the decode runs' past that was padding.
  int64_t decode_rounds = 0, decode_past_tokens = 0, decode_padded_tokens = 0;
  // Microseconds (from the batcher's clock) summed over the admitted
  // requests, from Submit to joining the batch (their prefill is next), and
  // over the model runs of each kind.
  int64_t admit_wait_us = 0, prefill_run_us = 0, decode_run_us = 0;
  int64_t tokens = 0;             // tokens generated
  int64_t finished_length = 0, finished_stop = 0, finished_cancelled = 0, failed = 0;
  int64_t refused_queue_full = 0, refused_timeout = 0;
  int64_t running = 0, waiting = 0;
  int64_t kv_blocks_used = 0, kv_blocks_total = 0, kv_block_bytes = 0;
};

// Where the callbacks of many sequences deliver their output to another
// thread (an HTTP event loop): the callbacks only queue what they produce,
// and the decode loop calls Flush() once after each step in which a sequence
// using it had a callback run (and once after the callbacks of admissions,
// refusals and cancellations), so a step costs one hand-off per output, not
// one per token. Flush() runs on the decode loop and must not block.
class StepOutput {
 public:
  virtual ~StepOutput() = default;
  virtual void Flush() = 0;
};

// Thread-safe. The destructor stops intake, fails every waiting and running
// sequence with Unavailable (each gets its done callback), and joins the
// loop (detaches it when destroyed from one of its own callbacks; the loop
// then touches nothing it does not own).
class ContinuousBatcher {
 public:
  struct Options {
    std::shared_ptr<const DecoderModel> model;
    std::shared_ptr<const pipeline::BpeTokenizer> tokenizer;
    GenerationLimits limits;
    int64_t kv_cache_bytes = int64_t{256} << 20;  // the pool's budget
    int64_t kv_block_tokens = 16;
    int32_t max_batch_sequences = 32;  // sequences one step runs, at most
    // How a decode step splits the running sequences into runs by length.
    DecodePlanOptions decode_plan;
    int32_t max_waiting = 64;          // requests waiting for room, at most (more: refused at once)
    // For benchmarks only (static batching as the baseline of continuous
    // batching): requests join only an empty batch, so a batch runs until
    // its last sequence ends before any waiting request starts.
    bool static_batching = false;
    absl::Duration max_wait = absl::Seconds(2);  // a waiting request is refused after this
    // Where waiting deadlines are read (checked at every step, and when a
    // request arrives; nothing waits on a deadline while no sequence runs,
    // since an empty pool admits any request).
    Clock* clock = Clock::Real();
    // The version's Prometheus series (Metrics::ForGeneration); not owned,
    // outlives the batcher; null: none.
    observability::GenerationMetrics* metrics = nullptr;
  };
  // InvalidArgument for a bound out of range or a pool that holds no block.
  static absl::StatusOr<std::unique_ptr<ContinuousBatcher>> Create(Options options);
  ~ContinuousBatcher();

  // Called on the loop thread: once when the sequence joins the batch
  // (its first step is next), then with each piece of text (false ends it
  // as kCancelled), then exactly once with its end. `output` (optional) is
  // flushed after the step in which any of them ran (StepOutput); the loop
  // holds it until that flush, so it may be released in on_done.
  struct Callbacks {
    std::function<void()> on_start;
    TextCallback on_text;
    std::function<void(absl::StatusOr<GenerationResult>)> on_done;
    std::shared_ptr<StepOutput> output;
  };

  // Queues a request. Errors (no callback is then called): InvalidArgument
  // from ValidateRequest, or when the request could never fit the pool;
  // ResourceExhausted when max_waiting requests already wait. Otherwise
  // on_done comes exactly once: the result, ResourceExhausted when no room
  // came within max_wait, Cancelled when `cancel` was raised while waiting,
  // Unavailable at shutdown, or the engine's error. A raised `cancel` ends a
  // running sequence (kCancelled) and frees its blocks before the next step.
  absl::Status Submit(GenerationRequest request, std::shared_ptr<const CancellationFlag> cancel,
                      Callbacks callbacks);

  BatcherStats stats() const;
  const KvBlockPool& pool() const;

 private:
  struct Core;
  explicit ContinuousBatcher(std::shared_ptr<Core> core);
  std::shared_ptr<Core> core_;
  std::thread thread_;
};

}  // namespace ortserve::generation
