// SPDX-License-Identifier: Apache-2.0
#include "generation/continuous_batcher.h"

#include <algorithm>
#include <deque>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "core/status.h"
#include "core/strings.h"

namespace ortserve::generation {

namespace {

// A request from Submit to its end.
struct Sequence {
  std::unique_ptr<SequenceRun> run;
  std::shared_ptr<const CancellationFlag> cancel;
  ContinuousBatcher::Callbacks callbacks;
  absl::Time deadline;  // while waiting
  int64_t blocks_needed = 0;
  absl::Time queued;                             // Submit: time to first token starts
  absl::Time last_token = absl::InfinitePast();  // its previous token's step
};

using observability::GenerationEnd;
using observability::GenerationRefusal;

}  // namespace

struct ContinuousBatcher::Core {
  explicit Core(Options o) : options(std::move(o)) {}
  // The pool's blocks leave the version's gauge with the pool.
  ~Core() {
    if (options.metrics != nullptr && pool != nullptr) options.metrics->AddKvBlocksTotal(-pool->total_blocks());
  }

  void Loop();
  // Sweeps the waiting queue (cancelled, expired), then admits from its
  // front while the pool and the batch have room. The refused go to *ended.
  void Admit(std::vector<Sequence>* fresh, std::vector<std::pair<Sequence, absl::Status>>* ended);
  // Runs one step over `group` (indices into running_) and advances each:
  // a prefill step through the paged step (`resident` null), a decode step
  // through `resident`.
  void StepGroup(const std::vector<size_t>& group, ResidentBatch* resident);
  // One decode step of `decode` (indices into running_): split by length
  // into runs (PlanDecodeRuns), each run on the resident batch that already
  // holds most of its sequences; the batches no run uses are cleared.
  void Decode(const std::vector<size_t>& decode);
  // Ends running_[i] (its blocks back to the pool); leaves a hole (run null)
  // that Compact removes.
  void End(Sequence& s, absl::StatusOr<GenerationResult> result);
  void Compact();
  // Fails everything (shutdown).
  void FailAll();
  // The Prometheus side of a sampled token (metrics set).
  void CountToken(Sequence& s, absl::Time now);
  // Notes that `s`'s callbacks are about to run: its output is flushed at
  // the next FlushOutputs.
  void Touch(const Sequence& s) {
    const std::shared_ptr<StepOutput>& out = s.callbacks.output;
    if (out == nullptr) return;
    // A handful of outputs (one per event loop): a linear search is cheapest.
    for (const auto& t : touched_) {
      if (t == out) return;
    }
    touched_.push_back(out);
  }
  void FlushOutputs() {
    for (const auto& out : touched_) out->Flush();
    touched_.clear();
  }
  bool HasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return stop || !waiting.empty(); }
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }

  const Options options;
  std::unique_ptr<KvBlockPool> pool;

  absl::Mutex mu;
  std::deque<Sequence> waiting ABSL_GUARDED_BY(mu);
  bool stop ABSL_GUARDED_BY(mu) = false;
  std::atomic<bool> stopping_{false};

  // The loop thread's own.
  std::vector<Sequence> running_;
  DecoderModel::Scratch scratch_;  // prefill steps
  // Decode steps: the running sequences' past kept between steps, one batch
  // per run a step may make (decode_plan.max_runs), sharing their rebuild
  // buffers. Each is stepped or cleared at every decode step, so a row
  // never outlives the sequence it holds by more than a step.
  std::vector<std::vector<float>> rebuild_buffers_;
  std::vector<ResidentBatch> residents_;
  DecodePlanScratch plan_scratch_;
  std::vector<size_t> order_, group_;
  std::vector<int64_t> lengths_;
  std::vector<int32_t> runs_, run_batch_, holds_;
  std::vector<char> batch_used_;
  std::vector<float> logits_;
  std::vector<SequenceState*> batch_;
  std::vector<std::shared_ptr<StepOutput>> touched_;  // outputs to flush after this step

  std::atomic<int64_t> steps{0}, step_sequences{0}, max_step_sequences{0}, tokens{0};
  std::atomic<int64_t> prefill_steps{0}, prefill_sequences{0}, decode_steps{0}, decode_sequences{0};
  std::atomic<int64_t> decode_rounds{0}, decode_past_tokens{0}, decode_padded_tokens{0};
  std::atomic<int64_t> admit_wait_us{0}, prefill_run_us{0}, decode_run_us{0};
  std::atomic<int64_t> finished_length{0}, finished_stop{0}, finished_cancelled{0}, failed{0};
  std::atomic<int64_t> refused_queue_full{0}, refused_timeout{0}, running{0}, waiting_count{0};
};

