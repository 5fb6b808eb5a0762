// SPDX-License-Identifier: Apache-2.0
// ModelVersion and the states, events and names the repository reports: the
// value types the manager, the loader, the lazy-loading policy and the
// request path share.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "backend/session.h"
#include "core/model_stats.h"
#include "repository/model_config.h"
#include "repository/model_provider.h"
#include "scheduler/scheduler.h"

namespace ortserve::pipeline {
class TextPipeline;
}  // namespace ortserve::pipeline

namespace ortserve::generation {
class GenerationModel;
}  // namespace ortserve::generation

namespace ortserve::observability {
class VersionMetrics;
}  // namespace ortserve::observability

namespace ortserve::repository {

// One loaded version of a model. Immutable once published, except through its
// scheduler (thread-safe) and stats (atomic).
struct ModelVersion {
  std::string name;
  int64_t version = 0;
  std::string version_string;  // "1"
  ModelConfig config;          // Completed (auto-complete applied).
  backend::ModelSignature signature;  // The model's own tensors (full dims).
  // Labels per output name, from output.label_filename (classification).
  std::map<std::string, std::vector<std::string>> labels;
  std::unique_ptr<ModelStats> stats;
  // Prometheus series of this version; lock-free to record. Not owned (the
  // Metrics outlives the manager); null when metrics are off.
  observability::VersionMetrics* metrics = nullptr;
  std::unique_ptr<scheduler::Scheduler> scheduler;
  // The sessions the scheduler runs on, the options they were created with,
  // and the fingerprint of the version folder they were read from: a
  // config-only change reuses them instead of reading the weights again.
  std::vector<std::shared_ptr<backend::Session>> sessions;
  std::vector<backend::SessionOptions> instance_options;  // Parallel to `sessions`.
  uint64_t files_fingerprint = 0;
  // Set when the config declares a text_pipeline: the model is then served
  // with the text signature (pipeline/text_pipeline.h).
  std::shared_ptr<const pipeline::TextPipeline> text_pipeline;
  // Set when the config declares `generation` (issue 22): a decoder with a
  // key/value cache that generates text (generation/generation_config.h).
  std::shared_ptr<const generation::GenerationModel> generation;
  // Bytes of the files in this version's folder (model.onnx plus any external
  // data files), counted at load: the estimate of the weight memory the
  // memory budget (ModelManager::Options::memory_budget_bytes) adds up. ORT
  // keeps roughly one copy of the initializers per session; arenas and
  // activations are not counted.
  uint64_t memory_bytes = 0;
  // When a request last used this version (Unix nanoseconds; set at load).
  // Lazy models unload after `lazy_loading.idle_unload_seconds` without use,
  // and the memory budget evicts the least recently used first. Request
  // paths store into it with Touch(); relaxed order is enough (a heuristic).
  mutable std::atomic<int64_t> last_used_ns{0};
  // Never moves back: a Touch that read the clock earlier but lands later
  // (say, a loader thread finishing a lazy load after the request that
  // waited for it has already used the model) keeps the later use.
  void Touch(absl::Time now) const {
    const int64_t ns = absl::ToUnixNanos(now);
    int64_t seen = last_used_ns.load(std::memory_order_relaxed);
    while (seen < ns && !last_used_ns.compare_exchange_weak(seen, ns, std::memory_order_relaxed)) {
    }
  }

  // Stops the scheduler, which joins its runner threads: a version must never
  // be destroyed on one of its own runner threads. Handles the manager gives
  // out guarantee that (see ModelManager, "Releasing").
  ~ModelVersion();
};


enum class ModelState {
  kLoading,      // A first load of this version is in progress (nothing served yet).
  kReady,        // Serving. `reason` may hold a failed reload that was rolled back.
  kUnavailable,  // The load failed (see `reason`) or the version was unloaded.
};
std::string_view ModelStateName(ModelState state);  // "LOADING", "READY", "UNAVAILABLE"

// How the set of served models follows the repository (Triton's
// --model-control-mode).
enum class ModelControlMode {
  kNone,      // Load everything at start; the repository is not watched; no load/unload API.
  kPoll,      // As kNone, then poll the repository and follow its changes.
  kExplicit,  // Load only the start-up models; then only the load/unload API changes the set.
};
std::string_view ModelControlModeName(ModelControlMode mode);  // "none", "poll", "explicit"
// Errors: InvalidArgument for anything but none, poll, explicit.
absl::StatusOr<ModelControlMode> ParseModelControlMode(std::string_view text);

// Lazy-loading events, for metrics (ModelManager::Options::lazy_event).
enum class LazyEvent {
  kLoadStarted,    // A request found a lazy model not loaded and started its load.
  kLoaded,         // That load finished and the model is READY.
  kLoadTimedOut,   // A request waited load_timeout_ms and was answered Unavailable
                   // (one event per request; the load goes on).
  kIdleUnloaded,   // Unused for idle_unload_seconds: unloaded, back to not loaded.
  kEvicted,        // Unloaded to bring the loaded models under the memory budget.
};
std::string_view LazyEventName(LazyEvent event);  // "load_started", "loaded", ...

// The Status payload key that carries a retry hint, in whole seconds as
// decimal text ("1"), on Unavailable errors a retry can cure (a lazy load in
// progress). Front ends turn it into HTTP's Retry-After header.
inline constexpr char kRetryAfterPayload[] = "ortserve/retry-after";

// Index() reason of a lazy model that is known but not loaded.
inline constexpr char kLazyNotLoadedReason[] = "not loaded (lazy: loads on its first request)";

// Index() reason of a model folder that kExplicit mode never loaded (listed
// by name only, no version, UNAVAILABLE), as Triton's repository index says.
inline constexpr char kNeverLoadedReason[] = "unloaded";

struct ModelIndexEntry {
  std::string name;
  std::string version;  // Empty when the model failed before any version was known.
  ModelState state = ModelState::kUnavailable;
  std::string reason;
};

}  // namespace ortserve::repository
