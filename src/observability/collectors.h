// SPDX-License-Identifier: Apache-2.0
// Collectors the metric registry reads at scrape time, off the request path:
// the process's own resources, and the model manager's index as
// ortserve_model_state. Internal to observability/ (metrics.cc).
#pragma once

#include <functional>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "observability/metrics.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace ortserve::observability {

// Reads process_* metrics from /proc/self at scrape time. Thread-safe
// (stateless).
class ProcessCollector : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override;
};

// Builds ortserve_model_state from the model manager's index at scrape time.
// Thread-safe.
class ModelStateCollector : public prometheus::Collectable {
 public:
  void Set(std::function<std::vector<ModelStateSample>()> source) {
    absl::MutexLock lock(&mu_);
    source_ = std::move(source);
  }
  std::vector<prometheus::MetricFamily> Collect() const override {
    prometheus::MetricFamily family;
    family.name = "ortserve_model_state";
    family.help = "1 for the state a model version is in (LOADING, READY, UNAVAILABLE), 0 for the others.";
    family.type = prometheus::MetricType::Gauge;
    std::function<std::vector<ModelStateSample>()> source;
    {
      absl::MutexLock lock(&mu_);
      source = source_;
    }
    if (source) {
      for (const ModelStateSample& sample : source()) {
        for (std::string_view state : kModelStates) {
          prometheus::ClientMetric metric;
          metric.label = {{"model", sample.model}, {"state", std::string(state)}, {"version", sample.version}};
          metric.gauge.value = state == sample.state ? 1 : 0;
          family.metric.push_back(std::move(metric));
        }
      }
    }
    return {std::move(family)};
  }

 private:
  mutable absl::Mutex mu_;
  std::function<std::vector<ModelStateSample>()> source_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ortserve::observability
