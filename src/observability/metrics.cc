// SPDX-License-Identifier: Apache-2.0
#include "observability/metrics.h"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cmath>
#include <exception>
#include <fstream>
#include <sstream>

#include "core/strings.h"
#include "observability/collectors.h"
#include "observability/gpu_metrics.h"
#include "prometheus/collectable.h"
#include "prometheus/counter.h"
#include "prometheus/exposer.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"
#include "spdlog/spdlog.h"

namespace ortserve::observability {

std::string_view ProtocolName(Protocol protocol) {
  switch (protocol) {
    case Protocol::kHttp: return "http";
    case Protocol::kGrpc: return "grpc";
  }
  return "unknown";
}

std::string_view OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kSuccess: return "success";
    case Outcome::kClientError: return "client_error";
    case Outcome::kRejected: return "rejected";
    case Outcome::kTimeout: return "timeout";
    case Outcome::kCancelled: return "cancelled";
    case Outcome::kServerError: return "server_error";
  }
  return "unknown";
}

Outcome OutcomeFor(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk: return Outcome::kSuccess;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kPermissionDenied: return Outcome::kClientError;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kAborted: return Outcome::kRejected;
    case absl::StatusCode::kDeadlineExceeded: return Outcome::kTimeout;
    case absl::StatusCode::kCancelled: return Outcome::kCancelled;
    default: return Outcome::kServerError;
  }
}

Outcome OutcomeForHttpStatus(unsigned http_status) {
  if (http_status < 400) return Outcome::kSuccess;
  switch (http_status) {
    case 429:
    case 503: return Outcome::kRejected;
    case 504: return Outcome::kTimeout;
    case 499: return Outcome::kCancelled;
    default: return http_status < 500 ? Outcome::kClientError : Outcome::kServerError;
  }
}

absl::StatusOr<std::vector<double>> ParseBuckets(std::string_view flag, std::string_view text) {
  std::vector<double> buckets;
  size_t at = 0;
  while (at <= text.size()) {
    size_t end = text.find(',', at);
    if (end == std::string_view::npos) end = text.size();
    std::string item(text.substr(at, end - at));
    while (!item.empty() && item.front() == ' ') item.erase(item.begin());
    while (!item.empty() && item.back() == ' ') item.pop_back();
    double value = 0;
    auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), value);
    if (item.empty() || ec != std::errc() || ptr != item.data() + item.size() || !std::isfinite(value)) {
      return absl::InvalidArgumentError(StrCat(flag, ": '", item, "' is not a number"));
    }
    if (!buckets.empty() && value <= buckets.back()) {
      return absl::InvalidArgumentError(
          StrCat(flag, ": bucket bounds must increase, but ", value, " follows ", buckets.back()));
    }
    buckets.push_back(value);
    at = end + 1;
  }
  return buckets;
}

