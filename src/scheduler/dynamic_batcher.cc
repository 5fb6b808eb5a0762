// SPDX-License-Identifier: Apache-2.0
#include "scheduler/dynamic_batcher.h"

#include <sys/prctl.h>

#include <algorithm>

#include "core/status.h"
#include "core/strings.h"
#include "observability/metrics.h"
#include "observability/tracing.h"

namespace ortserve::scheduler {
namespace {

constexpr size_t kInitialQueueCapacity = 64;
// Per-runner scratch and batch buffers are sized up front for max_batch_size
// rows, but for no more than this many: a config's max_batch_size of many
// digits must not take the server's memory before any request arrives.
// Larger batches grow the scratch once, when they first occur.
constexpr int64_t kMostPreallocatedRows = 4096;

absl::Status RejectionStatus(absl::StatusCode code, const std::string& model) {
  switch (code) {
    case absl::StatusCode::kCancelled:
      return absl::CancelledError(
          StrCat("the client went away before the request to model '", model, "' ran"));
    default:
      return absl::DeadlineExceededError(
          StrCat("the request timed out in the queue of model '", model, "'"));
  }
}

// The length bucket of a token-mode request: the next power of two of its
// length, with every length up to 16 in one bucket.
uint32_t LengthBucket(int64_t length) {
  uint32_t bucket = 4;
  while (bucket < 62 && (int64_t{1} << bucket) < length) ++bucket;
  return bucket;
}

}  // namespace

DynamicBatcher::DynamicBatcher(SchedulerOptions options)
    : options_(std::move(options)),
      levels_count_(std::max<uint32_t>(1, options_.priority_levels)),
      observable_clock_(dynamic_cast<ObservableClock*>(options_.clock)) {
  for (const auto& spec : options_.instances[0]->signature().outputs) all_output_names_.push_back(spec.name);
  const size_t max_rows = static_cast<size_t>(std::clamp<int64_t>(options_.max_batch_size, 1, kMostPreallocatedRows));
  {
    absl::MutexLock lock(&mu_);
    levels_.resize(levels_count_);
    for (auto& level : levels_) level.reserve(kInitialQueueCapacity);
    expired_.reserve(kInitialQueueCapacity);
    picks_.reserve(max_rows);
    if (options_.latency_target > absl::ZeroDuration() && options_.dynamic_batching && options_.max_batch_size > 0) {
      adaptive_.emplace(AdaptiveBatchLimit::Options{.target = options_.latency_target,
                                                    .max_batch_size = options_.max_batch_size,
                                                    .max_queue_delay = options_.max_queue_delay});
      if (options_.metrics != nullptr) {
        options_.metrics->SetBatchLimits(adaptive_->batch_size(), adaptive_->queue_delay());
      }
    }
  }
  for (size_t i = 0; i < options_.instances.size(); ++i) {
    auto state = std::make_unique<RunnerState>();
    state->batch.reserve(max_rows);
    state->requests.reserve(max_rows);
    state->answers.reserve(max_rows);
    state->rejected.reserve(kInitialQueueCapacity);
    state->run_outputs.reserve(all_output_names_.size());
    state->subset_names.reserve(all_output_names_.size());
    state->run_position.resize(all_output_names_.size());
    for (const auto& name : all_output_names_) state->subset_names.push_back(name);
    // Batches are built in memory from the instance's session (pinned on a GPU).
    state->builder = BatchInputBuilder(options_.instances[i].get());
    if (options_.max_batch_size > 0) {
      state->builder.Reserve(options_.instances[i]->signature().inputs, static_cast<int64_t>(max_rows));
    }
    // Runner i is instance i; its counter child is resolved once, here.
    if (options_.metrics != nullptr) {
      state->instance_metrics = options_.metrics->ForInstance(i, options_.instances[i]->device_name());
    }
    states_.push_back(std::move(state));
  }
  if (observable_clock_ != nullptr) observable_clock_->AddObserver(this, [this] { WakeForClock(); });
  for (size_t i = 0; i < options_.instances.size(); ++i) runners_.emplace_back([this, i] { RunLoop(i); });
  deadline_thread_ = std::thread([this] { DeadlineLoop(); });
}

DynamicBatcher::~DynamicBatcher() { Stop(); }

void DynamicBatcher::Enqueue(std::unique_ptr<InferRequest> request, InferCallback done) {
  const absl::Time now = options_.clock->Now();
  Entry entry;
  entry.enqueued = now;
  // Validation needs no lock; rejections here are answered inline.
  if (options_.max_batch_size > 0) {
    absl::StatusOr<int64_t> rows = BatchRows(*request);
    if (!rows.ok()) return std::move(done)(rows.status());
    if (*rows > options_.max_batch_size) {
      return std::move(done)(absl::InvalidArgumentError(
          StrCat("request '", request->id, "' has batch size ", *rows, " but model '", options_.model_name,
                 "' allows at most ", options_.max_batch_size)));
    }
    entry.rows = *rows;
    if (token_mode()) {
      const auto axis = static_cast<size_t>(options_.sequence_axis);
      for (const Tensor& input : request->inputs) {
        if (input.shape.size() > axis) entry.length = std::max(entry.length, input.shape[axis]);
      }
      entry.bucket = LengthBucket(entry.length);
    }
  }
  for (const auto& output : request->outputs) {
    if (SignatureOutput(output.name) < 0) {
      return std::move(done)(absl::InvalidArgumentError(
          StrCat("model '", options_.model_name, "' has no output '", output.name, "'")));
    }
  }
  uint32_t priority = request->priority == 0 ? options_.default_priority_level : request->priority;
  if (priority == 0) priority = 1;
  if (priority > levels_count_) {
    return std::move(done)(absl::InvalidArgumentError(
        StrCat("request priority ", request->priority, " is out of range: model '", options_.model_name,
               "' has priority levels 1 to ", levels_count_)));
  }
  // The timeout: a request may shorten the default timeout, or set one when
  // there is no default; with allow_timeout_override off the default rules.
  entry.deadline = request->deadline;
  if (options_.default_timeout > absl::ZeroDuration()) {
    const absl::Time by_default = now + options_.default_timeout;
    entry.deadline = options_.allow_timeout_override ? std::min(entry.deadline, by_default) : by_default;
  }
  if (entry.deadline <= now) {
    return std::move(done)(RejectionStatus(absl::StatusCode::kDeadlineExceeded, options_.model_name));
  }
  if (request->cancelled()) {
    return std::move(done)(RejectionStatus(absl::StatusCode::kCancelled, options_.model_name));
  }
  entry.request = std::move(request);
  entry.done = std::move(done);
  bool stopping;
  {
    absl::MutexLock lock(&mu_);
    stopping = stopping_;
    if (!stopping && (options_.max_queue_size == 0 || queued_ < options_.max_queue_size)) {
      if (entry.deadline < earliest_deadline_) {
        earliest_deadline_ = entry.deadline;
        deadline_cv_.Signal();
      }
      // Nothing queued, a runner waiting, and recent batches had no company
      // either: there is no company to wait for.
      entry.run_at_once = options_.run_when_idle && queued_ == 0 && running_ < options_.instances.size() &&
                          recent_batch_requests_ < kCompanyThreshold;
      levels_[priority - 1].push_back(std::move(entry));
      ++queued_;
      ++inflight_;
      if (forming_) {
        forming_cv_.Signal();
      } else {
        turn_cv_.Signal();
      }
      return;
    }
  }
  std::move(entry.done)(absl::UnavailableError(
      stopping ? StrCat("model '", options_.model_name, "' version ", options_.model_version,
                        " is shutting down; retry later")
               : StrCat("the queue of model '", options_.model_name, "' is full (max_queue_size ",
                        options_.max_queue_size, "); retry later")));
}

void DynamicBatcher::Stop() {
  absl::MutexLock stop_lock(&stop_mu_);
  if (stopped_) return;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    turn_cv_.SignalAll();
    forming_cv_.SignalAll();
  }
  // Runners drain the queue before they exit.
  for (auto& runner : runners_) runner.join();
  {
    absl::MutexLock lock(&mu_);
    deadline_exit_ = true;
    deadline_cv_.Signal();
  }
  deadline_thread_.join();
  if (observable_clock_ != nullptr) observable_clock_->RemoveObserver(this);
  stopped_ = true;
}