absl::StatusOr<std::unique_ptr<ContinuousBatcher>> ContinuousBatcher::Create(Options options) {
  if (options.model == nullptr || options.tokenizer == nullptr || options.clock == nullptr) {
    return absl::InvalidArgumentError("continuous batcher: a model, a tokenizer and a clock are required");
  }
  if (options.max_batch_sequences < 1 || options.max_batch_sequences > 4096) {
    return absl::InvalidArgumentError("generation.max_batch_sequences must be in [1, 4096]");
  }
  if (options.max_waiting < 0 || options.max_waiting > 1 << 20) {
    return absl::InvalidArgumentError("generation.max_waiting_requests must be in [0, 1048576]");
  }
  if (options.decode_plan.max_runs < 1 || options.decode_plan.max_runs > 16) {
    return absl::InvalidArgumentError("generation.max_decode_runs must be in [1, 16]");
  }
  if (options.decode_plan.run_cost_tokens < 0 || options.decode_plan.run_cost_tokens > int64_t{1} << 30) {
    return absl::InvalidArgumentError("generation.decode_run_cost_tokens must be in [0, 2^30]");
  }
  if (options.max_wait < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("generation.max_queue_wait_ms must not be negative");
  }
  KvBlockPool::Options pool_options;
  pool_options.num_layers = options.model->num_layers();
  pool_options.num_heads = options.model->num_heads();
  pool_options.head_dim = options.model->head_dim();
  pool_options.block_tokens = options.kv_block_tokens;
  pool_options.budget_bytes = options.kv_cache_bytes;
  auto core = std::make_shared<Core>(std::move(options));
  ASSIGN_OR_RETURN(core->pool, KvBlockPool::Create(pool_options));
  if (core->options.metrics != nullptr) core->options.metrics->AddKvBlocksTotal(core->pool->total_blocks());
  core->running_.reserve(static_cast<size_t>(core->options.max_batch_sequences));
  core->residents_.reserve(static_cast<size_t>(core->options.decode_plan.max_runs));
  for (int32_t b = 0; b < core->options.decode_plan.max_runs; ++b) {
    core->residents_.emplace_back(ResidentBatch::Options{.rebuild_buffers = &core->rebuild_buffers_});
  }
  return std::unique_ptr<ContinuousBatcher>(new ContinuousBatcher(std::move(core)));
}

ContinuousBatcher::ContinuousBatcher(std::shared_ptr<Core> core) : core_(std::move(core)) {
  // The thread holds the core: it outlives this object when detached.
  thread_ = std::thread([core = core_] { core->Loop(); });
}

ContinuousBatcher::~ContinuousBatcher() {
  {
    absl::MutexLock lock(&core_->mu);
    core_->stop = true;
  }
  core_->stopping_.store(true, std::memory_order_release);
  if (thread_.get_id() == std::this_thread::get_id()) {
    thread_.detach();  // destroyed from a callback: the loop ends after it returns
  } else {
    thread_.join();
  }
}

