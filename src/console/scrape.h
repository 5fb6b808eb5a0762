// SPDX-License-Identifier: Apache-2.0
// Scrape: the numbers the console needs, read out of one collection of the
// server's Prometheus registry (the same series /metrics exports, named in
// docs/metrics.md), summed per model over versions and protocols. Pure
// functions over values: the console's sampler calls them once a second, the
// unit tests call them with hand-made metric families.
//
// Thread-safety: the functions are thread-safe; the structs are values.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "prometheus/metric_family.h"

namespace ortserve::console {

// A histogram's cumulative bucket counts; bounds are the bucket upper bounds,
// the last one +Inf. Empty until a series of it is seen.
struct Histogram {
  std::vector<double> bounds;
  std::vector<uint64_t> cumulative;
  // Adds `other` bucket by bucket (the same bounds; a histogram with other
  // bounds is ignored: the server uses one set of bounds per family).
  void Add(const Histogram& other);
  uint64_t count() const { return cumulative.empty() ? 0 : cumulative.back(); }
};

// `now` minus `before`, bucket by bucket (a bucket that went backwards, as
// after a counter reset, counts 0). Bounds are `now`'s.
Histogram Delta(const Histogram& now, const Histogram& before);

// The q-quantile (0 < q < 1) of a histogram's observations, interpolated
// linearly inside the bucket it falls in, as Prometheus' histogram_quantile
// does; an observation in the +Inf bucket counts at the largest finite bound.
// NaN when the histogram holds no observation.
double Quantile(const Histogram& histogram, double q);

enum SaeVerdict { kSerious = 0, kNotSerious = 1, kReview = 2 };

// One model's cumulative counters (and current gauges), over its versions.
struct ModelCounters {
  double requests = 0;  // ortserve_request_total, every outcome.
  double errors = 0;    // ... every outcome but success.
  Histogram latency;    // ortserve_request_duration_seconds
  Histogram queue;      // ortserve_queue_duration_seconds
  Histogram batch;      // ortserve_batch_size
  double pending = 0;   // ortserve_pending_requests (gauge)
  double fallbacks = 0;  // ortserve_fallback_total: answers this model gave for a failed primary.
  double cache_hits = 0;
  double cache_misses = 0;
  std::map<std::string, double> routed;        // version -> ortserve_route_total (every reason).
  std::map<std::string, double> load_seconds;  // version -> ortserve_model_load_duration_seconds.
  // Shadow traffic this model mirrored (ortserve_shadow_*), over its targets.
  std::string shadow_target;  // "model:version" of the last target seen; empty: none.
  double shadow_compared = 0;
  double shadow_dropped = 0;
  double shadow_failed = 0;  // shadow_failed + primary_failed.
  double shadow_rows = 0;
  double shadow_agreements = 0;
  std::array<double, 3> sae{};  // ortserve_sae_verdicts_total by SaeVerdict.
};

struct GpuSample {
  std::string gpu;
  double utilization = 0;  // 0..1
  double memory_used = 0;
  double memory_total = 0;
};

// Server-wide values; NaN when the series is absent.
struct ServerCounters {
  double cpu_seconds;
  double resident_bytes;
  double open_fds;
  double threads;
  double start_time_seconds;
  std::vector<GpuSample> gpus;
  std::string version;  // ortserve_build_info labels; empty when absent.
  std::string commit;
  std::string onnxruntime;
  ServerCounters();
};

struct Scrape {
  std::map<std::string, ModelCounters> models;
  ServerCounters server;
};

// Reads every family ortserve exports that the console shows. Series of the
// unresolved model (model="") and unknown families are skipped. At most
// `max_models` models are kept (the first by name); the rest are dropped.
Scrape ReadScrape(const std::vector<prometheus::MetricFamily>& families, size_t max_models);

}  // namespace ortserve::console
