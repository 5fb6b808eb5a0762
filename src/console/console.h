// SPDX-License-Identifier: Apache-2.0
// Console: the live web console's data (docs/console.md). Once a second a
// sampler thread reads the server's metric registry (the series /metrics
// exports), the model repository and a few server values through
// ConsoleSources, turns the counters into per-second values (requests/s,
// error rate, p50/p99 latency and queue time, pending requests, CPU, memory,
// connections, SAE verdicts per minute) and keeps the last `history` seconds
// of them in a ring: bounded memory, whatever the traffic. The page's JSON is
// built from that state at most once per sample and shared by every page
// that asks (Snapshot), so N open pages cost one build a second, not N.
//
// No request path touches the console: the sampler reads what the metrics
// already count. The static page (HTML, CSS, JavaScript) is compiled into
// the binary (console/assets.h).
//
// Thread-safe. Threads owned: one sampler thread, from StartSampling on
// (tests call SampleNow instead).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "console/scrape.h"
#include "core/clock.h"
#include "prometheus/metric_family.h"

namespace ortserve::console {

// One version of a model as the repository reports it.
struct VersionInfo {
  std::string version;  // Empty for a model known by name only.
  std::string state;    // "LOADING", "READY", "UNAVAILABLE"
  std::string reason;   // Why it is not READY, or a rolled-back reload's error.
  int instances = 0;    // Sessions serving it (0 unless READY).
  std::string devices;  // "cpu", "gpu0", "cpu,gpu1"; empty unless READY.
  uint64_t memory_bytes = 0;  // Weight files' bytes (0 unless READY).
};

// A model's routing, from its READY config (docs/routing.md).
struct RoutingInfo {
  struct Split {
    std::string version;
    double weight = 0;
  };
  std::vector<Split> split;    // Empty: the default version takes every request.
  std::string shadow_target;   // "model" or "model:version"; empty: no shadow.
  double shadow_fraction = 0;
  std::string fallback;        // "model" or "model:version"; empty: none.
  bool cache = false;          // response_cache enabled.
};

struct ModelInfo {
  std::string name;
  std::vector<VersionInfo> versions;
  std::string last_error;  // The last failed load; empty when the last load succeeded.
  int max_batch_size = 0;
  RoutingInfo routing;
};

// What the server says of itself besides its metrics.
struct ServerInfo {
  bool ready = false;
  int64_t open_connections = -1;  // HTTP connections open now; -1: unknown.
  std::string control_mode;       // "none", "poll", "explicit"
  std::string sae_model;          // The model behind POST /api/v1/sae/analyze; empty: off.
};

// Where the console reads the server. Called on the sampler thread only
// (once per sample), never on a request path.
class ConsoleSources {
 public:
  virtual ~ConsoleSources() = default;
  // Every metric family the server exports (what a scrape of /metrics reads).
  virtual std::vector<prometheus::MetricFamily> CollectMetrics() = 0;
  // Every model the repository knows, sorted by name.
  virtual std::vector<ModelInfo> Models() = 0;
  virtual ServerInfo Server() = 0;
};

class Console {
 public:
  struct Options {
    ConsoleSources* sources = nullptr;  // Not owned; outlives the console.
    const Clock* clock = Clock::Real();
    absl::Duration interval = absl::Seconds(1);
    size_t history = 300;  // Points kept per series (5 minutes at 1 s).
    // Seconds over which shares are counted (the A/B share each version
    // got, cache hit ratio, shadow agreement, SAE shares and verdicts/min).
    size_t window = 60;
    // Models with series; past it, models are listed without plots.
    size_t max_models = 128;
  };

  // Errors: InvalidArgument without sources, or with a zero interval,
  // history or window.
  static absl::StatusOr<std::unique_ptr<Console>> Create(Options options);
  // Stops and joins the sampler thread.
  ~Console();

  // Takes a sample now, then one every interval on the sampler thread.
  // Call once, when the sources are ready to be read.
  void StartSampling();

  // Takes one sample now (what the sampler thread does each interval).
  // Calls the sources without holding the console's lock; not to be called
  // concurrently with itself (nor after StartSampling).
  void SampleNow();

  // The page's JSON (docs/console.md#the-snapshot): `since` is the last
  // sample number the page holds (-1: none). When it holds the one before
  // the latest, only the latest point of each series is sent; when it holds
  // the latest, only {"seq":N,"unchanged":true}; otherwise every point. The
  // documents are built at most once per sample and shared.
  std::shared_ptr<const std::string> Snapshot(int64_t since);

  // Samples taken so far (the latest sample's number is samples() - 1).
  int64_t samples() const;

  // The "caller" object the snapshot endpoint sends beside the snapshot:
  // who the page speaks for and which operator actions it may offer
  // (`control_models`: the model patterns it may load and unload, "*" for
  // all; empty: none).
  static std::string CallerJson(std::string_view id, std::string_view kind, bool can_set_log_level,
                                const std::vector<std::string>& control_models);

 private:
  explicit Console(Options options);
  struct ModelSeries;
  struct State;
  void Run();
  std::string BuildJson(bool full, bool unchanged) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  mutable absl::Mutex mu_;
  std::unique_ptr<State> state_ ABSL_GUARDED_BY(mu_);
  // The documents of the latest sample, built on first request.
  int64_t cached_seq_ ABSL_GUARDED_BY(mu_) = -1;
  std::shared_ptr<const std::string> cached_full_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const std::string> cached_delta_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const std::string> cached_unchanged_ ABSL_GUARDED_BY(mu_);
  absl::Notification stop_;
  std::thread sampler_;
};

}  // namespace ortserve::console