absl::Status ContinuousBatcher::Submit(GenerationRequest request, std::shared_ptr<const CancellationFlag> cancel,
                                       Callbacks callbacks) {
  Core& c = *core_;
  const int64_t vocab = c.options.model->vocab_size() > 0 ? c.options.model->vocab_size()
                                                          : c.options.tokenizer->vocab_size();
  RETURN_IF_ERROR(ValidateRequest(request, c.options.limits, vocab));
  Sequence s;
  s.run = std::make_unique<SequenceRun>(std::move(request), c.options.limits, *c.options.tokenizer);
  s.blocks_needed = c.pool->BlocksFor(s.run->max_total_tokens());
  if (s.blocks_needed > c.pool->total_blocks()) {
    return absl::InvalidArgumentError(StrCat("the prompt and max_tokens need ", s.run->max_total_tokens(),
                                             " tokens of key/value cache; this model's pool holds ",
                                             c.pool->total_blocks() * c.pool->block_tokens()));
  }
  s.cancel = std::move(cancel);
  s.callbacks = std::move(callbacks);
  s.queued = c.options.clock->Now();
  s.deadline = s.queued + c.options.max_wait;
  absl::MutexLock lock(&c.mu);
  if (c.stop) return absl::UnavailableError("the model is being unloaded");
  if (static_cast<int64_t>(c.waiting.size()) >= c.options.max_waiting) {
    c.refused_queue_full.fetch_add(1, std::memory_order_relaxed);
    if (c.options.metrics != nullptr) c.options.metrics->RecordRefusal(GenerationRefusal::kQueueFull);
    return absl::ResourceExhaustedError(
        StrCat("too many generation requests are waiting for room in the key/value cache (", c.waiting.size(),
               "); retry later"));
  }
  c.waiting.push_back(std::move(s));
  if (c.options.metrics != nullptr) c.options.metrics->AddWaiting(1);
  c.waiting_count.store(static_cast<int64_t>(c.waiting.size()), std::memory_order_relaxed);
  return absl::OkStatus();
}

void ContinuousBatcher::Core::Admit(std::vector<Sequence>* fresh,
                                    std::vector<std::pair<Sequence, absl::Status>>* ended) {
  absl::MutexLock lock(&mu);
  // With nothing running, wait for a request (or the stop).
  if (running_.empty()) {
    mu.Await(absl::Condition(this, &Core::HasWork));
  }
  if (stop) return;
  observability::GenerationMetrics* const m = options.metrics;
  // Clients gone first, so that they hold no one back.
  for (auto it = waiting.begin(); it != waiting.end();) {
    if (it->cancel != nullptr && it->cancel->cancelled()) {
      ended->emplace_back(std::move(*it), absl::CancelledError("the client went away while waiting"));
      it = waiting.erase(it);
      if (m != nullptr) m->AddWaiting(-1);
    } else {
      ++it;
    }
  }
  // First come, first served: a request that does not fit blocks those behind it.
  // Static batching (benchmarks only) admits only into an empty batch.
  const bool closed = options.static_batching && !running_.empty();
  const absl::Time now = options.clock->Now();
  while (!closed && !waiting.empty() &&
         static_cast<int64_t>(running_.size() + fresh->size()) < options.max_batch_sequences &&
         pool->Allocate(waiting.front().blocks_needed, &waiting.front().run->state().blocks)) {
    admit_wait_us.fetch_add(absl::ToInt64Microseconds(now - waiting.front().queued), std::memory_order_relaxed);
    fresh->push_back(std::move(waiting.front()));
    waiting.pop_front();
    if (m != nullptr) {
      const Sequence& s = fresh->back();
      m->AddWaiting(-1);
      m->AddRunning(1);
      m->AddKvBlocksUsed(static_cast<int64_t>(s.run->state().blocks.size()));
      m->RecordAdmitted(static_cast<int64_t>(s.run->request().prompt_ids.size()));
    }
  }
  // Whoever still waits past its deadline is refused.
  for (auto it = waiting.begin(); it != waiting.end();) {
    if (now >= it->deadline) {
      refused_timeout.fetch_add(1, std::memory_order_relaxed);
      if (m != nullptr) {
        m->AddWaiting(-1);
        m->RecordRefusal(GenerationRefusal::kTimeout);
      }
      ended->emplace_back(std::move(*it), absl::ResourceExhaustedError(StrCat(
          "the key/value cache is full: no room within ", absl::FormatDuration(options.max_wait), "; retry later")));
      it = waiting.erase(it);
    } else {
      ++it;
    }
  }
  waiting_count.store(static_cast<int64_t>(waiting.size()), std::memory_order_relaxed);
}