size_t DynamicBatcher::InflightCount() const {
  absl::MutexLock lock(&mu_);
  return inflight_;
}

size_t DynamicBatcher::IdleRunnerCount() const {
  absl::MutexLock lock(&mu_);
  return idle_runners_;
}

int DynamicBatcher::SignatureOutput(const std::string& name) const {
  for (size_t i = 0; i < all_output_names_.size(); ++i) {
    if (all_output_names_[i] == name) return static_cast<int>(i);
  }
  return -1;
}

void DynamicBatcher::WakeForClock() {
  absl::MutexLock lock(&mu_);
  forming_cv_.SignalAll();
  deadline_cv_.Signal();
}

namespace {

// The batch delay and the deadlines are timed waits of a few hundred
// microseconds; Linux's default 50 us timer slack for ordinary threads
// stretched each by ~90 us (measured: 293 us of queue wait for a 200 us
// max_queue_delay). Timers of these threads fire within a microsecond.
void TightenTimerSlack() { prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0); }

}  // namespace

void DynamicBatcher::RunLoop(size_t index) {
  TightenTimerSlack();
  RunnerState& state = *states_[index];
  backend::Session& session = *options_.instances[index];
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      if (!NextBatch(state)) return;
    }
    Execute(state, session);
  }
}

bool DynamicBatcher::NextBatch(RunnerState& state) {
  ++idle_runners_;
  // Wait for this runner's turn: one runner forms a batch at a time.
  while (forming_ || (queued_ == 0 && !stopping_)) turn_cv_.Wait(&mu_);
  if (queued_ == 0) {
    --idle_runners_;
    return false;  // Stopping and drained.
  }
  forming_ = true;
  size_t take = 0;
  for (;;) {
    const absl::Time now = options_.clock->Now();
    const Scan scan = ScanQueue(now, state.rejected);
    if (scan.count == 0) break;
    if (scan.cut_now || scan.run_at_once || stopping_) {
      take = scan.count;
    } else if (scan.preferred > 0) {
      take = scan.preferred;
    } else if (now >= scan.oldest + QueueDelay()) {
      take = scan.count;
    }
    if (take > 0) {
      state.cut_time = now;
      break;
    }
    // Answer what the scan dropped before waiting for the batch to fill.
    if (!state.rejected.empty()) break;
    forming_cv_.WaitWithTimeout(&mu_, scan.oldest + QueueDelay() - now);
  }
  // The first `take` picks, in queue order; erasing shifts the later entries
  // of the same level forward by one each time (picks at the head of a level
  // are plain pops).
  size_t erased = 0;
  for (size_t p = 0; p < take; ++p) {
    if (p > 0 && picks_[p].first != picks_[p - 1].first) erased = 0;
    auto& level = levels_[picks_[p].first];
    const size_t at = picks_[p].second - erased;
    state.batch.push_back(at == 0 ? level.pop_front() : level.erase_at(at));
    ++erased;
  }
  queued_ -= take;
  if (take > 0) ++running_;
  recent_batch_requests_ += kCompanyWeight * (static_cast<double>(take) - recent_batch_requests_);
  --idle_runners_;
  forming_ = false;
  if (queued_ > 0 || stopping_) turn_cv_.Signal();
  return true;
}