struct Metrics::Families {
  prometheus::Family<prometheus::Counter>* requests;
  prometheus::Family<prometheus::Histogram>* request_duration;
  prometheus::Family<prometheus::Histogram>* response_bytes;
  prometheus::Family<prometheus::Histogram>* queue_duration;
  prometheus::Family<prometheus::Histogram>* compute_input;
  prometheus::Family<prometheus::Histogram>* compute_infer;
  prometheus::Family<prometheus::Histogram>* compute_output;
  prometheus::Family<prometheus::Histogram>* tokenization;
  prometheus::Family<prometheus::Histogram>* batch_size;
  prometheus::Family<prometheus::Counter>* executions;
  prometheus::Family<prometheus::Counter>* instance_executions;
  prometheus::Family<prometheus::Gauge>* batch_size_limit;
  prometheus::Family<prometheus::Gauge>* queue_delay_limit;
  prometheus::Family<prometheus::Counter>* device_busy;
  prometheus::Family<prometheus::Gauge>* pending;
  prometheus::Family<prometheus::Gauge>* inflight_batches;
  prometheus::Family<prometheus::Gauge>* load_duration;
  prometheus::Family<prometheus::Counter>* lazy_events;
  prometheus::Family<prometheus::Counter>* cache_lookups;
  prometheus::Family<prometheus::Counter>* routes;
  prometheus::Family<prometheus::Counter>* fallbacks;
  prometheus::Family<prometheus::Counter>* shadow_requests;
  prometheus::Family<prometheus::Counter>* shadow_label_rows;
  prometheus::Family<prometheus::Counter>* shadow_label_agreements;
  prometheus::Family<prometheus::Histogram>* shadow_max_abs_difference;
  prometheus::Gauge* cache_bytes;
  prometheus::Gauge* cache_entries;
  prometheus::Counter* cache_evictions;
  std::atomic<uint64_t> cache_evictions_seen{0};
  prometheus::Gauge* ready;
  prometheus::Family<prometheus::Counter>* admission_refused;
  prometheus::Gauge* admission_requests;
  prometheus::Gauge* admission_bytes;
  prometheus::Counter* spans_exported;
  prometheus::Counter* spans_dropped;
  // Triton's names (MetricsOptions::triton_metrics); null when off.
  struct Triton {
    prometheus::Family<prometheus::Counter>* success;
    prometheus::Family<prometheus::Counter>* failure;
    prometheus::Family<prometheus::Counter>* inferences;
    prometheus::Family<prometheus::Counter>* executions;
    prometheus::Family<prometheus::Counter>* request_us;
    prometheus::Family<prometheus::Counter>* queue_us;
    prometheus::Family<prometheus::Counter>* input_us;
    prometheus::Family<prometheus::Counter>* infer_us;
    prometheus::Family<prometheus::Counter>* output_us;
    prometheus::Family<prometheus::Gauge>* pending;
  };
  std::unique_ptr<Triton> triton;
};

namespace {

prometheus::Family<prometheus::Counter>* TritonCounter(prometheus::Registry& r, const char* name, const char* help) {
  return &prometheus::BuildCounter().Name(name).Help(help).Register(r);
}

}  // namespace

Metrics::Metrics(MetricsOptions options)
    : options_(std::move(options)), registry_(std::make_shared<prometheus::Registry>()) {}

Metrics::~Metrics() = default;

