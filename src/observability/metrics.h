// SPDX-License-Identifier: Apache-2.0
// Metrics: the Prometheus metrics ortserve exports (names and meaning in
// docs/metrics.md), with per-model-version label children resolved once at
// model load so that recording on the request path takes no lock.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "observability/generation_metrics.h"

namespace prometheus {
struct MetricFamily;
class Counter;
class Gauge;
class Histogram;
class Registry;
template <typename T>
class Family;
}  // namespace prometheus

namespace ortserve::observability {

// The front end a request came through (the `protocol` label).
enum class Protocol {
  kHttp,  // KServe v2 REST.
  kGrpc,  // KServe v2 gRPC.
};
inline constexpr size_t kProtocolCount = 2;
std::string_view ProtocolName(Protocol protocol);  // "http", "grpc"

// How a request ended (the `outcome` label).
enum class Outcome {
  kSuccess,      // Answered with outputs.
  kClientError,  // The request was wrong: bad input, unknown model or version.
  kRejected,     // Not served now: queue full, model unavailable, server draining.
  kTimeout,      // Its deadline passed before it ran.
  kCancelled,    // Its client went away.
  kServerError,  // The model or the server failed.
};
inline constexpr size_t kOutcomeCount = 6;
std::string_view OutcomeName(Outcome outcome);  // "success", "client_error", ...
Outcome OutcomeFor(absl::StatusCode code);
Outcome OutcomeForHttpStatus(unsigned http_status);

// The lifecycle states a model version's `ortserve_model_state` gauge shows.
inline constexpr std::array<std::string_view, 3> kModelStates = {"LOADING", "READY", "UNAVAILABLE"};

// Histogram bucket upper bounds; all configurable by flag.
struct MetricsOptions {
  // Request, queue, tokenization and compute durations, in seconds.
  std::vector<double> latency_buckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                         0.1,    0.25,  0.5,    1,     2.5,  5,     10};
  std::vector<double> batch_size_buckets = {1, 2, 4, 8, 16, 32, 64, 128};
  std::vector<double> response_bytes_buckets = {256,    1024,    4096,     16384,    65536,
                                                262144, 1048576, 4194304, 16777216, 67108864};
  // process_* metrics from /proc/self.
  bool process_metrics = true;
  // ortserve_gpu_* metrics from the NVIDIA driver's NVML library, loaded at
  // run time from `nvml_library` (see GpuCollector). Without the library, or
  // when NVML fails to start, there are no GPU series and one info line in
  // the log says why. Off by default so that tests making many Metrics do
  // not start NVML each time; the server turns it on.
  bool gpu_metrics = false;
  std::string nvml_library = "libnvidia-ml.so.1";
  // Triton's metric names besides ortserve's own (--triton-metrics,
  // docs/triton.md "Metric names"): the nv_inference_* counters and gauge per
  // model version, fed where ortserve's own series are, and (with
  // gpu_metrics and a GPU) the nv_gpu_* gauges. Off: none of them exist and
  // recording skips them at the cost of one pointer test.
  bool triton_metrics = false;
  // The labels of `ortserve_build_info` (a gauge that is always 1), e.g.
  // {{"version", "0.1.0"}, {"commit", "..."}}; empty: no such series.
  std::vector<std::pair<std::string, std::string>> build_info;
};

// Parses a comma-separated list of strictly increasing finite numbers
// ("0.001,0.01,0.1"). Errors: InvalidArgument naming `flag` and the bad value.
absl::StatusOr<std::vector<double>> ParseBuckets(std::string_view flag, std::string_view text);

// Whether a device ("cpu", "gpu0", ...) is running a model:
// ortserve_device_busy_seconds_total counts the time at least one model run,
// of any model, was in progress on it (added when the runs in progress end).
// The device's idle gaps are the wall time less that; under load that keeps
// every queue full they are what the scheduler leaves between runs. Made by
// Metrics::ForDevice. Thread-safe: a short lock at each run's start and end,
// never held across a run.
class DeviceActivity {
 public:
  void RunStarted(absl::Time now);
  void RunFinished(absl::Time now);

