// SPDX-License-Identifier: Apache-2.0
// AlertMetrics: the alert series, added to the server's Prometheus registry
// (observability::Metrics::registry()), one child per configured receiver:
//   ortserve_alerts_pending{receiver}                 gauge: rows waiting for delivery
//   ortserve_alerts_delivered_total{receiver}         counter: accepted by the receiver (2xx)
//   ortserve_alerts_failed_total{receiver}            counter: given up (kFailed)
//   ortserve_alerts_retries_total{receiver}           counter: failed attempts that will be retried
//   ortserve_alerts_delivery_delay_seconds{receiver}  histogram: verdict time to the 2xx
//   ortserve_alerts_enqueue_refused_total             counter: verdicts refused (outbox or intake full)
//
// Thread-safe: children are resolved at construction; recording is lock-free.
// An unknown receiver name records nothing.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
class Registry;
}  // namespace prometheus

namespace ortserve::alerts {

class AlertMetrics {
 public:
  static std::vector<double> DefaultDelayBuckets() {
    return {0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600};
  }
  AlertMetrics(prometheus::Registry& registry, const std::vector<std::string>& receivers,
               std::vector<double> delay_buckets = DefaultDelayBuckets());

  void SetPending(std::string_view receiver, double pending);
  void Delivered(std::string_view receiver, absl::Duration delay);
  void Retried(std::string_view receiver);
  void Failed(std::string_view receiver);
  void EnqueueRefused();

 private:
  struct Series {
    prometheus::Gauge* pending = nullptr;
    prometheus::Counter* delivered = nullptr;
    prometheus::Counter* failed = nullptr;
    prometheus::Counter* retries = nullptr;
    prometheus::Histogram* delay = nullptr;
  };
  const Series* Find(std::string_view receiver) const;
  std::map<std::string, Series, std::less<>> series_;
  prometheus::Counter* refused_ = nullptr;
};

}  // namespace ortserve::alerts
