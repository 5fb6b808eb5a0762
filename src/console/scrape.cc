// SPDX-License-Identifier: Apache-2.0
#include "console/scrape.h"

#include <cmath>
#include <limits>
#include <string_view>

namespace ortserve::console {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string_view Label(const prometheus::ClientMetric& metric, std::string_view name) {
  for (const auto& label : metric.label) {
    if (label.name == name) return label.value;
  }
  return {};
}

Histogram FromClient(const prometheus::ClientMetric::Histogram& h) {
  Histogram out;
  out.bounds.reserve(h.bucket.size());
  out.cumulative.reserve(h.bucket.size());
  for (const auto& bucket : h.bucket) {
    out.bounds.push_back(bucket.upper_bound);
    out.cumulative.push_back(bucket.cumulative_count);
  }
  return out;
}

double Value(const prometheus::MetricFamily& family, const prometheus::ClientMetric& metric) {
  switch (family.type) {
    case prometheus::MetricType::Counter: return metric.counter.value;
    case prometheus::MetricType::Gauge: return metric.gauge.value;
    case prometheus::MetricType::Untyped: return metric.untyped.value;
    default: return 0;
  }
}

}  // namespace

void Histogram::Add(const Histogram& other) {
  if (other.bounds.empty()) return;
  if (bounds.empty()) {
    *this = other;
    return;
  }
  if (other.bounds != bounds) return;
  for (size_t i = 0; i < cumulative.size(); ++i) cumulative[i] += other.cumulative[i];
}

Histogram Delta(const Histogram& now, const Histogram& before) {
  Histogram out = now;
  if (before.bounds != now.bounds) return out;
  for (size_t i = 0; i < out.cumulative.size(); ++i) {
    out.cumulative[i] = now.cumulative[i] >= before.cumulative[i] ? now.cumulative[i] - before.cumulative[i] : 0;
  }
  // Cumulative counts never decrease along the buckets; a reset in one
  // bucket alone must not make them.
  for (size_t i = 1; i < out.cumulative.size(); ++i) {
    if (out.cumulative[i] < out.cumulative[i - 1]) out.cumulative[i] = out.cumulative[i - 1];
  }
  return out;
}

double Quantile(const Histogram& h, double q) {
  const uint64_t total = h.count();
  if (total == 0 || h.bounds.empty()) return kNaN;
  const double rank = q * static_cast<double>(total);
  double lower = 0;
  uint64_t below = 0;
  for (size_t i = 0; i < h.bounds.size(); ++i) {
    const uint64_t upto = h.cumulative[i];
    if (static_cast<double>(upto) >= rank && upto > below) {
      if (std::isinf(h.bounds[i])) return lower;  // Past the largest finite bound.
      const double inside = static_cast<double>(upto - below);
      return lower + (h.bounds[i] - lower) * (rank - static_cast<double>(below)) / inside;
    }
    below = upto;
    if (!std::isinf(h.bounds[i])) lower = h.bounds[i];
  }
  return lower;
}

ServerCounters::ServerCounters()
    : cpu_seconds(kNaN), resident_bytes(kNaN), open_fds(kNaN), threads(kNaN), start_time_seconds(kNaN) {}

