// SPDX-License-Identifier: Apache-2.0
// DynamicBatcher: the Scheduler for every model version, batching or not.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "observability/metrics.h"
#include "scheduler/adaptive_batching.h"
#include "scheduler/batch_builder.h"
#include "scheduler/observable_clock.h"
#include "scheduler/ring_queue.h"
#include "scheduler/scheduler.h"

namespace ortserve::scheduler {

// One queue per model version, split by priority level, and one runner thread
// per instance. Runners take turns forming the next batch: the runner whose
// turn it is scans the queue (highest priority first, oldest first within a
// level), drops cancelled and expired requests, and cuts a batch when
//   - the compatible requests at the head fill max_batch_size rows, or the
//     next one would overflow it or cannot share the batch (other shape),
//   - a prefix of them adds up exactly to a preferred batch size (the largest
//     such), or
//   - max_queue_delay has passed since the oldest of them was enqueued, or the
//     scheduler is stopping, or
//   - one of them found the queue empty and a runner idle (or answering its
//     batch, its model run over) when it arrived, while recent batches held
//     about one request each (run_when_idle): at low load there is no
//     company to wait for, so it runs at once with whatever queued before
//     the runner scanned. Recent batches with company mean load: then the
//     first request after a batch (a runner is idle for a moment between
//     batches even at saturation) waits for the others as usual, instead of
//     running alone and leaving them to the next batch;
// otherwise it waits (on the injected clock) for more requests. Without
// dynamic batching each request runs alone.
//
// Token budget (max_batch_tokens > 0, text models): requests are grouped by
// length. Each request's length is its inputs' size on `sequence_axis`, and
// its bucket the next power of two of that length (lengths up to 16 share one
// bucket). A batch starts from the request at the head of the queue (the
// oldest of the highest priority, so nothing starves) and takes, in queue
// order, the compatible requests of the same bucket, skipping the others
// (they wait for a batch of their own bucket); it is cut when max_batch_size
// rows are reached or when the next such request would push rows x longest
// length (the padded cost) over max_batch_tokens, besides the usual preferred
// sizes, queue delay and stop. A request over the budget on its own runs alone. A batch is the concatenation of
// its requests along dim 0 (padded when pad_variable_dims); each request gets
// views of its rows of the batch outputs.
//
// A deadline thread answers DEADLINE_EXCEEDED for queued requests as their
// deadlines pass (it sleeps until the earliest one), so an expired request is
// answered promptly even while every runner is busy, and never runs.
//
// Memory: queues are rings that keep their capacity; batch input buffers,
// tensor vectors and output-name lists are per runner and reused. A response
// reuses its request's storage: the `inputs` vector becomes `outputs`
// (`Tensor` objects and their name strings are reassigned in place), the id,
// model name and version strings are moved over, and a requested output's
// name string is moved into the output tensor. So after warm-up, serving a
// request allocates nothing in the scheduler as long as the request has at
// least as many inputs as outputs it receives; each output tensor beyond that
// costs one vector growth.
//
// Padded batches: outputs are returned per request rows as the model produced
// them, so a request padded to a longer sequence gets outputs of the padded
// size (its shape says so). Trimming is the caller's business.
//
// Tracing: for requests sampled by the front end (InferRequest::trace), the
// runner exports a queue-wait span per request and one batch span per run
// that links the sampled requests' spans; a batch with no sampled request
// records nothing and allocates nothing for tracing.
//
// Thread-safe. Destruction stops the scheduler (see Stop).
class DynamicBatcher final : public Scheduler {
 public:
  // `options` must have passed CreateScheduler's checks.
  explicit DynamicBatcher(SchedulerOptions options);
  ~DynamicBatcher() override;

  void Enqueue(std::unique_ptr<InferRequest> request, InferCallback done) override;
  void Stop() override;
  size_t InflightCount() const override;
  // Runners waiting for requests or forming a batch (not running one).
  size_t IdleRunnerCount() const;

