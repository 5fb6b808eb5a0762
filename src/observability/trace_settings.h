// SPDX-License-Identifier: Apache-2.0
// TraceSettings: Triton's trace-setting extension (GET/POST
// /v2[/models/{m}]/trace/setting, gRPC TraceSetting) mapped onto ortserve's
// OTLP tracing. Which new root traces are sampled (a request with a
// `traceparent` follows its parent's flag, whatever these say):
//   trace_level   ["OFF"] or ["TIMESTAMPS"]: sample or not (TENSORS is refused:
//                 spans carry timings and attributes, not tensor data);
//   trace_rate    "N": one request in N on average (the sampling ratio 1/N);
//   trace_count   "N": stop after N more sampled traces; "-1": no limit;
//   log_frequency accepted and reported, no effect (spans stream to the collector);
//   trace_file    only "" (spans go to --otlp-endpoint, never to a file);
//   trace_mode    only "opentelemetry".
// A model's settings override the global ones one by one; clearing a
// model's setting makes it follow the global one again, clearing a global
// setting restores its start-up value.
//
// Thread-safe. SampleRoot, on every request, reads atomics only unless some
// model has settings of its own.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace ortserve::observability {

class TraceSettings {
 public:
  // A setting's values as the protocol carries them (trace_level is a list;
  // the others hold one value).
  using Values = std::vector<std::string>;
  using Map = std::map<std::string, Values>;
  // Changes: a setting to its new values, or nullopt (REST null, gRPC no
  // value) to clear it.
  using Updates = std::map<std::string, std::optional<Values>>;

  // `ratio`: the start-up sampling ratio (--trace-sampling-ratio).
  explicit TraceSettings(double ratio);

  // Whether a new root trace is sampled: `uniform` draws from [0, 1) (called
  // only when sampling is on); `model` empty when not known (then the global
  // settings decide).
  bool SampleRoot(std::string_view model, double (*uniform)());
  // Whether any model has settings of its own (a root trace is then decided
  // again once its model is known).
  bool HasModelSettings() const { return any_model_.load(std::memory_order_acquire); }

  // The settings in effect for `model` (empty: the global ones).
  Map Get(std::string_view model) const;
  // Applies `updates` to the model's (or, `model` empty, the global)
  // settings and returns the result. All or nothing. Errors:
  // InvalidArgument naming the setting and value refused.
  absl::StatusOr<Map> Update(std::string_view model, const Updates& updates);

 private:
  struct Fields {
    std::optional<bool> on;
    std::optional<int64_t> rate;       // >= 1.
    std::optional<int64_t> count;      // -1: no limit.
    std::optional<int64_t> log_frequency;
  };
  static absl::Status Apply(const Updates& updates, Fields* fields);
  Map Render(const Fields& fields) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Publish() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Takes one from `count` unless it is -1; false when it is 0.
  static bool TakeOne(std::atomic<int64_t>& count);

  const double start_ratio_;
  mutable absl::Mutex mu_;
  Fields global_ ABSL_GUARDED_BY(mu_);
  struct ModelEntry {
    Fields fields;
    std::atomic<int64_t> count{-1};  // Its own trace_count, when set.
  };
  std::map<std::string, ModelEntry, std::less<>> models_ ABSL_GUARDED_BY(mu_);
  // The global settings in effect, for the lock-free path.
  std::atomic<bool> on_{false};
  std::atomic<double> ratio_{0.0};
  std::atomic<int64_t> count_{-1};
  std::atomic<bool> any_model_{false};
};

}  // namespace ortserve::observability