absl::StatusOr<std::unique_ptr<Metrics>> Metrics::Create(MetricsOptions options) {
  for (const auto* buckets : {&options.latency_buckets, &options.batch_size_buckets, &options.response_bytes_buckets}) {
    if (buckets->empty()) return absl::InvalidArgumentError("histogram buckets must not be empty");
    for (size_t i = 1; i < buckets->size(); ++i) {
      if ((*buckets)[i] <= (*buckets)[i - 1]) {
        return absl::InvalidArgumentError(StrCat("histogram buckets must increase, but ", (*buckets)[i],
                                                 " follows ", (*buckets)[i - 1]));
      }
    }
  }
  std::unique_ptr<Metrics> metrics(new Metrics(std::move(options)));
  auto& r = *metrics->registry_;
  auto f = std::make_unique<Families>();
  f->requests = &prometheus::BuildCounter()
                     .Name("ortserve_request_total")
                     .Help("Inference requests answered, by model, version, protocol and outcome.")
                     .Register(r);
  f->request_duration = &prometheus::BuildHistogram()
                             .Name("ortserve_request_duration_seconds")
                             .Help("End-to-end inference request latency (arrival to response written), in seconds.")
                             .Register(r);
  f->response_bytes = &prometheus::BuildHistogram()
                           .Name("ortserve_response_bytes")
                           .Help("Size of successful inference responses on the wire, in bytes.")
                           .Register(r);
  f->queue_duration = &prometheus::BuildHistogram()
                           .Name("ortserve_queue_duration_seconds")
                           .Help("Time a request waited in the scheduler queue before its batch was cut, in seconds.")
                           .Register(r);
  f->compute_input = &prometheus::BuildHistogram()
                          .Name("ortserve_compute_input_duration_seconds")
                          .Help("Time spent gathering a batch's inputs, per request, in seconds.")
                          .Register(r);
  f->compute_infer = &prometheus::BuildHistogram()
                          .Name("ortserve_compute_infer_duration_seconds")
                          .Help("Model run time of the batch a request was in, in seconds.")
                          .Register(r);
  f->compute_output = &prometheus::BuildHistogram()
                           .Name("ortserve_compute_output_duration_seconds")
                           .Help("Time spent splitting a batch's outputs back into responses, per request, in seconds.")
                           .Register(r);
  f->tokenization = &prometheus::BuildHistogram()
                         .Name("ortserve_tokenization_duration_seconds")
                         .Help("Time spent tokenizing a text request, in seconds.")
                         .Register(r);
  f->batch_size = &prometheus::BuildHistogram()
                       .Name("ortserve_batch_size")
                       .Help("Rows in each model run (1 for models without batching).")
                       .Register(r);
  f->executions = &prometheus::BuildCounter()
                       .Name("ortserve_execution_total")
                       .Help("Model runs (batches executed).")
                       .Register(r);
  f->instance_executions = &prometheus::BuildCounter()
                                .Name("ortserve_instance_execution_total")
                                .Help("Model runs by the instance (runner thread) that made them; instance is its "
                                      "position in the model's instance_group, from 0.")
                                .Register(r);
  f->batch_size_limit = &prometheus::BuildGauge()
                             .Name("ortserve_batch_size_limit")
                             .Help("Models with a latency target: the most rows the batcher now puts in a batch "
                                   "(adapted within max_batch_size).")
                             .Register(r);
  f->queue_delay_limit = &prometheus::BuildGauge()
                              .Name("ortserve_queue_delay_limit_seconds")
                              .Help("Models with a latency target: how long the batcher now lets a request wait "
                                    "for company (adapted within max_queue_delay_microseconds).")
                              .Register(r);
  f->device_busy = &prometheus::BuildCounter()
                        .Name("ortserve_device_busy_seconds_total")
                        .Help("Time at least one model run was in progress on the device (cpu, gpu0, ...), added "
                              "as runs end; idle gaps are wall time less this.")
                        .Register(r);
  f->pending = &prometheus::BuildGauge()
                    .Name("ortserve_pending_requests")
                    .Help("Requests admitted to a model version's scheduler and not yet answered (queued + executing).")
                    .Register(r);
  f->inflight_batches = &prometheus::BuildGauge()
                             .Name("ortserve_inflight_batches")
                             .Help("Batches executing now.")
                             .Register(r);
  f->load_duration = &prometheus::BuildGauge()
                          .Name("ortserve_model_load_duration_seconds")
                          .Help("How long the model version's last load took, in seconds.")
                          .Register(r);
  f->lazy_events = &prometheus::BuildCounter()
                        .Name("ortserve_model_lazy_events_total")
                        .Help("Lazy-loading events by model: load_started, loaded, load_timed_out (per request "
                              "answered 503), idle_unloaded, evicted (memory budget).")
                        .Register(r);
  f->cache_lookups = &prometheus::BuildCounter()
                          .Name("ortserve_cache_lookups_total")
                          .Help("Response cache lookups by model, version and result (hit or miss).")
                          .Register(r);
  f->routes = &prometheus::BuildCounter()
                   .Name("ortserve_route_total")
                   .Help("Requests routed to a model version, by why that version was chosen "
                         "(explicit, override, sticky, split, default).")
                   .Register(r);
  f->fallbacks = &prometheus::BuildCounter()
                      .Name("ortserve_fallback_total")
                      .Help("Requests a fallback model version answered because their primary failed.")
                      .Register(r);
  f->shadow_requests = &prometheus::BuildCounter()
                            .Name("ortserve_shadow_requests_total")
                            .Help("Mirrored (shadow) requests by result: compared, dropped (shadow queue full or "
                                  "target unavailable), shadow_failed, primary_failed.")
                            .Register(r);
  f->shadow_label_rows = &prometheus::BuildCounter()
                              .Name("ortserve_shadow_label_rows_total")
                              .Help("Rows whose label (argmax of a score output, or a BYTES label) was compared "
                                    "between the primary and its shadow.")
                              .Register(r);
  f->shadow_label_agreements = &prometheus::BuildCounter()
                                    .Name("ortserve_shadow_label_agreements_total")
                                    .Help("Compared rows whose primary and shadow labels agreed.")
                                    .Register(r);
  f->shadow_max_abs_difference = &prometheus::BuildHistogram()
                                      .Name("ortserve_shadow_max_abs_difference")
                                      .Help("Largest absolute difference between primary and shadow numeric "
                                            "outputs, per compared request.")
                                      .Register(r);
  f->cache_bytes = &prometheus::BuildGauge()
                        .Name("ortserve_cache_bytes")
                        .Help("Bytes held by the response cache.")
                        .Register(r)
                        .Add({});
  f->cache_entries = &prometheus::BuildGauge()
                          .Name("ortserve_cache_entries")
                          .Help("Responses held by the response cache.")
                          .Register(r)
                          .Add({});
  f->cache_evictions = &prometheus::BuildCounter()
                            .Name("ortserve_cache_evictions_total")
                            .Help("Responses evicted from the response cache to stay within its byte budget.")
                            .Register(r)
                            .Add({});
  f->ready = &prometheus::BuildGauge()
                  .Name("ortserve_server_ready")
                  .Help("1 while the server reports ready (/v2/health/ready), else 0.")
                  .Register(r)
                  .Add({});
  f->admission_refused = &prometheus::BuildCounter()
                               .Name("ortserve_admission_refused_total")
                               .Help("Requests refused before routing, by reason (server_requests, "
                                     "server_memory, model_requests, draining, ...).")
                               .Register(r);
  f->admission_requests = &prometheus::BuildGauge()
                               .Name("ortserve_admission_inflight_requests")
                               .Help("Requests holding an admission permit (read, not yet answered).")
                               .Register(r)
                               .Add({});
  f->admission_bytes = &prometheus::BuildGauge()
                            .Name("ortserve_admission_inflight_bytes")
                            .Help("Memory the requests holding a permit are counted for (bodies and their "
                                  "decoding).")
                            .Register(r)
                            .Add({});
  if (!metrics->options_.build_info.empty()) {
    std::map<std::string, std::string> labels(metrics->options_.build_info.begin(),
                                              metrics->options_.build_info.end());
    prometheus::BuildGauge()
        .Name("ortserve_build_info")
        .Help("Always 1; the labels say what this server was built from (version, git commit, ONNX Runtime).")
        .Register(r)
        .Add(labels)
        .Set(1);
  }
  auto& spans = prometheus::BuildCounter()
                    .Name("ortserve_trace_spans_total")
                    .Help("Trace spans by what became of them: exported, or dropped (buffer full or export failed).")
                    .Register(r);
  f->spans_exported = &spans.Add({{"result", "exported"}});
  f->spans_dropped = &spans.Add({{"result", "dropped"}});
  if (metrics->options_.triton_metrics) {
    auto t = std::make_unique<Families::Triton>();
    t->success = TritonCounter(r, "nv_inference_request_success",
                               "Inference requests answered successfully (one per request, whatever its batch).");
    t->failure = TritonCounter(r, "nv_inference_request_failure",
                               "Inference requests that ended in an error (one per request, whatever its batch).");
    t->inferences = TritonCounter(r, "nv_inference_count", "Inferences run: a request of n rows counts n.");
    t->executions = TritonCounter(r, "nv_inference_exec_count", "Model runs (batches executed).");
    t->request_us = TritonCounter(r, "nv_inference_request_duration_us",
                                  "Cumulative end-to-end inference request time, in microseconds.");
    t->queue_us = TritonCounter(r, "nv_inference_queue_duration_us",
                                "Cumulative time requests waited in the scheduler queue, in microseconds.");
    t->input_us = TritonCounter(r, "nv_inference_compute_input_duration_us",
                                "Cumulative time requests spent gathering batch inputs, in microseconds.");
    t->infer_us = TritonCounter(r, "nv_inference_compute_infer_duration_us",
                                "Cumulative time requests spent in model runs, in microseconds.");
    t->output_us = TritonCounter(r, "nv_inference_compute_output_duration_us",
                                 "Cumulative time requests spent splitting batch outputs, in microseconds.");
    t->pending = &prometheus::BuildGauge()
                      .Name("nv_inference_pending_request_count")
                      .Help("Requests admitted to a model version's scheduler and not yet answered.")
                      .Register(r);
    f->triton = std::move(t);
  }
  metrics->families_ = std::move(f);
  if (metrics->options_.process_metrics) metrics->process_ = std::make_shared<ProcessCollector>();
  metrics->model_states_ = std::make_shared<ModelStateCollector>();
  if (metrics->options_.gpu_metrics) {
    // A machine without an NVIDIA driver is normal: say why once, at start.
    auto gpu = GpuCollector::Open(
        GpuMetricsOptions{.library = metrics->options_.nvml_library, .triton_names = metrics->options_.triton_metrics});
    if (!gpu.ok()) {
      spdlog::info("GPU metrics off: {}", ToStd(gpu.status().message()));
    } else if ((*gpu)->devices().empty()) {
      spdlog::info("GPU metrics off: NVML ({}) found no GPU", metrics->options_.nvml_library);
    } else {
      spdlog::info("GPU metrics on: {}", (*gpu)->Describe());
      metrics->gpu_ = *std::move(gpu);
    }
  }
  metrics->unresolved_ = metrics->ForVersion("", "");
  return metrics;
}