 private:
  struct Entry {
    std::unique_ptr<InferRequest> request;
    InferCallback done;
    absl::Time enqueued;
    absl::Time deadline = absl::InfiniteFuture();
    int64_t rows = 1;
    int64_t length = 0;   // Token mode: the longest input size on sequence_axis.
    uint32_t bucket = 0;  // Token mode: the length bucket.
    // It found the queue empty and a runner idle (options_.run_when_idle):
    // the batch it is in is cut without waiting for the queue delay.
    bool run_at_once = false;
  };
  struct Rejected {
    Entry entry;
    absl::StatusCode code;
  };
  // Scratch a runner reuses from batch to batch.
  struct RunnerState {
    std::vector<Entry> batch;
    std::vector<Rejected> rejected;
    std::vector<const InferRequest*> requests;
    BatchInputBuilder builder;
    std::vector<Tensor> run_outputs;
    // The batch's answers, built before any is sent (parallel to `batch`).
    std::vector<absl::StatusOr<InferResponse>> answers;
    std::vector<std::string> subset_names;
    std::vector<int> run_position;  // Signature output index -> run output index, or -1.
    absl::Time cut_time;
    // A traced batch of several requests: its batch span's trace position,
    // made before the run (the parent of the spans the session makes) and
    // used by RecordSpans; unsampled otherwise.
    RequestTrace batch_trace;
    // This runner's ortserve_instance_execution_total child and its device's
    // activity (no-ops without metrics).
    observability::InstanceMetrics instance_metrics;
  };

