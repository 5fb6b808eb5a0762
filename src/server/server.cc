// SPDX-License-Identifier: Apache-2.0
#include "server/server.h"

#include <spdlog/spdlog.h>

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>

#include "core/status.h"
#include "core/strings.h"
#include "server/server_impl.h"

namespace ortserve::server {
namespace {

// The memory this process may use: the container's limit (cgroup v2's
// memory.max, or v1's limit) when it has one, else the machine's.
uint64_t AvailableMemory() {
  uint64_t machine = static_cast<uint64_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  for (const char* path : {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}) {
    std::ifstream in(path);
    uint64_t limit = 0;
    if (in >> limit && limit > 0 && limit < machine) return limit;  // "max" fails to parse: no limit.
  }
  return machine;
}

}  // namespace

int AvailableCpus() {
  int cpus = 0;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) cpus = CPU_COUNT(&set);
  if (cpus <= 0) cpus = static_cast<int>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)));
  // cgroup v2's cpu.max: "<quota> <period>" in microseconds, or "max <period>".
  std::ifstream in("/sys/fs/cgroup/cpu.max");
  int64_t quota = 0;
  int64_t period = 0;
  if (in >> quota >> period && quota > 0 && period > 0) {
    const int64_t allowed = (quota + period - 1) / period;
    if (allowed < cpus) cpus = static_cast<int>(std::max<int64_t>(1, allowed));
  }
  return cpus;
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Server::~Server() { Stop(); }

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const ServerOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->shutdown_delay = absl::Seconds(options.shutdown_delay_seconds);
  impl->shutdown_grace = absl::Seconds(options.shutdown_grace_seconds);
  // Observability first: loads are logged, timed and counted.
  observability::Logging::Options log_options;
  ASSIGN_OR_RETURN(log_options.format, observability::ParseLogFormat(options.log_format));
  log_options.level = options.log_level;
  log_options.access_log = options.access_log;
  ASSIGN_OR_RETURN(impl->logging, observability::Logging::Install(log_options));
  RETURN_IF_ERROR(impl->SetUpSecurity(options));
  observability::MetricsOptions metric_options;
  metric_options.gpu_metrics = true;  // ortserve_gpu_* when the NVIDIA driver is there (docs/metrics.md).
  metric_options.triton_metrics = options.triton_metrics;
  metric_options.build_info = {{"version", std::string(frontend::InferenceService::ServerVersion())},
                               {"commit", options.build_commit},
                               {"onnxruntime", backend::OrtSessionFactory::RuntimeVersion()}};
  if (!options.latency_buckets.empty()) {
    ASSIGN_OR_RETURN(metric_options.latency_buckets,
                     observability::ParseBuckets("--metrics-latency-buckets", options.latency_buckets));
  }
  if (!options.batch_size_buckets.empty()) {
    ASSIGN_OR_RETURN(metric_options.batch_size_buckets,
                     observability::ParseBuckets("--metrics-batch-size-buckets", options.batch_size_buckets));
  }
  if (!options.response_bytes_buckets.empty()) {
    ASSIGN_OR_RETURN(metric_options.response_bytes_buckets,
                     observability::ParseBuckets("--metrics-response-bytes-buckets", options.response_bytes_buckets));
  }
  ASSIGN_OR_RETURN(impl->metrics, observability::Metrics::Create(std::move(metric_options)));
  if (!options.otlp_endpoint.empty() || options.trace_sampling_ratio > 0) {
    observability::Tracer::Options trace_options;
    trace_options.endpoint = options.otlp_endpoint;
    trace_options.sampling_ratio = options.trace_sampling_ratio;
    trace_options.max_buffered_spans = options.trace_buffer_spans;
    trace_options.metrics = impl->metrics.get();
    ASSIGN_OR_RETURN(impl->tracer, observability::Tracer::Create(std::move(trace_options)));
  }
  if (options.metrics_port >= 0) {
    observability::MetricsServer::BasicAuth metrics_auth;
    if (impl->access->enabled() && options.metrics_auth) {
      // Prometheus sends the credential (an API key or a JWT) as the Basic
      // password (basic_auth.password_file); the user name is not used.
      metrics_auth = [access = impl->access.get()](const std::string&, const std::string& password) {
        const std::string bearer = StrCat("Bearer ", password);
        return access->Check({.authorization = bearer}, admission::RouteClass::kMetrics, {}, "metrics port",
                             "http GET /metrics")
            .ok();
      };
    }
    ASSIGN_OR_RETURN(impl->metrics_server,
                     observability::MetricsServer::Start(options.metrics_address, options.metrics_port,
                                                         impl->metrics.get(), std::move(metrics_auth)));
    // Tests and scripts read the bound port from this line.
    spdlog::info("metrics listening on {}:{}", options.metrics_address, impl->metrics_server->port());
  }
  backend::OrtSessionFactory::Options ort_options;
  ort_options.log_severity = options.ort_log_severity;
  ort_options.shared_intra_op_threads = options.ort_intra_op_threads;
  ort_options.shared_inter_op_threads = options.ort_inter_op_threads;
  ort_options.allow_spinning = options.ort_allow_spinning;
  ASSIGN_OR_RETURN(impl->sessions, backend::OrtSessionFactory::Create(ort_options));
  spdlog::info("ONNX Runtime {}", backend::OrtSessionFactory::RuntimeVersion());

  repository::ModelManager::Options model_options;
  model_options.repository_path = options.model_repository;
  ASSIGN_OR_RETURN(impl->staged_repository,
                   repository::StagedRepository::StageIfSingleModel(options.model_repository, options.model_name,
                                                                    options.model_staging_dir));
  if (impl->staged_repository != nullptr) {
    model_options.repository_path = impl->staged_repository->path();
    model_options.link_roots = {impl->staged_repository->source()};
    spdlog::info("{}/model.onnx is served as model '{}' version 1 (staged in {})", options.model_repository,
                 options.model_name, impl->staged_repository->path());
  }
  model_options.session_factory = impl->sessions.get();
  model_options.load_threads = options.model_load_threads;
  model_options.metrics = impl->metrics.get();
  model_options.warn = [](const std::string& warning) { spdlog::warn("{}", warning); };
  model_options.error = [](const std::string& message) { spdlog::error("{}", message); };
  model_options.info = [](const std::string& message) { spdlog::info("{}", message); };
  ASSIGN_OR_RETURN(model_options.control_mode, repository::ParseModelControlMode(options.model_control_mode));
  model_options.startup_models = options.load_models;
  model_options.memory_budget_bytes = options.model_memory_budget_bytes;
  model_options.lazy_event = [metrics = impl->metrics.get()](std::string_view model,
                                                             repository::LazyEvent event) {
    metrics->RecordLazyEvent(model, repository::LazyEventName(event));
  };
  model_options.poll_interval = absl::Seconds(options.repository_poll_secs);
  if (options.response_cache_bytes > 0) {
    router::ResponseCache::Options cache_options;
    cache_options.max_bytes = options.response_cache_bytes;
    ASSIGN_OR_RETURN(impl->response_cache, router::ResponseCache::Create(cache_options));
    // A released version's answers can never be served again (the key holds
    // its files' digest): give their bytes back to the budget.
    model_options.released = [cache = impl->response_cache.get(), metrics = impl->metrics.get()](
                                     const std::string& model, const std::string& version) {
      if (cache->EraseVersion(model, version) == 0) return;
      const auto stats = cache->GetStats();
      metrics->SetCacheUsage(stats.bytes, stats.entries, stats.evictions);
    };
  }
  ASSIGN_OR_RETURN(impl->models, repository::ModelManager::Create(std::move(model_options)));
  impl->metrics->SetModelStateSource([models = impl->models.get()] {
    std::vector<observability::ModelStateSample> samples;
    for (const auto& entry : models->Index()) {
      // Explicit mode lists folders never loaded; they have no version to chart.
      if (entry.version.empty() && entry.reason == repository::kNeverLoadedReason) continue;
      samples.push_back({entry.name, entry.version, repository::ModelStateName(entry.state)});
    }
    return samples;
  });
  RETURN_IF_ERROR(impl->models->LoadAll());
  // The manager logs each load as it finishes (READY, or the error).

  pipeline::TokenizationPool::Options tokenization_options;
  tokenization_options.threads = options.tokenizer_threads;
  ASSIGN_OR_RETURN(impl->tokenization, pipeline::TokenizationPool::Create(tokenization_options));
  admission::Admission::Options admission_options;
  admission_options.max_inflight_requests = options.max_inflight_requests;
  admission_options.max_inflight_bytes =
      options.max_inflight_bytes > 0 ? options.max_inflight_bytes : AvailableMemory() / 4;
  admission_options.max_model_inflight = options.max_model_inflight;
  admission_options.metrics = impl->metrics.get();
  RETURN_IF_ERROR(impl->SetUpRateLimits(options));
  admission_options.rate_limiter = impl->rate_limiter.get();
  ASSIGN_OR_RETURN(impl->admission, admission::Admission::Create(admission_options));
  spdlog::info("admission: at most {} requests and {} bytes in flight{}", admission_options.max_inflight_requests,
               admission_options.max_inflight_bytes,
               admission_options.max_model_inflight > 0
                   ? StrCat(", ", admission_options.max_model_inflight, " per model")
                   : std::string());

  frontend::InferenceService::Options service_options{.models = impl->models.get()};
  service_options.tokenization_pool = impl->tokenization.get();
  service_options.required_models = options.required_models;
  service_options.strict_readiness = options.strict_readiness;
  ASSIGN_OR_RETURN(service_options.shared_memory.clients,
                   frontend::ParseSharedMemoryClients(options.system_shared_memory));
  service_options.shared_memory.key_prefix = options.shared_memory_key_prefix;
  service_options.telemetry = {impl->metrics.get(), impl->logging.get(), impl->tracer.get()};
  service_options.response_cache = impl->response_cache.get();
  impl->service = std::make_unique<frontend::InferenceService>(std::move(service_options));

  // SAE verdicts: an audit line each, an alert for each serious one.
  ASSIGN_OR_RETURN(std::optional<alerts::AlertServiceOptions> alert_options,
                   alerts::BuildAlertServiceOptions(options.alert_flags));
  std::string patient_hash_key;
  if (alert_options) {
    alert_options->registry = impl->metrics->registry();
    patient_hash_key = alert_options->patient_hash_key;
    ASSIGN_OR_RETURN(impl->alerts, alerts::AlertService::Create(*std::move(alert_options)));
    spdlog::info("SAE alerts: {} webhook(s), outbox {}", impl->alerts->receivers().size(),
                 options.alert_flags.outbox_path);
  }
  if (impl->alerts || impl->audit) {
    alerts::VerdictRecorder::Options recorder;
    recorder.audit = impl->audit.get();
    recorder.alerts = impl->alerts.get();
    recorder.patient_hash_key = patient_hash_key;
    recorder.audit_raw_patient_id = options.audit_raw_patient_id;
    ASSIGN_OR_RETURN(impl->verdicts, alerts::VerdictRecorder::Create(std::move(recorder)));
  }

  ASSIGN_OR_RETURN(impl->collections, retrieval::OpenCollectionStore(options.collection_flags));

  // Before any listener starts: with --exit-on-error, a failed model stops
  // the start-up before a client (or a readiness probe) sees the server.
  if (const auto failed = impl->service->FailedModels(); !failed.empty()) {
    std::string names;
    for (const std::string& name : failed) names.append(names.empty() ? "" : ", ").append(name);
    if (options.exit_on_error) {
      return absl::FailedPreconditionError(StrCat("models failed to load (--exit-on-error): ", names));
    }
    if (options.strict_readiness) {
      spdlog::error("models failed to load: {}; the server reports not ready until they load (--strict-readiness)",
                    names);
    }
  }
  int http_threads = 0;
  if (options.http_port >= 0) {
    frontend::HttpServer::Options http;
    http.address = options.http_address;
    http.port = static_cast<uint16_t>(options.http_port);
    // More event loops than CPUs only adds wake-ups and switches (on one
    // core, four loops cost streamed generation ~10% of its throughput).
    http_threads = options.http_threads > 0 ? options.http_threads : std::clamp(AvailableCpus(), 1, 4);
    http.threads = http_threads;
    http.max_body_bytes = options.http_max_body_bytes;
    http.idle_timeout = absl::Seconds(options.http_idle_timeout_seconds);
    http.max_connections = options.http_max_connections;
    http.service = impl->service.get();
    http.admission = impl->admission.get();
    http.pipeline.sae_model = options.sae_model;
    http.pipeline.embed_model = options.embed_model;
    http.pipeline.predict_model = options.predict_model.empty() ? options.sae_model : options.predict_model;
    http.pipeline.sae_max_chars = options.sae_max_report_chars;
    http.pipeline.verdict_sink = impl->verdicts.get();
    http.alerts = impl->alerts.get();
    http.enable_profiling = options.enable_profiling;
    http.access = impl->access.get();
    http.tls = impl->http_tls.get();
    http.collections = impl->collections.get();
    if (options.chat_sessions > 0) {
      impl->chat_sessions = std::make_unique<generation::SessionStore>(generation::SessionStore::Options{
          .max_sessions = options.chat_sessions,
          .max_turns = options.chat_session_turns,
          .max_tokens = options.chat_session_tokens,
          .max_session_bytes = options.chat_session_bytes,
          .ttl = absl::Seconds(options.chat_session_ttl_seconds)});
      http.sessions = impl->chat_sessions.get();
    }
    if (options.console) {
      impl->console_sources = std::make_unique<console::ServerSources>(console::ServerSources::Options{
          .metrics = impl->metrics.get(),
          .models = impl->models.get(),
          .ready = [service = impl->service.get()] { return service->Ready(); },
          .open_connections = [impl = impl.get()] {
            return static_cast<int64_t>(impl->http ? impl->http->OpenConnections() : 0);
          },
          .sae_model = options.sae_model});
      ASSIGN_OR_RETURN(impl->console, console::Console::Create({.sources = impl->console_sources.get()}));
      http.console = impl->console.get();
    }
    // Heap samples need sampling from the start; it costs a stack unwind per
    // sample, so only servers that serve profiles pay for it.
    if (options.enable_profiling) observability::HeapProfiler::EnableDefaultSampling();
    ASSIGN_OR_RETURN(impl->http, frontend::HttpServer::Start(std::move(http)));
    // Tests and scripts read the bound port from this line.
    spdlog::info("HTTP listening on {}:{}{}, {} I/O thread{}", options.http_address, impl->http->port(),
                 impl->http_tls ? " (TLS)" : "", http_threads, http_threads == 1 ? "" : "s");
  }
  if (options.grpc_port >= 0) {
    frontend::GrpcServer::Options grpc_options;
    grpc_options.collections = impl->collections.get();
    grpc_options.address = options.grpc_address;
    grpc_options.port = static_cast<uint16_t>(options.grpc_port);
    grpc_options.max_message_bytes = options.grpc_max_message_bytes;
    grpc_options.service = impl->service.get();
    grpc_options.admission = impl->admission.get();
    grpc_options.access = impl->access.get();
    if (impl->grpc_tls) grpc_options.credentials = impl->grpc_tls->server_credentials();
    ASSIGN_OR_RETURN(impl->grpc, frontend::GrpcServer::Start(std::move(grpc_options)));
    // Tests and scripts read the bound port from this line.
    spdlog::info("gRPC listening on {}:{}", options.grpc_address, impl->grpc->port());
  }
  impl->service->SetReady(true);
  for (const std::string& name : options.required_models) {
    if (!impl->service->GetModel(name, "").ok()) {
      spdlog::error("required model '{}' is not READY; the server reports not ready until it is", name);
    }
  }
  impl->metrics->SetReady(impl->service->Ready());
  if (impl->grpc) impl->grpc->SetServing(true);
  if (impl->console) impl->console->StartSampling();
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

