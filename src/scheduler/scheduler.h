// SPDX-License-Identifier: Apache-2.0
// Scheduler: the queue in front of one model version's instances.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "backend/session.h"
#include "core/clock.h"
#include "core/infer_request.h"
#include "core/model_stats.h"

namespace ortserve::observability {
class VersionMetrics;
}  // namespace ortserve::observability

namespace ortserve::scheduler {

// Takes validated requests for one model version, runs them on that version's
// sessions (batched or not) and answers each exactly once.
//
// Contract: once Enqueue is called the scheduler owns the request and calls
// `done` exactly once, on rejection too (UNAVAILABLE when the queue is full or
// the scheduler is stopping, DEADLINE_EXCEEDED when the request's deadline
// passes before it runs, CANCELLED when its client went away). `done` runs on a
// scheduler thread (or inline on rejection) and must not block.
//
// Thread-safe.
class Scheduler {
 public:
  virtual ~Scheduler() = default;

  virtual void Enqueue(std::unique_ptr<InferRequest> request, InferCallback done) = 0;

  // Stops intake (later Enqueue calls are answered UNAVAILABLE), finishes every
  // request already admitted, then joins the runner threads. Idempotent.
  virtual void Stop() = 0;

  // Requests admitted and not yet answered (queued + executing).
  virtual size_t InflightCount() const = 0;
};

inline constexpr uint64_t kDefaultMaxPaddedBatchBytes = uint64_t{256} << 20;

// What a scheduler needs to know about the model it serves.
struct SchedulerOptions {
  std::string model_name;
  std::string model_version;
  // The sessions to run on: one runner thread each. Shared, because several
  // runners may share one ORT session (instance_group count on one session).
  std::vector<std::shared_ptr<backend::Session>> instances;
  // 0: the model has no batch dimension; requests run as they come.
  int max_batch_size = 0;
  bool dynamic_batching = false;
  std::vector<int> preferred_batch_sizes;
  absl::Duration max_queue_delay = absl::ZeroDuration();
  size_t max_queue_size = 0;      // 0: unbounded.
  uint32_t priority_levels = 0;   // 0 or 1: one level.
  uint32_t default_priority_level = 0;
  absl::Duration default_timeout = absl::ZeroDuration();  // 0: none.
  bool allow_timeout_override = true;
  bool pad_variable_dims = false;
  double pad_value = 0;
  // With pad_variable_dims: the most bytes one padded batch input may take
  // (a request that would pad the batch past it waits for a batch of its own).
  uint64_t max_padded_batch_bytes = kDefaultMaxPaddedBatchBytes;
  // Token budget (text models): with dynamic batching, a batch is also cut
  // before rows x longest sequence (its padded cost, measured on dimension
  // `sequence_axis` of the inputs) would exceed it, and batches are formed
  // from requests of similar length (see DynamicBatcher). 0: off.
  int64_t max_batch_tokens = 0;
  // With dynamic batching: a latency target the batcher meets by adapting
  // its batch size and queue delay within max_batch_size and
  // max_queue_delay (AdaptiveBatchLimit). 0: the static limits.
  absl::Duration latency_target = absl::ZeroDuration();
  // With dynamic batching: a request that finds the queue empty and a runner
  // idle, while recent batches held about one request each, is cut at once
  // (with whatever queued before that runner scanned) instead of waiting
  // max_queue_delay for company. The loader turns it on
  // unless the config's dynamic_batching says wait_when_idle.
  bool run_when_idle = false;
  int sequence_axis = 1;
  ModelStats* stats = nullptr;  // Not owned; outlives the scheduler.
  // Prometheus series of this version (queue wait, batch sizes, compute,
  // in-flight batches); recording is lock-free. Not owned; may be null.
  observability::VersionMetrics* metrics = nullptr;
  Clock* clock = Clock::Real();
};

// Builds the scheduler a model's options call for. Errors: InvalidArgument for
// inconsistent options (no instances, preferred size above max_batch_size).
absl::StatusOr<std::unique_ptr<Scheduler>> CreateScheduler(SchedulerOptions options);

}  // namespace ortserve::scheduler