void DynamicBatcher::DeadlineLoop() {
  TightenTimerSlack();
  absl::MutexLock lock(&mu_);
  while (!deadline_exit_) {
    const absl::Time now = options_.clock->Now();
    if (earliest_deadline_ <= now) {
      absl::Time next = absl::InfiniteFuture();
      for (auto& level : levels_) {
        for (size_t i = 0; i < level.size();) {
          if (level[i].deadline <= now) {
            expired_.push_back(Rejected{level.erase_at(i), absl::StatusCode::kDeadlineExceeded});
            --queued_;
          } else {
            next = std::min(next, level[i].deadline);
            ++i;
          }
        }
      }
      earliest_deadline_ = next;
      if (!expired_.empty()) {
        forming_cv_.SignalAll();  // The batch being formed may have lost members.
        mu_.Unlock();
        AnswerRejected(expired_);
        mu_.Lock();
        continue;
      }
    }
    if (earliest_deadline_ == absl::InfiniteFuture()) {
      deadline_cv_.Wait(&mu_);
    } else {
      deadline_cv_.WaitWithTimeout(&mu_, earliest_deadline_ - now);
    }
  }
}

void DynamicBatcher::AnswerRejected(std::vector<Rejected>& rejected) {
  const size_t count = rejected.size();
  for (Rejected& item : rejected) {
    if (options_.stats != nullptr) {
      options_.stats->fail.Record(options_.clock->Now() - item.entry.enqueued);
    }
    std::move(item.entry.done)(RejectionStatus(item.code, options_.model_name));
  }
  rejected.clear();
  absl::MutexLock lock(&mu_);
  inflight_ -= count;
}