 private:
  friend class Metrics;
  absl::Mutex mu_;
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time busy_since_ ABSL_GUARDED_BY(mu_);
  // Clocks read on different threads may disagree by a little; a busy span
  // never starts before the last one ended, so no time is counted twice.
  absl::Time last_end_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  prometheus::Counter* busy_seconds_ = nullptr;
};

// The series of one instance (runner thread) of a model version: its
// execution counter and its device's activity, resolved once by
// VersionMetrics::ForInstance when the runner starts. A default-constructed
// one records nothing. Thread-safe; RecordExecution is lock-free.
class InstanceMetrics {
 public:
  InstanceMetrics() = default;
  // One model run of this instance (counted where ortserve_execution_total is).
  void RecordExecution();
  // The instance's model run started or ended (failed runs too).
  void RunStarted(absl::Time now) {
    if (device_ != nullptr) device_->RunStarted(now);
  }
  void RunFinished(absl::Time now) {
    if (device_ != nullptr) device_->RunFinished(now);
  }

 private:
  friend class VersionMetrics;
  prometheus::Counter* executions_ = nullptr;
  DeviceActivity* device_ = nullptr;
};

// The metrics of one model version: pointers to its label children, resolved
// once by Metrics::ForVersion. Every method is lock-free (atomic adds) and
// thread-safe; the object lives as long as the Metrics that made it.
class VersionMetrics {
 public:
  const std::string& model() const { return model_; }
  const std::string& version() const { return version_; }

  // A request answered by a front end: counts it by protocol and outcome and
  // observes its end-to-end latency (arrival to response written) and, on
  // success, its response size.
  void RecordRequest(Protocol protocol, Outcome outcome, absl::Duration latency, size_t response_bytes);

  // Requests admitted to the scheduler and not yet answered (queued +
  // executing): the autoscaling signal.
  void RequestAdmitted();
  void RequestAnswered();

  // Scheduler: one request's wait from enqueue to its batch being cut.
  void RecordQueue(absl::Duration wait);
  // Scheduler: one model run of `batch_rows` rows serving `requests` requests,
  // with its phases (each request is charged the batch's phase durations, as
  // Triton's statistics do).
  void RecordExecution(size_t batch_rows, size_t requests, absl::Duration input, absl::Duration infer,
                       absl::Duration output);
  void BatchStarted();
  void BatchFinished();
  // Text pipelines: time spent turning text into token ids for one request.
  void RecordTokenization(absl::Duration duration);

  // Model manager: how long the version's last load took.
  void SetLoadDuration(absl::Duration duration);

  // Traffic (router): a response-cache lookup; a request routed to this
  // version by `reason` (RouteReason names: explicit, override, sticky,
  // split, default); a request this version answered for a failed primary.
  void RecordCacheLookup(bool hit);
  void RecordRoute(size_t reason_index);
  void RecordFallback();

  // The series of instance `instance` (the scheduler's runner index, the
  // instance_group position: label "0", "1", ...) running on `device` ("cpu",
  // "gpu0", ...). Adds the label child on first call (prometheus' family
  // lock): call it when a runner starts, never per run. No-op series for
  // Unresolved().
  InstanceMetrics ForInstance(size_t instance, std::string_view device = "cpu");

  // Scheduler, under a latency target: the batch size and queue delay it now
  // uses. The series appear on the first call (the family lock); the
  // scheduler calls it once per batch.
  void SetBatchLimits(int64_t batch_size, absl::Duration queue_delay);

 private:
  friend class Metrics;
  VersionMetrics() = default;