  void RunLoop(size_t index);
  void DeadlineLoop();
  // Waits for this runner's turn and fills state.batch (or state.rejected).
  // Returns false when the scheduler is stopping and the queue is drained.
  bool NextBatch(RunnerState& state) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // What a scan of the queue found: the compatible requests at its head.
  struct Scan {
    size_t count = 0;      // Head entries that can share one batch.
    size_t preferred = 0;  // Head entries adding up to the largest preferred size; 0: none.
    bool cut_now = false;  // Waiting cannot grow the batch (full, or next incompatible).
    absl::Time oldest = absl::InfiniteFuture();  // Earliest enqueue time among them.
    bool run_at_once = false;  // One of them has Entry::run_at_once.
  };
  // Chooses the next batch: the head of the queue (highest priority, oldest)
  // and, in queue order, the entries that can run with it. Without
  // pad_variable_dims, entries of another shape are passed over and wait for
  // a batch of their own shape (shape-aware batching: a mix of image widths
  // forms one batch per width instead of cutting at every change). Fills
  // picks_ with the chosen entries, in queue order. Moves cancelled and
  // expired entries it meets into `rejected`.
  Scan ScanQueue(absl::Time now, std::vector<Rejected>& rejected) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Moves entry `i` of `level` to `rejected` when it was cancelled or its
  // deadline passed; true when it did (the entry is gone from `level`).
  bool DropIfDone(RingQueue<Entry>& level, size_t i, absl::Time now, std::vector<Rejected>& rejected)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Token mode's scan: fills picks_ with the chosen entries, in queue order.
  Scan ScanByTokens(absl::Time now, std::vector<Rejected>& rejected) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool token_mode() const { return options_.max_batch_tokens > 0 && options_.dynamic_batching && options_.max_batch_size > 0; }
  void Execute(RunnerState& state, backend::Session& session);
  // When a batch's phases began and ended (the injected clock).
  struct BatchTimes {
    absl::Time cut, run_start, run_end, done;
  };
  // Exports a queue span per sampled request of the batch (enqueue to cut,
  // a child of the request's span) and one batch span (cut to outputs split)
  // linking those requests' spans. Called only when some request is sampled.
  void RecordSpans(RunnerState& state, int64_t rows, const BatchTimes& times, const absl::Status& status);
  // The span a traced run belongs under (Session::RunTraced): the request's
  // server span when the batch is that one sampled request, else the batch
  // span, whose position it makes now (state.batch_trace).
  const RequestTrace& RunParent(RunnerState& state, bool single);
  void AnswerRejected(std::vector<Rejected>& rejected);
  void FailBatch(RunnerState& state, const absl::Status& status);
  absl::Status BuildResponse(RunnerState& state, Entry& entry, bool single, int64_t batch_rows,
                             int64_t row_begin, InferResponse* response);
  // The output index in the model signature, or -1.
  int SignatureOutput(const std::string& name) const;
  void WakeForClock();
  // The batch size and queue delay in force: the adaptive ones under a
  // latency target, else the configured ones.
  int64_t MaxRows() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return adaptive_ ? adaptive_->batch_size() : options_.max_batch_size;
  }
  // The rows a batch headed by `head` may take. Under a latency target, a
  // head that has already waited the whole target marks a backlog: the target
  // is lost for it, and the quickest way back is the largest batches, so the
  // batch may fill max_batch_size (AdaptiveBatchLimit ignores such a batch).
  int64_t MaxRowsFor(const Entry& head, absl::Time now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (adaptive_ && now - head.enqueued >= options_.latency_target) return options_.max_batch_size;
    return MaxRows();
  }
  absl::Duration QueueDelay() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return adaptive_ ? adaptive_->queue_delay() : options_.max_queue_delay;
  }

  const SchedulerOptions options_;
  const size_t levels_count_;
  std::vector<std::string> all_output_names_;  // The signature's outputs, in order.
  ObservableClock* const observable_clock_;    // options_.clock when it can jump.

  mutable absl::Mutex mu_;
  absl::CondVar turn_cv_;     // A runner may take its turn to form a batch.
  absl::CondVar forming_cv_;  // The forming runner should rescan.
  absl::CondVar deadline_cv_; // The deadline thread should recheck.
  std::vector<RingQueue<Entry>> levels_ ABSL_GUARDED_BY(mu_);  // Index = priority - 1.
  size_t queued_ ABSL_GUARDED_BY(mu_) = 0;
  // Token mode: the entries the last scan chose, as (level, index) pairs.
  std::vector<std::pair<size_t, size_t>> picks_ ABSL_GUARDED_BY(mu_);
  // With pad_variable_dims: the padded shape of the batch a scan forms, so
  // that no batch pads past max_padded_batch_bytes.
  PaddedBatchShape padded_ ABSL_GUARDED_BY(mu_);
  size_t inflight_ ABSL_GUARDED_BY(mu_) = 0;
  // Runners inside NextBatch (waiting for requests or forming a batch), as
  // opposed to running one.
  size_t idle_runners_ ABSL_GUARDED_BY(mu_) = 0;
  // Runners between cutting a batch and the end of its model run. Fewer than
  // the instances: one is free or about to be (answering its batch), which
  // the idle fast path counts as idle.
  size_t running_ ABSL_GUARDED_BY(mu_) = 0;
  // Requests per batch, a moving average over recent batches (each new batch
  // weighs kCompanyWeight). The idle fast path is open while it stays under
  // kCompanyThreshold: after one batch of 30 it takes about ten lone batches
  // to open again, so a closed loop at saturation keeps batching.
  static constexpr double kCompanyWeight = 0.25;
  static constexpr double kCompanyThreshold = 1.5;
  double recent_batch_requests_ ABSL_GUARDED_BY(mu_) = 1;
  // Under a latency target (options_.latency_target > 0, dynamic batching).
  std::optional<AdaptiveBatchLimit> adaptive_ ABSL_GUARDED_BY(mu_);
  bool forming_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool deadline_exit_ ABSL_GUARDED_BY(mu_) = false;
  // No queued entry has an earlier deadline (a lower bound, exact after a sweep).
  absl::Time earliest_deadline_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  // The deadline thread's scratch: only that thread touches it (filled under
  // mu_, answered after unlocking), so it needs no lock.
  std::vector<Rejected> expired_;

  std::vector<std::unique_ptr<RunnerState>> states_;
  std::vector<std::thread> runners_;
  std::thread deadline_thread_;
  absl::Mutex stop_mu_;
  bool stopped_ ABSL_GUARDED_BY(stop_mu_) = false;
};

}  // namespace ortserve::scheduler