VersionMetrics* Metrics::ForVersion(std::string_view model, std::string_view version) {
  absl::MutexLock lock(&mu_);
  auto& slot = versions_[{std::string(model), std::string(version)}];
  if (slot) return slot.get();
  std::unique_ptr<VersionMetrics> v(new VersionMetrics());
  v->model_ = std::string(model);
  v->version_ = std::string(version);
  const prometheus::Labels base = {{"model", v->model_}, {"version", v->version_}};
  auto with = [&](std::initializer_list<std::pair<const std::string, std::string>> extra) {
    prometheus::Labels labels = base;
    for (const auto& e : extra) labels.insert(e);
    return labels;
  };
  Families& f = *families_;
  const auto& lat = options_.latency_buckets;
  for (size_t p = 0; p < kProtocolCount; ++p) {
    const std::string protocol(ProtocolName(static_cast<Protocol>(p)));
    for (size_t o = 0; o < kOutcomeCount; ++o) {
      v->requests_[p][o] =
          &f.requests->Add(with({{"protocol", protocol}, {"outcome", std::string(OutcomeName(static_cast<Outcome>(o)))}}));
    }
    v->request_duration_[p] = &f.request_duration->Add(with({{"protocol", protocol}}), lat);
    v->response_bytes_[p] = &f.response_bytes->Add(with({{"protocol", protocol}}), options_.response_bytes_buckets);
  }
  if (!model.empty()) {
    // Scheduler-side series exist only for real versions.
    v->queue_duration_ = &f.queue_duration->Add(base, lat);
    v->compute_input_ = &f.compute_input->Add(base, lat);
    v->compute_infer_ = &f.compute_infer->Add(base, lat);
    v->compute_output_ = &f.compute_output->Add(base, lat);
    v->tokenization_ = &f.tokenization->Add(base, lat);
    v->batch_size_ = &f.batch_size->Add(base, options_.batch_size_buckets);
    v->executions_ = &f.executions->Add(base);
    v->pending_ = &f.pending->Add(base);
    v->inflight_batches_ = &f.inflight_batches->Add(base);
    v->load_duration_ = &f.load_duration->Add(base);
    v->cache_hits_ = &f.cache_lookups->Add(with({{"result", "hit"}}));
    v->cache_misses_ = &f.cache_lookups->Add(with({{"result", "miss"}}));
    for (size_t i = 0; i < kRouteReasons.size(); ++i) {
      v->routes_[i] = &f.routes->Add(with({{"reason", std::string(kRouteReasons[i])}}));
    }
    v->fallbacks_ = &f.fallbacks->Add(base);
    v->instance_executions_ = f.instance_executions;
    v->batch_size_limit_ = f.batch_size_limit;
    v->queue_delay_limit_ = f.queue_delay_limit;
    v->owner_ = this;
    if (f.triton) {
      const Families::Triton& t = *f.triton;
      v->triton_ = std::make_unique<VersionMetrics::TritonSeries>(VersionMetrics::TritonSeries{
          .success = &t.success->Add(base),
          .failure = &t.failure->Add(base),
          .inferences = &t.inferences->Add(base),
          .executions = &t.executions->Add(base),
          .request_us = &t.request_us->Add(base),
          .queue_us = &t.queue_us->Add(base),
          .input_us = &t.input_us->Add(base),
          .infer_us = &t.infer_us->Add(base),
          .output_us = &t.output_us->Add(base),
          .pending = &t.pending->Add(base)});
    }
  }
  slot = std::move(v);
  return slot.get();
}