void DynamicBatcher::FailBatch(RunnerState& state, const absl::Status& status) {
  for (Entry& entry : state.batch) {
    if (options_.stats != nullptr) options_.stats->fail.Record(options_.clock->Now() - entry.enqueued);
    std::move(entry.done)(status);
  }
}

absl::Status DynamicBatcher::BuildResponse(RunnerState& state, Entry& entry, bool single, int64_t batch_rows,
                                           int64_t row_begin, InferResponse* response) {
  InferRequest& request = *entry.request;
  // The request's inputs are no longer needed: their vector, Tensor objects
  // and name strings become the response's outputs (see the class comment).
  std::vector<Tensor> outputs = std::move(request.inputs);
  const bool all = request.outputs.empty();
  const size_t count = all ? all_output_names_.size() : request.outputs.size();
  outputs.resize(count);
  for (size_t j = 0; j < count; ++j) {
    Tensor& out = outputs[j];
    const int index = all ? static_cast<int>(j) : SignatureOutput(request.outputs[j].name);
    const int position = state.run_position[static_cast<size_t>(index)];
    if (position < 0 || static_cast<size_t>(position) >= state.run_outputs.size()) {
      return absl::InternalError(StrCat("model '", options_.model_name, "' did not produce output '",
                                        all_output_names_[static_cast<size_t>(index)], "'"));
    }
    const Tensor& produced = state.run_outputs[static_cast<size_t>(position)];
    if (all) {
      out.name.assign(all_output_names_[j]);
    } else {
      out.name.swap(request.outputs[j].name);
    }
    if (single) {
      out.type = produced.type;
      out.shape = produced.shape;
      out.data = produced.data;
      out.holder = produced.holder;
    } else {
      RETURN_IF_ERROR(SliceRows(produced, batch_rows, row_begin, entry.rows, &out));
    }
  }
  response->model_name = std::move(request.model_name);
  if (response->model_name != options_.model_name) response->model_name.assign(options_.model_name);
  response->model_version = std::move(request.model_version);
  if (response->model_version != options_.model_version) {
    response->model_version.assign(options_.model_version);
  }
  response->id = std::move(request.id);
  response->outputs = std::move(outputs);
  return absl::OkStatus();
}