  std::string model_;
  std::string version_;
  std::array<std::array<prometheus::Counter*, kOutcomeCount>, kProtocolCount> requests_{};
  std::array<prometheus::Histogram*, kProtocolCount> request_duration_{};
  std::array<prometheus::Histogram*, kProtocolCount> response_bytes_{};
  prometheus::Histogram* queue_duration_ = nullptr;
  prometheus::Histogram* compute_input_ = nullptr;
  prometheus::Histogram* compute_infer_ = nullptr;
  prometheus::Histogram* compute_output_ = nullptr;
  prometheus::Histogram* tokenization_ = nullptr;
  prometheus::Histogram* batch_size_ = nullptr;
  prometheus::Counter* executions_ = nullptr;
  prometheus::Gauge* pending_ = nullptr;
  prometheus::Gauge* inflight_batches_ = nullptr;
  prometheus::Gauge* load_duration_ = nullptr;
  prometheus::Counter* cache_hits_ = nullptr;
  prometheus::Counter* cache_misses_ = nullptr;
  std::array<prometheus::Counter*, 5> routes_{};
  prometheus::Counter* fallbacks_ = nullptr;
  prometheus::Family<prometheus::Counter>* instance_executions_ = nullptr;
  prometheus::Family<prometheus::Gauge>* batch_size_limit_ = nullptr;
  prometheus::Family<prometheus::Gauge>* queue_delay_limit_ = nullptr;
  // Their children, added by the first SetBatchLimits (one scheduler per
  // version calls it, under its own lock).
  std::atomic<prometheus::Gauge*> batch_size_gauge_{nullptr};
  std::atomic<prometheus::Gauge*> queue_delay_gauge_{nullptr};
  // Triton's names (MetricsOptions::triton_metrics), in microseconds; null
  // when off and for Unresolved().
  struct TritonSeries {
    prometheus::Counter* success = nullptr;     // nv_inference_request_success
    prometheus::Counter* failure = nullptr;     // nv_inference_request_failure
    prometheus::Counter* inferences = nullptr;  // nv_inference_count (rows)
    prometheus::Counter* executions = nullptr;  // nv_inference_exec_count
    prometheus::Counter* request_us = nullptr;
    prometheus::Counter* queue_us = nullptr;
    prometheus::Counter* input_us = nullptr;
    prometheus::Counter* infer_us = nullptr;
    prometheus::Counter* output_us = nullptr;
    prometheus::Gauge* pending = nullptr;  // nv_inference_pending_request_count
  };
  std::unique_ptr<TritonSeries> triton_;
  class Metrics* owner_ = nullptr;
};

// The route reasons, in RecordRoute's index order.
inline constexpr std::array<std::string_view, 5> kRouteReasons = {"explicit", "override", "sticky", "split",
                                                                   "default"};

// Shadow traffic of one (primary model, shadow target) pair: made on demand
// by Metrics::ForShadow (under a lock, on the sampled shadow path only);
// recording is lock-free.
class ShadowMetrics {
 public:
  enum class Result { kCompared, kDropped, kShadowFailed, kPrimaryFailed };
  void Record(Result result);
  // One comparison: rows whose label (argmax or BYTES value) was compared,
  // how many agreed, and the largest absolute difference over numeric outputs.
  void RecordComparison(int64_t label_rows, int64_t label_agreements, double max_abs_difference);

 private:
  friend class Metrics;
  std::array<prometheus::Counter*, 4> results_{};
  prometheus::Counter* label_rows_ = nullptr;
  prometheus::Counter* label_agreements_ = nullptr;
  prometheus::Histogram* max_abs_difference_ = nullptr;
};

// One row of `ortserve_model_state`: a model version and its state (one of
// kModelStates).
struct ModelStateSample {
  std::string model;
  std::string version;
  std::string_view state;
};

// The server's metric registry. ForVersion takes a lock (it adds label
// children); call it at model load, never per request. Thread-safe.
class Metrics {
 public:
  // Errors: InvalidArgument for empty or non-increasing buckets.
  static absl::StatusOr<std::unique_ptr<Metrics>> Create(MetricsOptions options);
  ~Metrics();

  // The children for (model, version), created on first call; the same
  // pointer afterwards (a reloaded version keeps its counters). Valid for the
  // life of this object.
  VersionMetrics* ForVersion(std::string_view model, std::string_view version);
  // Requests that never resolved to a model version (unknown model, bad
  // version): labelled model="" version="", so client typos cannot grow the
  // series count.
  VersionMetrics* Unresolved() { return unresolved_; }