ShadowMetrics* Metrics::ForShadow(std::string_view model, std::string_view shadow_model,
                                  std::string_view shadow_version) {
  const std::string key = StrCat(model, "\n", shadow_model, "\n", shadow_version);
  absl::MutexLock lock(&mu_);
  auto& slot = shadows_[key];
  if (slot) return slot.get();
  auto s = std::make_unique<ShadowMetrics>();
  const prometheus::Labels base = {{"model", std::string(model)},
                                   {"shadow_model", std::string(shadow_model)},
                                   {"shadow_version", std::string(shadow_version)}};
  static constexpr std::array<std::string_view, 4> kResults = {"compared", "dropped", "shadow_failed",
                                                               "primary_failed"};
  Families& f = *families_;
  for (size_t i = 0; i < kResults.size(); ++i) {
    prometheus::Labels labels = base;
    labels.emplace("result", std::string(kResults[i]));
    s->results_[i] = &f.shadow_requests->Add(labels);
  }
  s->label_rows_ = &f.shadow_label_rows->Add(base);
  s->label_agreements_ = &f.shadow_label_agreements->Add(base);
  s->max_abs_difference_ = &f.shadow_max_abs_difference->Add(
      base, prometheus::Histogram::BucketBoundaries{1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1, 10});
  slot = std::move(s);
  return slot.get();
}