void DynamicBatcher::RecordSpans(RunnerState& state, int64_t rows, const BatchTimes& times,
                                 const absl::Status& status) {
  const std::string& model = options_.model_name;
  const std::string& version = options_.model_version;
  observability::Tracer* tracer = nullptr;
  observability::Span batch;
  for (const Entry& entry : state.batch) {
    const RequestTrace& trace = entry.request->trace;
    if (!trace.sampled()) continue;
    tracer = trace.tracer;
    observability::Span queue =
        observability::ChildSpan(trace, StrCat("queue ", model), "queue", model, version, entry.enqueued);
    queue.end = times.cut;
    if (trace.input_tokens > 0) queue.attributes.emplace_back("llm.request.input_tokens", trace.input_tokens);
    tracer->Export(std::move(queue));
    observability::TraceContext served;
    served.trace_id = trace.trace_id;
    served.span_id = trace.span_id;
    served.sampled = true;
    batch.links.push_back(served);
  }
  if (tracer == nullptr) return;
  // The run is shared by every request of the batch, so it is no request's
  // child: it starts a trace of its own and links the sampled requests' spans.
  if (state.batch_trace.sampled()) {
    batch.context.trace_id = state.batch_trace.trace_id;
    batch.context.span_id = state.batch_trace.span_id;
    batch.context.sampled = true;
  } else {
    batch.context = tracer->NewSampledTrace();
  }
  batch.name = StrCat("batch ", model);
  batch.start = times.cut;
  batch.end = times.done;
  batch.attributes.reserve(9);
  batch.attributes.emplace_back("ai.model.name", model);
  batch.attributes.emplace_back("ai.model.version", version);
  batch.attributes.emplace_back("ai.operation", std::string("batch"));
  batch.attributes.emplace_back("ai.batch.requests", static_cast<int64_t>(state.batch.size()));
  batch.attributes.emplace_back("ai.batch.rows", rows);
  batch.attributes.emplace_back("ai.batch.sampled_requests", static_cast<int64_t>(batch.links.size()));
  batch.attributes.emplace_back("ai.batch.input_us", absl::ToInt64Microseconds(times.run_start - times.cut));
  batch.attributes.emplace_back("ai.batch.run_us", absl::ToInt64Microseconds(times.run_end - times.run_start));
  batch.attributes.emplace_back("ai.batch.output_us", absl::ToInt64Microseconds(times.done - times.run_end));
  batch.error = !status.ok();
  if (!status.ok()) batch.status_message = std::string(ToStd(status.message()));
  tracer->Export(std::move(batch));
}

const RequestTrace& DynamicBatcher::RunParent(RunnerState& state, bool single) {
  observability::Tracer* tracer = nullptr;
  for (const Entry& entry : state.batch) {
    if (!entry.request->trace.sampled()) continue;
    if (single) return entry.request->trace;
    tracer = entry.request->trace.tracer;
    break;
  }
  const observability::TraceContext context = tracer->NewSampledTrace();
  state.batch_trace.trace_id = context.trace_id;
  state.batch_trace.span_id = context.span_id;
  state.batch_trace.tracer = tracer;
  return state.batch_trace;
}