void ContinuousBatcher::Core::Loop() {
  std::vector<Sequence> fresh;
  std::vector<std::pair<Sequence, absl::Status>> ended;
  std::vector<size_t> prefill, decode;
  while (!stopping()) {
    fresh.clear();
    ended.clear();
    Admit(&fresh, &ended);
    for (auto& [s, status] : ended) {
      Touch(s);
      s.callbacks.on_done(std::move(status));
      if (stopping()) break;
    }
    ended.clear();
    if (stopping()) break;
    for (Sequence& s : fresh) {
      Touch(s);
      if (s.callbacks.on_start) s.callbacks.on_start();
      running_.push_back(std::move(s));
    }
    fresh.clear();
    if (stopping()) break;
    // A client gone frees its blocks now, before the step.
    for (Sequence& s : running_) {
      if (s.run != nullptr && s.cancel != nullptr && s.cancel->cancelled()) {
        s.run->Cancel();
        End(s, std::move(s.run->result()));
        if (stopping()) break;
      }
    }
    Compact();
    // Prompts (prefill) and single tokens (decode) run as separate steps, so
    // that a long prompt does not pad every decoding sequence to its length.
    prefill.clear();
    decode.clear();
    for (size_t i = 0; i < running_.size(); ++i) (running_[i].run->state().cached == 0 ? prefill : decode).push_back(i);
    // Every newcomer of this iteration in one prefill run (padded to the
    // longest prompt). The output of admissions, cancellations and each step
    // goes to its connections once the step is done (a newcomer's first
    // token does not wait for the decode step).
    if (!prefill.empty()) StepGroup(prefill, /*resident=*/nullptr);
    FlushOutputs();
    if (!stopping() && !decode.empty()) Decode(decode);
    FlushOutputs();
    if (decode.empty()) {  // nothing decodes: the resident past goes
      for (ResidentBatch& r : residents_) r.Clear();
    }
    Compact();
    running.store(static_cast<int64_t>(running_.size()), std::memory_order_relaxed);
  }
  FlushOutputs();
  FailAll();
}

void ContinuousBatcher::Core::Decode(const std::vector<size_t>& decode) {
  decode_rounds.fetch_add(1, std::memory_order_relaxed);
  auto past = [&](size_t i) { return running_[i].run->state().cached; };
  order_.assign(decode.begin(), decode.end());
  // Longest first, ties in batch order (std::sort: stable_sort may allocate each step).
  std::sort(order_.begin(), order_.end(),
            [&](size_t a, size_t b) { return past(a) != past(b) ? past(a) > past(b) : a < b; });
  lengths_.clear();
  for (size_t i : order_) lengths_.push_back(past(i));
  PlanDecodeRuns(lengths_, options.decode_plan, &plan_scratch_, &runs_);
  // holds_[g * batches + b]: the sequences of run g that batch b holds.
  const size_t batches = residents_.size(), n_runs = runs_.size();
  holds_.assign(n_runs * batches, 0);
  for (size_t g = 0, at = 0; g < n_runs; at += static_cast<size_t>(runs_[g]), ++g) {
    for (size_t k = at; k < at + static_cast<size_t>(runs_[g]); ++k) {
      const SequenceState& st = running_[order_[k]].run->state();
      for (size_t b = 0; b < batches; ++b) {
        if (residents_[b].Holds(st)) {
          ++holds_[g * batches + b];
          break;
        }
      }
    }
  }
  // Greedily, the run and batch that share the most sequences first; a run
  // sharing none takes any batch left.
  run_batch_.assign(n_runs, -1);
  batch_used_.assign(batches, 0);
  for (size_t assigned = 0; assigned < n_runs; ++assigned) {
    int32_t best = -1;
    size_t best_g = 0, best_b = 0;
    for (size_t g = 0; g < n_runs; ++g) {
      if (run_batch_[g] >= 0) continue;
      for (size_t b = 0; b < batches; ++b) {
        if (!batch_used_[b] && holds_[g * batches + b] > best) {
          best = holds_[g * batches + b];
          best_g = g;
          best_b = b;
        }
      }
    }
    run_batch_[best_g] = static_cast<int32_t>(best_b);
    batch_used_[best_b] = 1;
  }
  for (size_t b = 0; b < batches; ++b) {
    if (!batch_used_[b]) residents_[b].Clear();
  }
  for (size_t g = 0, at = 0; g < n_runs && !stopping(); at += static_cast<size_t>(runs_[g]), ++g) {
    group_.assign(order_.begin() + static_cast<ptrdiff_t>(at), order_.begin() + static_cast<ptrdiff_t>(at + runs_[g]));
    StepGroup(group_, &residents_[static_cast<size_t>(run_batch_[g])]);
  }
}

