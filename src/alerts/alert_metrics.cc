// SPDX-License-Identifier: Apache-2.0
#include "alerts/alert_metrics.h"

#include <prometheus/counter.h>

#include <algorithm>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace ortserve::alerts {

AlertMetrics::AlertMetrics(prometheus::Registry& registry, const std::vector<std::string>& receivers,
                           std::vector<double> delay_buckets) {
  auto& pending = prometheus::BuildGauge()
                      .Name("ortserve_alerts_pending")
                      .Help("Alerts in the outbox waiting for delivery to a receiver")
                      .Register(registry);
  auto& delivered = prometheus::BuildCounter()
                        .Name("ortserve_alerts_delivered_total")
                        .Help("Alerts a receiver accepted (2xx)")
                        .Register(registry);
  auto& failed = prometheus::BuildCounter()
                     .Name("ortserve_alerts_failed_total")
                     .Help("Alerts given up after their attempts or age ran out (replayable)")
                     .Register(registry);
  auto& retries = prometheus::BuildCounter()
                      .Name("ortserve_alerts_retries_total")
                      .Help("Failed delivery attempts that will be retried")
                      .Register(registry);
  auto& delay = prometheus::BuildHistogram()
                    .Name("ortserve_alerts_delivery_delay_seconds")
                    .Help("Time from the serious verdict to the receiver's 2xx")
                    .Register(registry);
  auto& refused = prometheus::BuildCounter()
                      .Name("ortserve_alerts_enqueue_refused_total")
                      .Help("Serious verdicts whose alert could not be queued (outbox or intake full)")
                      .Register(registry);
  refused_ = &refused.Add({});
  for (const std::string& receiver : receivers) {
    const std::map<std::string, std::string> labels = {{"receiver", receiver}};
    Series s;
    s.pending = &pending.Add(labels);
    s.delivered = &delivered.Add(labels);
    s.failed = &failed.Add(labels);
    s.retries = &retries.Add(labels);
    s.delay = &delay.Add(labels, prometheus::Histogram::BucketBoundaries(delay_buckets));
    series_.emplace(receiver, s);
  }
}

const AlertMetrics::Series* AlertMetrics::Find(std::string_view receiver) const {
  auto it = series_.find(receiver);
  return it == series_.end() ? nullptr : &it->second;
}

void AlertMetrics::SetPending(std::string_view receiver, double pending) {
  if (const Series* s = Find(receiver)) s->pending->Set(pending);
}
void AlertMetrics::Delivered(std::string_view receiver, absl::Duration delay) {
  if (const Series* s = Find(receiver)) {
    s->delivered->Increment();
    s->delay->Observe(std::max(0.0, absl::ToDoubleSeconds(delay)));
  }
}
void AlertMetrics::Retried(std::string_view receiver) {
  if (const Series* s = Find(receiver)) s->retries->Increment();
}
void AlertMetrics::Failed(std::string_view receiver) {
  if (const Series* s = Find(receiver)) s->failed->Increment();
}
void AlertMetrics::EnqueueRefused() { refused_->Increment(); }

}  // namespace ortserve::alerts