void Server::Stop() {
  if (!impl_ || impl_->stopped) return;
  impl_->stopped = true;
  // 1. Readiness false, so load balancers stop sending. Until they notice
  // (their next health check), requests still come: serve them for the
  // shutdown delay rather than refuse them.
  if (impl_->service) impl_->service->SetReady(false);
  if (impl_->metrics) impl_->metrics->SetReady(false);
  if (impl_->grpc) impl_->grpc->SetServing(false);
  if (impl_->shutdown_delay > absl::ZeroDuration()) {
    spdlog::info("shutting down: readiness off, still serving for {}s (--shutdown-delay-seconds)",
                 absl::ToDoubleSeconds(impl_->shutdown_delay));
    absl::SleepFor(impl_->shutdown_delay);
  }
  // 2. New work refused; no new connections.
  if (impl_->service) impl_->service->BeginDrain();
  if (impl_->admission) impl_->admission->BeginDrain();
  if (impl_->http) impl_->http->StopAccepting();
  // 3. Drain: wait (bounded) until every admitted request is answered and
  // every answer written.
  auto busy = [&] {
    return (impl_->service ? impl_->service->InflightCount() : 0) +
           (impl_->http ? impl_->http->ActiveRequests() : 0);
  };
  const absl::Time deadline = absl::Now() + impl_->shutdown_grace;
  if (busy() > 0) {
    spdlog::info("shutting down: readiness off, draining {} admitted request(s) and {} HTTP exchange(s) (grace {}s)",
                 impl_->service ? impl_->service->InflightCount() : 0,
                 impl_->http ? impl_->http->ActiveRequests() : 0, absl::ToDoubleSeconds(impl_->shutdown_grace));
  }
  while (busy() > 0 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
  if (size_t n = busy(); n > 0) {
    spdlog::warn("shutdown grace period ended with {} request(s) still in flight", n);
  } else {
    spdlog::info("drained; stopping");
  }
  // 4. Close the front ends, stop the schedulers, flush spans.
  if (impl_->http) impl_->http->Stop();
  if (impl_->grpc) impl_->grpc->Stop();
  impl_->console.reset();  // Joins its sampler; nothing serves it any more.
  if (impl_->tokenization) impl_->tokenization->Stop();  // Runs what was queued, then joins.
  if (impl_->models) impl_->models->Shutdown();
  // Verdicts answered are recorded; alerts not yet delivered stay in the outbox.
  if (impl_->verdicts) impl_->verdicts->Stop();
  if (impl_->alerts) impl_->alerts->Stop();
  impl_->tracer.reset();
  impl_->metrics_server.reset();
}

void Server::Reload() {
  if (!impl_) return;
  if (impl_->audit) {
    if (auto status = impl_->audit->Reopen(); !status.ok()) {
      spdlog::error("audit log: cannot reopen {}: {}", impl_->audit->path(), ToStd(status.message()));
    }
  }
  if (impl_->authenticator) {
    if (auto status = impl_->authenticator->CheckNow(); !status.ok()) ReportReload("credentials", status);
  }
  if (impl_->http_tls) {
    if (auto status = impl_->http_tls->CheckNow(); !status.ok()) ReportReload("HTTP TLS certificate", status);
  }
  if (impl_->grpc_tls) {
    if (auto status = impl_->grpc_tls->CheckNow(); !status.ok()) ReportReload("gRPC TLS certificate", status);
  }
  spdlog::info("SIGHUP: audit log reopened, credential and certificate files checked");
}

uint16_t Server::http_port() const { return impl_->http ? impl_->http->port() : 0; }
uint16_t Server::grpc_port() const { return impl_->grpc ? impl_->grpc->port() : 0; }

}  // namespace ortserve::server