void ContinuousBatcher::Core::StepGroup(const std::vector<size_t>& group, ResidentBatch* resident) {
  const bool decode = resident != nullptr;
  batch_.clear();
  int64_t past_tokens = 0;
  for (size_t i : group) {
    batch_.push_back(&running_[i].run->state());
    past_tokens += batch_.back()->cached;
  }
  const int64_t n = static_cast<int64_t>(group.size());
  steps.fetch_add(1, std::memory_order_relaxed);
  step_sequences.fetch_add(n, std::memory_order_relaxed);
  if (n > max_step_sequences.load(std::memory_order_relaxed)) max_step_sequences.store(n, std::memory_order_relaxed);
  (decode ? decode_steps : prefill_steps).fetch_add(1, std::memory_order_relaxed);
  (decode ? decode_sequences : prefill_sequences).fetch_add(n, std::memory_order_relaxed);
  if (options.metrics != nullptr) options.metrics->RecordStep(n);
  const absl::Time started = options.clock->Now();
  absl::Status status = decode ? resident->Step(*options.model, batch_, *pool, &logits_)
                               : options.model->StepPaged(batch_, *pool, &scratch_, &logits_);
  const absl::Time stepped = options.clock->Now();
  (decode ? decode_run_us : prefill_run_us)
      .fetch_add(absl::ToInt64Microseconds(stepped - started), std::memory_order_relaxed);
  if (decode && status.ok()) {  // the width grew by the step's column
    const int64_t padded = resident->rows() * (resident->width() - 1);
    decode_past_tokens.fetch_add(past_tokens, std::memory_order_relaxed);
    decode_padded_tokens.fetch_add(padded, std::memory_order_relaxed);
    if (options.metrics != nullptr) options.metrics->RecordDecodePadding(past_tokens, padded);
  }
  if (!status.ok()) {
    for (size_t i : group) End(running_[i], status);  // End touches each
    return;
  }
  const size_t vocab = logits_.size() / group.size();
  for (size_t k = 0; k < group.size(); ++k) {
    Sequence& s = running_[group[k]];
    if (stopping()) return;  // a callback destroyed the batcher
    Touch(s);
    tokens.fetch_add(1, std::memory_order_relaxed);
    if (options.metrics != nullptr) CountToken(s, stepped);
    auto done = s.run->Advance(std::span<float>(logits_.data() + k * vocab, vocab), s.callbacks.on_text);
    if (!done.ok()) {
      End(s, done.status());
    } else if (*done) {
      End(s, std::move(s.run->result()));
    }
  }
}

void ContinuousBatcher::Core::CountToken(Sequence& s, absl::Time now) {
  const bool first = s.last_token == absl::InfinitePast();
  options.metrics->RecordToken(first, now - (first ? s.queued : s.last_token));
  s.last_token = now;
}