void Metrics::RecordLazyEvent(std::string_view model, std::string_view event) {
  absl::MutexLock lock(&mu_);
  families_->lazy_events->Add({{"model", std::string(model)}, {"event", std::string(event)}}).Increment();
}

void Metrics::SetCacheUsage(size_t bytes, size_t entries, uint64_t evictions) {
  families_->cache_bytes->Set(static_cast<double>(bytes));
  families_->cache_entries->Set(static_cast<double>(entries));
  // Callers race with snapshots of a growing total: count each eviction once.
  uint64_t seen = families_->cache_evictions_seen.load(std::memory_order_relaxed);
  while (evictions > seen) {
    if (families_->cache_evictions_seen.compare_exchange_weak(seen, evictions, std::memory_order_relaxed)) {
      families_->cache_evictions->Increment(static_cast<double>(evictions - seen));
      break;
    }
  }
}

void ShadowMetrics::Record(Result result) { results_[static_cast<size_t>(result)]->Increment(); }

void ShadowMetrics::RecordComparison(int64_t label_rows, int64_t label_agreements, double max_abs_difference) {
  if (label_rows > 0) {
    label_rows_->Increment(static_cast<double>(label_rows));
    label_agreements_->Increment(static_cast<double>(label_agreements));
  }
  max_abs_difference_->Observe(max_abs_difference);
}