Scrape ReadScrape(const std::vector<prometheus::MetricFamily>& families, size_t max_models) {
  Scrape scrape;
  auto model_of = [&](const prometheus::ClientMetric& metric) -> ModelCounters* {
    const std::string_view model = Label(metric, "model");
    if (model.empty()) return nullptr;
    auto it = scrape.models.find(std::string(model));
    if (it == scrape.models.end()) it = scrape.models.emplace(std::string(model), ModelCounters{}).first;
    return &it->second;
  };
  std::map<std::string, GpuSample> gpus;
  for (const auto& family : families) {
    const std::string& name = family.name;
    for (const auto& metric : family.metric) {
      if (name == "ortserve_request_total") {
        if (ModelCounters* m = model_of(metric)) {
          m->requests += metric.counter.value;
          if (Label(metric, "outcome") != "success") m->errors += metric.counter.value;
        }
      } else if (name == "ortserve_request_duration_seconds") {
        if (ModelCounters* m = model_of(metric)) m->latency.Add(FromClient(metric.histogram));
      } else if (name == "ortserve_queue_duration_seconds") {
        if (ModelCounters* m = model_of(metric)) m->queue.Add(FromClient(metric.histogram));
      } else if (name == "ortserve_batch_size") {
        if (ModelCounters* m = model_of(metric)) m->batch.Add(FromClient(metric.histogram));
      } else if (name == "ortserve_pending_requests") {
        if (ModelCounters* m = model_of(metric)) m->pending += metric.gauge.value;
      } else if (name == "ortserve_fallback_total") {
        if (ModelCounters* m = model_of(metric)) m->fallbacks += metric.counter.value;
      } else if (name == "ortserve_cache_lookups_total") {
        if (ModelCounters* m = model_of(metric)) {
          (Label(metric, "result") == "hit" ? m->cache_hits : m->cache_misses) += metric.counter.value;
        }
      } else if (name == "ortserve_route_total") {
        if (ModelCounters* m = model_of(metric)) m->routed[std::string(Label(metric, "version"))] += metric.counter.value;
      } else if (name == "ortserve_model_load_duration_seconds") {
        if (ModelCounters* m = model_of(metric)) {
          m->load_seconds[std::string(Label(metric, "version"))] = metric.gauge.value;
        }
      } else if (name == "ortserve_shadow_requests_total" || name == "ortserve_shadow_label_rows_total" ||
                 name == "ortserve_shadow_label_agreements_total") {
        ModelCounters* m = model_of(metric);
        if (m == nullptr) continue;
        m->shadow_target = std::string(Label(metric, "shadow_model"));
        const std::string_view version = Label(metric, "shadow_version");
        if (!version.empty()) m->shadow_target.append(":").append(version);
        const double v = metric.counter.value;
        if (name == "ortserve_shadow_label_rows_total") {
          m->shadow_rows += v;
        } else if (name == "ortserve_shadow_label_agreements_total") {
          m->shadow_agreements += v;
        } else {
          const std::string_view result = Label(metric, "result");
          if (result == "compared") {
            m->shadow_compared += v;
          } else if (result == "dropped") {
            m->shadow_dropped += v;
          } else {
            m->shadow_failed += v;
          }
        }
      } else if (name == "ortserve_sae_verdicts_total") {
        if (ModelCounters* m = model_of(metric)) {
          const std::string_view verdict = Label(metric, "verdict");
          const int index = verdict == "serious" ? kSerious : verdict == "review" ? kReview : kNotSerious;
          m->sae[index] += metric.counter.value;
        }
      } else if (name == "process_cpu_seconds_total") {
        scrape.server.cpu_seconds = Value(family, metric);
      } else if (name == "process_resident_memory_bytes") {
        scrape.server.resident_bytes = Value(family, metric);
      } else if (name == "process_open_fds") {
        scrape.server.open_fds = Value(family, metric);
      } else if (name == "process_threads") {
        scrape.server.threads = Value(family, metric);
      } else if (name == "process_start_time_seconds") {
        scrape.server.start_time_seconds = Value(family, metric);
      } else if (name == "ortserve_build_info") {
        scrape.server.version = std::string(Label(metric, "version"));
        scrape.server.commit = std::string(Label(metric, "commit"));
        scrape.server.onnxruntime = std::string(Label(metric, "onnxruntime"));
      } else if (name == "ortserve_gpu_utilization_ratio" || name == "ortserve_gpu_memory_used_bytes" ||
                 name == "ortserve_gpu_memory_total_bytes") {
        const std::string gpu(Label(metric, "gpu"));
        GpuSample& sample = gpus[gpu];
        sample.gpu = gpu;
        const double v = Value(family, metric);
        if (name == "ortserve_gpu_utilization_ratio") {
          sample.utilization = v;
        } else if (name == "ortserve_gpu_memory_used_bytes") {
          sample.memory_used = v;
        } else {
          sample.memory_total = v;
        }
      }
    }
  }
  for (auto& [_, sample] : gpus) scrape.server.gpus.push_back(std::move(sample));
  if (scrape.models.size() > max_models) {
    auto it = scrape.models.begin();
    std::advance(it, static_cast<std::ptrdiff_t>(max_models));
    scrape.models.erase(it, scrape.models.end());
  }
  return scrape;
}

}  // namespace ortserve::console