void ContinuousBatcher::Core::End(Sequence& s, absl::StatusOr<GenerationResult> result) {
  GenerationEnd end = GenerationEnd::kFailed;
  if (!result.ok()) {
    failed.fetch_add(1, std::memory_order_relaxed);
  } else {
    switch (result->finish) {
      case FinishReason::kLength: finished_length.fetch_add(1, std::memory_order_relaxed); end = GenerationEnd::kLength; break;
      case FinishReason::kStop: finished_stop.fetch_add(1, std::memory_order_relaxed); end = GenerationEnd::kStop; break;
      case FinishReason::kCancelled: finished_cancelled.fetch_add(1, std::memory_order_relaxed); end = GenerationEnd::kCancelled; break;
    }
  }
  if (options.metrics != nullptr) {
    options.metrics->AddRunning(-1);
    options.metrics->AddKvBlocksUsed(-static_cast<int64_t>(s.run->state().blocks.size()));
    options.metrics->RecordEnd(end);
  }
  pool->Free(&s.run->state().blocks);
  Touch(s);
  auto on_done = std::move(s.callbacks.on_done);
  s.run.reset();
  s.callbacks = {};
  s.cancel.reset();
  on_done(std::move(result));
}

void ContinuousBatcher::Core::Compact() {
  std::erase_if(running_, [](const Sequence& s) { return s.run == nullptr; });
}

void ContinuousBatcher::Core::FailAll() {
  std::deque<Sequence> left;
  {
    absl::MutexLock lock(&mu);
    left.swap(waiting);
  }
  const absl::Status unloaded = absl::UnavailableError("the model was unloaded during generation");
  for (Sequence& s : running_) {
    if (s.run != nullptr) End(s, unloaded);
  }
  running_.clear();
  if (options.metrics != nullptr) options.metrics->AddWaiting(-static_cast<int64_t>(left.size()));
  for (Sequence& s : left) {
    Touch(s);
    s.callbacks.on_done(unloaded);
  }
  FlushOutputs();
}

BatcherStats ContinuousBatcher::stats() const {
  const Core& c = *core_;
  BatcherStats s;
  s.steps = c.steps.load(std::memory_order_relaxed);
  s.step_sequences = c.step_sequences.load(std::memory_order_relaxed);
  s.max_step_sequences = c.max_step_sequences.load(std::memory_order_relaxed);
  s.tokens = c.tokens.load(std::memory_order_relaxed);
  s.prefill_steps = c.prefill_steps.load(std::memory_order_relaxed);
  s.prefill_sequences = c.prefill_sequences.load(std::memory_order_relaxed);
  s.decode_steps = c.decode_steps.load(std::memory_order_relaxed);
  s.decode_sequences = c.decode_sequences.load(std::memory_order_relaxed);
  s.admit_wait_us = c.admit_wait_us.load(std::memory_order_relaxed);
  s.prefill_run_us = c.prefill_run_us.load(std::memory_order_relaxed);
  s.decode_run_us = c.decode_run_us.load(std::memory_order_relaxed);
  s.decode_rounds = c.decode_rounds.load(std::memory_order_relaxed);
  s.decode_past_tokens = c.decode_past_tokens.load(std::memory_order_relaxed);
  s.decode_padded_tokens = c.decode_padded_tokens.load(std::memory_order_relaxed);
  s.finished_length = c.finished_length.load(std::memory_order_relaxed);
  s.finished_stop = c.finished_stop.load(std::memory_order_relaxed);
  s.finished_cancelled = c.finished_cancelled.load(std::memory_order_relaxed);
  s.failed = c.failed.load(std::memory_order_relaxed);
  s.refused_queue_full = c.refused_queue_full.load(std::memory_order_relaxed);
  s.refused_timeout = c.refused_timeout.load(std::memory_order_relaxed);
  s.running = c.running.load(std::memory_order_relaxed);
  s.waiting = c.waiting_count.load(std::memory_order_relaxed);
  s.kv_blocks_used = c.pool->used_blocks();
  s.kv_blocks_total = c.pool->total_blocks();
  s.kv_block_bytes = c.pool->block_bytes();
  return s;
}

const KvBlockPool& ContinuousBatcher::pool() const { return *core_->pool; }

}  // namespace ortserve::generation