  // Where `ortserve_model_state` comes from: called at each scrape (off the
  // request path), so the gauge always matches the manager's index. Set once,
  // before the metrics are served.
  void SetModelStateSource(std::function<std::vector<ModelStateSample>()> source);

  // The shadow series for `model` mirrored to `shadow_model`/`shadow_version`.
  // Takes a lock; the same pointer for the same labels, valid for the life
  // of this object.
  ShadowMetrics* ForShadow(std::string_view model, std::string_view shadow_model, std::string_view shadow_version);

  // A lazy-loading event of `model` ("load_started", "loaded",
  // "load_timed_out", "idle_unloaded", "evicted"). Takes a lock: model
  // lifecycle events only.
  void RecordLazyEvent(std::string_view model, std::string_view event);

  // The continuous batcher's series of a generative model version
  // (generation_metrics.h), created on first call; the same pointer
  // afterwards (a reloaded version keeps its counters). Takes a lock: call
  // it at model load. Valid for the life of this object.
  GenerationMetrics* ForGeneration(std::string_view model, std::string_view version);

  // The activity of `device` ("cpu", "gpu0", ...), shared by every model
  // running there. Takes a lock: call it when a runner starts. Valid for the
  // life of this object.
  DeviceActivity* ForDevice(std::string_view device);

  // The response cache's totals (set after each insert).
  void SetCacheUsage(size_t bytes, size_t entries, uint64_t evictions);

  // Server-wide signals.
  void SetReady(bool ready);
  // Admission (admission/admission.h): a refusal by `reason` (one of a fixed
  // set of literals; takes the family's lock, on the refusal path only), and
  // a change in the permits held (lock-free).
  void RecordAdmissionRefusal(std::string_view reason);
  void AddAdmissionInflight(int64_t requests, int64_t bytes);
  void SpanExported(size_t count);
  void SpanDropped(size_t count);

  // The Prometheus text exposition of every metric (what /metrics serves).
  std::string Serialize() const;
  // The same metrics as values (the live console reads them once a second).
  std::vector<prometheus::MetricFamily> Collect() const;
  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

 private:
  friend class MetricsServer;
  struct Families;
  explicit Metrics(MetricsOptions options);

  const MetricsOptions options_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<Families> families_;
  std::shared_ptr<class ProcessCollector> process_;
  std::shared_ptr<class ModelStateCollector> model_states_;
  std::shared_ptr<class GpuCollector> gpu_;  // Null without NVML.
  absl::Mutex mu_;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<VersionMetrics>> versions_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::unique_ptr<ShadowMetrics>, std::less<>> shadows_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::unique_ptr<DeviceActivity>, std::less<>> devices_ ABSL_GUARDED_BY(mu_);
  VersionMetrics* unresolved_ = nullptr;
  // The generation families, made with the first ForGeneration
  // (generation_metrics.cc), and their children.
  struct GenerationFamilies;
  std::shared_ptr<GenerationFamilies> generation_families_ ABSL_GUARDED_BY(mu_);
  std::map<std::pair<std::string, std::string>, std::unique_ptr<GenerationMetrics>> generations_ ABSL_GUARDED_BY(mu_);
};

// Serves a Metrics registry's exposition at http://ADDRESS:PORT/metrics
// (prometheus-cpp's civetweb server, on its own threads, off the request
// path). Thread-safe.
class MetricsServer {
 public:
  // `port` 0 picks a free port. Errors: Unavailable when it cannot bind.
  // With `authorize` set, /metrics needs HTTP Basic authentication, and a
  // scrape is answered only when authorize(user, password) is true (401
  // otherwise); it runs on the server's own threads.
  using BasicAuth = std::function<bool(const std::string& user, const std::string& password)>;
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(const std::string& address, int port,
                                                              Metrics* metrics, BasicAuth authorize = {});
  ~MetricsServer();
  uint16_t port() const { return port_; }

 private:
  MetricsServer() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  uint16_t port_ = 0;
};

}  // namespace ortserve::observability