void DynamicBatcher::Execute(RunnerState& state, backend::Session& session) {
  if (!state.rejected.empty()) AnswerRejected(state.rejected);
  if (state.batch.empty()) return;
  state.batch_trace = RequestTrace{};
  ModelStats* stats = options_.stats;
  const size_t count = state.batch.size();
  const absl::Time cut = state.cut_time;
  int64_t rows = 0;
  bool traced = false;  // Some request of the batch is sampled.
  state.requests.clear();
  for (const Entry& entry : state.batch) {
    traced |= entry.request->trace.sampled();
    if (stats != nullptr) stats->queue.Record(cut - entry.enqueued);
    if (options_.metrics != nullptr) options_.metrics->RecordQueue(cut - entry.enqueued);
    state.requests.push_back(entry.request.get());
    rows += entry.rows;
  }
  const bool single = count == 1;

  // Which outputs to run: every one if some request wants all, else the union.
  bool all = false;
  std::fill(state.run_position.begin(), state.run_position.end(), -1);
  for (const InferRequest* request : state.requests) {
    if (request->outputs.empty()) {
      all = true;
      break;
    }
    for (const auto& output : request->outputs) state.run_position[static_cast<size_t>(SignatureOutput(output.name))] = 0;
  }
  std::span<const std::string> names;
  if (all) {
    for (size_t i = 0; i < state.run_position.size(); ++i) state.run_position[i] = static_cast<int>(i);
    names = all_output_names_;
  } else {
    size_t n = 0;
    for (size_t i = 0; i < state.run_position.size(); ++i) {
      if (state.run_position[i] < 0) continue;
      if (state.subset_names.size() <= n) state.subset_names.emplace_back();
      state.subset_names[n].assign(all_output_names_[i]);  // Reuses the string's capacity.
      state.run_position[i] = static_cast<int>(n++);
    }
    names = std::span<const std::string>(state.subset_names.data(), n);
  }

  std::span<const Tensor> inputs;
  absl::Status status;
  if (single) {
    inputs = state.requests[0]->inputs;
  } else {
    BatchInputBuilder::BuildOptions build;
    build.pad = options_.pad_variable_dims;
    build.pad_value = options_.pad_value;
    build.max_rows = std::min<int64_t>(options_.max_batch_size, kMostPreallocatedRows);
    build.max_padded_bytes = options_.max_padded_batch_bytes;
    status = state.builder.Build(state.requests, build);
    inputs = state.builder.tensors();
  }
  if (options_.metrics != nullptr) options_.metrics->BatchStarted();
  const absl::Time run_start = options_.clock->Now();
  state.run_outputs.clear();
  absl::Time run_end = run_start;
  if (status.ok()) {
    state.instance_metrics.RunStarted(run_start);
    status = traced ? session.RunTraced(inputs, names, &state.run_outputs, RunParent(state, single))
                    : session.Run(inputs, names, &state.run_outputs);
    run_end = options_.clock->Now();
    state.instance_metrics.RunFinished(run_end);
  }
  {
    // The model has run: this runner answers and comes back for the next
    // batch within microseconds, so a request arriving now (a client that
    // already has its answer, say) need not wait for company.
    absl::MutexLock lock(&mu_);
    --running_;
  }
  if (!status.ok()) {
    FailBatch(state, status);
  } else {
    if (stats != nullptr) {
      const auto batch_rows = static_cast<uint64_t>(options_.max_batch_size > 0 ? rows : 1);
      stats->inference_count.fetch_add(batch_rows, std::memory_order_relaxed);
      stats->execution_count.fetch_add(1, std::memory_order_relaxed);
    }
    // Every answer is built and every statistic recorded before the first
    // answer is sent: compute_output is the time to split the batch (not the
    // front end's hand-off), and a client that reads the statistics after its
    // answer finds its own run counted.
    int64_t row_begin = 0;
    for (Entry& entry : state.batch) {
      InferResponse response;
      absl::Status built = BuildResponse(state, entry, single, rows, row_begin, &response);
      row_begin += entry.rows;
      if (!built.ok()) {
        if (stats != nullptr) stats->fail.Record(options_.clock->Now() - entry.enqueued);
        state.answers.emplace_back(std::move(built));
        continue;
      }
      if (stats != nullptr) {
        const absl::Time now = options_.clock->Now();
        const absl::Time arrival =
            entry.request->arrival == absl::InfinitePast() ? entry.enqueued : entry.request->arrival;
        stats->success.Record(now - arrival);
        stats->last_inference_ms.store(absl::ToUnixMillis(now), std::memory_order_relaxed);
      }
      state.answers.emplace_back(std::move(response));
    }
  }
  const absl::Time done = options_.clock->Now();
  if (options_.metrics != nullptr) {
    options_.metrics->BatchFinished();
    if (status.ok()) {
      options_.metrics->RecordExecution(static_cast<size_t>(options_.max_batch_size > 0 ? rows : 1), count,
                                        run_start - cut, run_end - run_start, done - run_end);
      state.instance_metrics.RecordExecution();
    }
  }
  if (stats != nullptr) {
    const auto n = static_cast<int64_t>(count);
    stats->compute_input.Record((run_start - cut) * n, count);
    stats->compute_infer.Record((run_end - run_start) * n, count);
    stats->compute_output.Record((done - run_end) * n, count);
    if (status.ok()) {
      const auto batch_rows = static_cast<uint64_t>(options_.max_batch_size > 0 ? rows : 1);
      if (BatchSizeStats* batch = stats->ForBatch(batch_rows)) {
        batch->compute_input.Record(run_start - cut);
        batch->compute_infer.Record(run_end - run_start);
        batch->compute_output.Record(done - run_end);
      }
    }
  }
  if (status.ok()) {
    for (size_t i = 0; i < count; ++i) std::move(state.batch[i].done)(std::move(state.answers[i]));
  }
  if (traced) RecordSpans(state, rows, {cut, run_start, run_end, done}, status);
  // Release the batch outputs this runner holds, and the requests.
  state.run_outputs.clear();
  state.answers.clear();
  state.requests.clear();
  state.batch.clear();
  absl::MutexLock lock(&mu_);
  inflight_ -= count;
  if (adaptive_ && status.ok()) {
    adaptive_->Observe(rows, run_end - run_start);
    if (options_.metrics != nullptr) options_.metrics->SetBatchLimits(adaptive_->batch_size(), adaptive_->queue_delay());
  }
}

}  // namespace ortserve::scheduler