void Metrics::SetReady(bool ready) { families_->ready->Set(ready ? 1 : 0); }

void Metrics::RecordAdmissionRefusal(std::string_view reason) {
  // Reasons are a fixed set of literals: the family's children stay few.
  families_->admission_refused->Add({{"reason", std::string(reason)}}).Increment();
}

void Metrics::AddAdmissionInflight(int64_t requests, int64_t bytes) {
  families_->admission_requests->Increment(static_cast<double>(requests));
  families_->admission_bytes->Increment(static_cast<double>(bytes));
}
void Metrics::SpanExported(size_t count) { families_->spans_exported->Increment(static_cast<double>(count)); }
void Metrics::SpanDropped(size_t count) { families_->spans_dropped->Increment(static_cast<double>(count)); }

void Metrics::SetModelStateSource(std::function<std::vector<ModelStateSample>()> source) {
  model_states_->Set(std::move(source));
}

std::string Metrics::Serialize() const { return prometheus::TextSerializer().Serialize(Collect()); }

std::vector<prometheus::MetricFamily> Metrics::Collect() const {
  auto families = registry_->Collect();
  auto states = model_states_->Collect();
  families.insert(families.end(), states.begin(), states.end());
  if (process_) {
    auto process = process_->Collect();
    families.insert(families.end(), process.begin(), process.end());
  }
  if (gpu_) {
    auto gpu = gpu_->Collect();
    families.insert(families.end(), gpu.begin(), gpu.end());
  }
  return families;
}

DeviceActivity* Metrics::ForDevice(std::string_view device) {
  absl::MutexLock lock(&mu_);
  auto it = devices_.find(device);
  if (it != devices_.end()) return it->second.get();
  auto activity = std::make_unique<DeviceActivity>();
  activity->busy_seconds_ = &families_->device_busy->Add({{"device", std::string(device)}});
  return devices_.emplace(std::string(device), std::move(activity)).first->second.get();
}

struct MetricsServer::Impl {
  std::unique_ptr<prometheus::Exposer> exposer;
};

MetricsServer::~MetricsServer() = default;

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(const std::string& address, int port,
                                                                    Metrics* metrics, BasicAuth authorize) {
  std::unique_ptr<MetricsServer> server(new MetricsServer());
  server->impl_ = std::make_unique<Impl>();
  const std::string bind = address.find(':') != std::string::npos ? StrCat("[", address, "]:", port)
                                                                   : StrCat(address, ":", port);
  try {
    server->impl_->exposer = std::make_unique<prometheus::Exposer>(bind, 2);
  } catch (const std::exception& e) {
    // civetweb reports bind failures by throwing; keep it inside this module.
    return absl::UnavailableError(StrCat("cannot listen for metrics on ", bind, ": ", e.what()));
  }
  if (authorize) server->impl_->exposer->RegisterAuth(std::move(authorize), "ortserve metrics");
  server->impl_->exposer->RegisterCollectable(metrics->registry_);
  server->impl_->exposer->RegisterCollectable(metrics->model_states_);
  if (metrics->process_) server->impl_->exposer->RegisterCollectable(metrics->process_);
  if (metrics->gpu_) server->impl_->exposer->RegisterCollectable(metrics->gpu_);
  const auto ports = server->impl_->exposer->GetListeningPorts();
  if (ports.empty()) return absl::UnavailableError(StrCat("metrics server on ", bind, " has no port"));
  server->port_ = static_cast<uint16_t>(ports.front());
  return server;
}

}  // namespace ortserve::observability
