// SPDX-License-Identifier: Apache-2.0
// GenerationMetrics: the Prometheus series of one generative model version's
// continuous batcher (generation/continuous_batcher.h; names and meaning in
// docs/metrics.md, "Generation"), label children resolved once at load by
// Metrics::ForGeneration so that the decode loop records without a lock.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "absl/time/time.h"

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
}  // namespace prometheus

namespace ortserve::observability {

// Why the batcher refused a request (the `reason` label of
// ortserve_generation_requests_refused_total).
enum class GenerationRefusal {
  kQueueFull,  // max_waiting_requests already waited: refused at once.
  kTimeout,    // No room in the key/value pool within max_queue_wait_ms.
};
inline constexpr std::array<std::string_view, 2> kGenerationRefusals = {"queue_full", "timeout"};

// How a sequence that ran ended (the `reason` label of
// ortserve_generation_sequences_finished_total).
enum class GenerationEnd {
  kLength,     // max_tokens or the context was reached.
  kStop,       // An end-of-sequence token or a stop sequence.
  kCancelled,  // Its client went away.
  kFailed,     // The model run or the decoder failed, or the model was unloaded.
};
inline constexpr std::array<std::string_view, 4> kGenerationEnds = {"length", "stop", "cancelled", "failed"};

// Thread-safe and lock-free (atomic adds); lives as long as the Metrics that
// made it. Gauges move by deltas, never by Set, so the batchers of one
// version (a reloaded version's new batcher beside the old one draining)
// add up, and each returns what it added when it is done.
class GenerationMetrics {
 public:
  // Gauges: requests waiting for room, sequences running, and the pool's
  // blocks in use and in all.
  void AddWaiting(int64_t delta);
  void AddRunning(int64_t delta);
  void AddKvBlocksUsed(int64_t delta);
  void AddKvBlocksTotal(int64_t delta);

  // A sequence joined the running batch with a prompt of `prompt_tokens`.
  void RecordAdmitted(int64_t prompt_tokens);
  // A token was sampled: the first of its sequence (`latency` since the
  // request was queued: time to first token) or a later one (`latency`
  // since the sequence's previous token: inter-token latency).
  void RecordToken(bool first, absl::Duration latency);
  void RecordRefusal(GenerationRefusal reason);
  void RecordEnd(GenerationEnd end);
  // One model run (prefill or decode step) over `sequences` sequences.
  void RecordStep(int64_t sequences);
  // One decode run: the tokens of past its rows held, and the row-tokens it
  // padded them to (rows x width).
  void RecordDecodePadding(int64_t past_tokens, int64_t padded_tokens);

 private:
  friend class Metrics;
  GenerationMetrics() = default;

  prometheus::Gauge* waiting_ = nullptr;
  prometheus::Gauge* running_ = nullptr;
  prometheus::Gauge* kv_blocks_used_ = nullptr;
  prometheus::Gauge* kv_blocks_total_ = nullptr;
  prometheus::Counter* prompt_tokens_ = nullptr;
  prometheus::Counter* tokens_ = nullptr;
  prometheus::Counter* steps_ = nullptr;
  prometheus::Counter* step_sequences_ = nullptr;
  prometheus::Counter* decode_past_tokens_ = nullptr;
  prometheus::Counter* decode_padded_tokens_ = nullptr;
  std::array<prometheus::Counter*, kGenerationRefusals.size()> refused_{};
  std::array<prometheus::Counter*, kGenerationEnds.size()> ended_{};
  prometheus::Histogram* time_to_first_token_ = nullptr;
  prometheus::Histogram* inter_token_ = nullptr;
};

}  // namespace ortserve::observability
