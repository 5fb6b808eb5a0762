// SPDX-License-Identifier: Apache-2.0
#include "server/server.h"

#include <spdlog/spdlog.h>

#include <unistd.h>

#include <fstream>

#include "admission/admission.h"
#include "admission/api_keys.h"
#include "admission/authenticator.h"
#include "admission/grpc_tls.h"
#include "admission/jwt.h"
#include "admission/tls_context.h"
#include "admission/rate_limit.h"
#include "admission/redis_lease.h"
#include "backend/ort/ort_session_factory.h"
#include "core/status.h"
#include "core/strings.h"
#include "frontend/access_control.h"
#include "frontend/grpc/grpc_server.h"
#include "frontend/http/http_server.h"
#include "frontend/inference_service.h"
#include "observability/profiler.h"
#include "pipeline/tokenization_pool.h"
#include "router/response_cache.h"
#include "observability/logging.h"
#include "observability/metrics.h"
#include "observability/tracing.h"
#include "repository/model_manager.h"
#include "repository/single_model_layout.h"
#include "observability/audit_log.h"
#include "alerts/alert_service.h"
#include "alerts/verdict_recorder.h"
#include "console/console.h"
#include "console/server_sources.h"

namespace ortserve::server {
namespace {

// --- Security (issue 16) ---

std::vector<std::string> SplitOn(std::string_view text, char separator) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t end = text.find(separator, start);
    parts.emplace_back(text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

// "SUBJECT|scopes[|models[|tenant]]" (--mtls-grant).
absl::StatusOr<admission::Authenticator::MtlsGrant> ParseMtlsGrant(std::string_view text) {
  const std::vector<std::string> parts = SplitOn(text, '|');
  if (parts.size() < 2 || parts.size() > 4) {
    return absl::InvalidArgumentError(
        StrCat("--mtls-grant '", text, "': expected SUBJECT|scopes[|models[|tenant]]"));
  }
  admission::Authenticator::MtlsGrant grant;
  grant.subject = parts[0];
  auto scopes = admission::ParseScopeList(parts[1]);
  if (!scopes.ok()) return absl::InvalidArgumentError(StrCat("--mtls-grant '", text, "': ", ToStd(scopes.status().message())));
  grant.scopes = *scopes;
  if (parts.size() >= 3 && !parts[2].empty() && parts[2] != "*") {
    auto models = admission::ModelAllowList::Only(SplitOn(parts[2], ','));
    if (!models.ok()) {
      return absl::InvalidArgumentError(StrCat("--mtls-grant '", text, "': ", ToStd(models.status().message())));
    }
    grant.models = *std::move(models);
  }
  if (parts.size() == 4) grant.tenant = parts[3];
  return grant;
}

bool IsLoopback(const std::string& address) {
  return address == "127.0.0.1" || address == "::1" || address == "localhost" || address.starts_with("127.");
}

absl::StatusOr<admission::ClientCertMode> ParseClientCertMode(const ServerOptions& options) {
  const std::string& mode = options.tls_client_cert;
  if (mode.empty()) {
    return options.tls_client_ca_file.empty() ? admission::ClientCertMode::kNone : admission::ClientCertMode::kRequire;
  }
  if (mode == "none") return admission::ClientCertMode::kNone;
  if (mode == "optional") return admission::ClientCertMode::kOptional;
  if (mode == "require") return admission::ClientCertMode::kRequire;
  return absl::InvalidArgumentError(StrCat("--tls-client-cert '", mode, "': expected none, optional or require"));
}

void ReportReload(std::string_view what, const absl::Status& status) {
  if (status.ok()) {
    spdlog::info("{}: reloaded", what);
  } else {
    spdlog::error("{}: the changed file(s) do not load, the last good ones stay in service: {}", what,
                  ToStd(status.message()));
  }
}

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

// The rate limiter from the --rate-limit-* flags (null when none is set),
// and the Redis lease of the global limit when --rate-limit-redis is set.
absl::Status MakeRateLimits(const ServerOptions& options, observability::Metrics* metrics,
                            std::unique_ptr<admission::RedisTokenLease>* lease,
                            std::unique_ptr<admission::RateLimiter>* limiter) {
  admission::RateLimiter::Options limits;
  if (!options.rate_limit_per_client.empty()) {
    ASSIGN_OR_RETURN(limits.per_client,
                     admission::ParseRateSpec("--rate-limit-per-client", options.rate_limit_per_client));
  }
  for (const std::string& entry : options.rate_limit_per_model) {
    const size_t equals = entry.find('=');
    ASSIGN_OR_RETURN(admission::RateSpec spec,
                     admission::ParseRateSpec("--rate-limit-per-model",
                                              equals == std::string::npos ? entry : entry.substr(equals + 1)));
    if (equals == std::string::npos) {
      limits.per_model_default = spec;
    } else {
      limits.per_model.emplace_back(entry.substr(0, equals), spec);
    }
  }
  if (!options.rate_limit_global.empty()) {
    ASSIGN_OR_RETURN(limits.global, admission::ParseRateSpec("--rate-limit-global", options.rate_limit_global));
  }
  if (!options.rate_limit_redis.empty()) {
    admission::RedisTokenLease::Options redis;
    redis.address = options.rate_limit_redis;
    redis.key = options.rate_limit_redis_key;
    redis.spec = limits.global;
    redis.registry = metrics->registry().get();
    ASSIGN_OR_RETURN(*lease, admission::RedisTokenLease::Start(std::move(redis)));
    limits.shared_global = lease->get();
  }
  limits.max_clients = options.rate_limit_max_clients;
  ASSIGN_OR_RETURN(*limiter, admission::RateLimiter::Create(std::move(limits)));
  if (!(*limiter)->enabled()) {
    limiter->reset();
    return absl::OkStatus();
  }
  spdlog::info("rate limits: per client {}, per model {} ({} named), global {}{}",
               options.rate_limit_per_client.empty() ? "off" : options.rate_limit_per_client,
               options.rate_limit_per_model.empty() ? "off" : "on", options.rate_limit_per_model.size(),
               options.rate_limit_global.empty() ? "off" : options.rate_limit_global,
               options.rate_limit_redis.empty() ? "" : StrCat(" shared through Redis at ", options.rate_limit_redis));
  return absl::OkStatus();
}

}  // namespace

struct Server::Impl {
  absl::Duration shutdown_delay;
  absl::Duration shutdown_grace;
  std::unique_ptr<observability::Logging> logging;
  std::unique_ptr<observability::Metrics> metrics;
  std::unique_ptr<observability::Tracer> tracer;
  std::unique_ptr<observability::MetricsServer> metrics_server;
  std::unique_ptr<backend::OrtSessionFactory> sessions;
  // The single-file layout's staged repository (null for a Triton layout);
  // outlives the manager that reads it.
  std::unique_ptr<repository::StagedRepository> staged_repository;
  // Outlives the manager (whose release thread erases released versions'
  // entries) and the service.
  std::unique_ptr<router::ResponseCache> response_cache;
  std::unique_ptr<repository::ModelManager> models;
  std::unique_ptr<pipeline::TokenizationPool> tokenization;  // Outlives the service that uses it.
  // Rate limits: outlive the admission that checks them.
  std::unique_ptr<admission::RedisTokenLease> rate_limit_lease;
  std::unique_ptr<admission::RateLimiter> rate_limiter;
  std::unique_ptr<admission::Admission> admission;  // Outlives the front ends.
  // Security (issue 16); all outlive the front ends.
  std::unique_ptr<observability::AuditLog> audit;
  std::unique_ptr<admission::Authenticator> authenticator;
  std::unique_ptr<frontend::AccessControl> access;
  std::unique_ptr<admission::TlsContextProvider> http_tls;
  std::unique_ptr<admission::GrpcTlsCredentials> grpc_tls;  // Destroyed after the gRPC server.
  // SAE verdicts: alerts and their audit lines; outlive the front ends.
  std::unique_ptr<alerts::AlertService> alerts;
  std::unique_ptr<alerts::VerdictRecorder> verdicts;
  std::unique_ptr<frontend::InferenceService> service;
  std::unique_ptr<retrieval::CollectionStore> collections;  // Outlives the front ends.
  // The live console (docs/console.md): outlives the HTTP server that serves
  // it; its sampler (which reads `http`) is stopped right after the front ends.
  std::unique_ptr<console::ServerSources> console_sources;
  std::unique_ptr<console::Console> console;
  std::unique_ptr<frontend::HttpServer> http;
  std::unique_ptr<frontend::GrpcServer> grpc;
  bool stopped = false;

  // Authentication, TLS and the audit log, from the flags (docs/security.md);
  // warns loudly about a server that anyone on the network may use.
  absl::Status SetUpSecurity(const ServerOptions& options);
};

absl::Status Server::Impl::SetUpSecurity(const ServerOptions& options) {
  if (!options.audit_log.empty()) {
    observability::AuditLog::Options audit_options;
    audit_options.path = options.audit_log;
    audit_options.max_bytes = options.audit_log_max_bytes;
    if (options.audit_log_sync == "every-line") {
      audit_options.sync = observability::AuditLog::SyncPolicy::kEveryLine;
    } else if (options.audit_log_sync == "interval") {
      audit_options.sync = observability::AuditLog::SyncPolicy::kInterval;
    } else if (options.audit_log_sync == "none") {
      audit_options.sync = observability::AuditLog::SyncPolicy::kNone;
    } else {
      return absl::InvalidArgumentError(
          StrCat("--audit-log-sync '", options.audit_log_sync, "': expected every-line, interval or none"));
    }
    auto opened = observability::AuditLog::Create(std::move(audit_options));
    if (!opened.ok()) {
      return absl::Status(opened.status().code(),
                          StrCat("--audit-log '", options.audit_log, "': ", ToStd(opened.status().message())));
    }
    audit = *std::move(opened);
    spdlog::info("audit log: {}", options.audit_log);
  }

  admission::Authenticator::Options auth_options;
  if (!options.api_keys_file.empty()) {
    admission::ApiKeyStore::Options key_options;
    key_options.path = options.api_keys_file;
    key_options.on_reload = [](const absl::Status& status) { ReportReload("API key file", status); };
    auto keys = admission::ApiKeyStore::Create(std::move(key_options));
    if (!keys.ok()) {
      return absl::Status(keys.status().code(),
                          StrCat("--api-keys-file '", options.api_keys_file, "': ", ToStd(keys.status().message())));
    }
    spdlog::info("authentication: {} API key(s) from {}", (*keys)->size(), options.api_keys_file);
    auth_options.api_keys = *std::move(keys);
  }
  if (!options.jwt_jwks_file.empty()) {
    if (options.jwt_issuers.empty() || options.jwt_audiences.empty()) {
      return absl::InvalidArgumentError("--jwt-jwks-file needs --jwt-issuer and --jwt-audience");
    }
    if (options.jwt_clock_skew_seconds < 0 || options.jwt_clock_skew_seconds > 300) {
      return absl::InvalidArgumentError("--jwt-clock-skew-seconds must be 0..300");
    }
    admission::JwtVerifier::Options jwt_options;
    jwt_options.keys_path = options.jwt_jwks_file;
    jwt_options.issuers = options.jwt_issuers;
    jwt_options.audiences = options.jwt_audiences;
    jwt_options.clock_skew = absl::Seconds(options.jwt_clock_skew_seconds);
    jwt_options.scope_prefix = options.jwt_scope_prefix;
    jwt_options.on_reload = [](const absl::Status& status) { ReportReload("JWT key set", status); };
    auto jwt = admission::JwtVerifier::Create(std::move(jwt_options));
    if (!jwt.ok()) {
      return absl::Status(jwt.status().code(),
                          StrCat("--jwt-jwks-file '", options.jwt_jwks_file, "': ", ToStd(jwt.status().message())));
    }
    spdlog::info("authentication: JWT bearer tokens, {} key(s) from {}", (*jwt)->keys()->size(),
                 options.jwt_jwks_file);
    auth_options.jwt = *std::move(jwt);
  }
  for (const std::string& text : options.mtls_grants) {
    ASSIGN_OR_RETURN(auto grant, ParseMtlsGrant(text));
    auth_options.mtls_grants.push_back(std::move(grant));
  }
  auth_options.enabled = auth_options.api_keys || auth_options.jwt || !auth_options.mtls_grants.empty();
  ASSIGN_OR_RETURN(authenticator, admission::Authenticator::Create(std::move(auth_options)));

  const bool tls_on = !options.tls_cert_file.empty() || !options.tls_key_file.empty();
  if (!options.mtls_grants.empty() && options.tls_client_ca_file.empty()) {
    return absl::InvalidArgumentError("--mtls-grant needs client certificates: set --tls-client-ca-file");
  }
  if (tls_on || !options.tls_client_ca_file.empty()) {
    admission::TlsFiles files;
    files.cert_chain_path = options.tls_cert_file;
    files.private_key_path = options.tls_key_file;
    files.client_ca_path = options.tls_client_ca_file;
    ASSIGN_OR_RETURN(files.client_cert, ParseClientCertMode(options));
    RETURN_IF_ERROR(admission::ValidateTlsFiles(files));
    const absl::Duration interval = absl::Seconds(std::max(0.1, options.tls_reload_seconds));
    if (options.http_port >= 0) {
      admission::TlsContextProvider::Options tls_options;
      tls_options.files = files;
      tls_options.check_interval = interval;
      tls_options.on_reload = [](const absl::Status& status) { ReportReload("HTTP TLS certificate", status); };
      ASSIGN_OR_RETURN(http_tls, admission::TlsContextProvider::Create(std::move(tls_options)));
    }
    if (options.grpc_port >= 0) {
      admission::GrpcTlsCredentials::Options tls_options;
      tls_options.files = files;
      tls_options.check_interval = interval;
      tls_options.on_reload = [](const absl::Status& status) { ReportReload("gRPC TLS certificate", status); };
      ASSIGN_OR_RETURN(grpc_tls, admission::GrpcTlsCredentials::Create(std::move(tls_options)));
    }
    const admission::CertificateInfo certificate =
        http_tls ? http_tls->certificate() : grpc_tls ? grpc_tls->certificate() : admission::CertificateInfo{};
    spdlog::info("TLS: certificate '{}' (serial {}) valid until {}; client certificates {}", certificate.subject,
                 certificate.serial_hex, absl::FormatTime(certificate.not_after),
                 options.tls_client_ca_file.empty() ? "not requested" : options.tls_client_cert.empty() ? "required" : options.tls_client_cert);
  }

  frontend::AccessControl::Options access_options;
  access_options.authenticator = authenticator.get();
  access_options.authorizer.open_health = options.auth_health_open;
  access_options.authorizer.open_metrics = !options.metrics_auth;
  access_options.audit = audit.get();
  access = std::make_unique<frontend::AccessControl>(access_options);

  // Said loudly, once, at start: who can reach this server can use it.
  std::vector<std::string> exposed;
  if (options.http_port >= 0 && !IsLoopback(options.http_address)) exposed.push_back("HTTP on " + options.http_address);
  if (options.grpc_port >= 0 && !IsLoopback(options.grpc_address)) exposed.push_back("gRPC on " + options.grpc_address);
  // The metrics port has no TLS; it is named only when nothing guards it.
  if (options.metrics_port >= 0 && !IsLoopback(options.metrics_address) &&
      (!authenticator->enabled() || !options.metrics_auth)) {
    exposed.push_back("metrics on " + options.metrics_address);
  }
  if (!exposed.empty()) {
    std::string list;
    for (const auto& item : exposed) list += (list.empty() ? "" : ", ") + item;
    if (!authenticator->enabled()) {
      spdlog::warn("SECURITY: reachable beyond this host ({}) with NO AUTHENTICATION: anyone who reaches the "
                   "server can run, load and unload models and change the logs. For trusted networks only; "
                   "otherwise bind 127.0.0.1 or set --api-keys-file / --jwt-jwks-file (docs/security.md)",
                   list);
    } else if (!tls_on) {
      spdlog::warn("SECURITY: reachable beyond this host ({}) WITHOUT TLS: credentials and data travel in clear "
                   "text; set --tls-cert-file and --tls-key-file (docs/security.md)",
                   list);
    }
  }
  if (authenticator->enabled()) {
    spdlog::info("authentication on: health probes {}, metrics {}", options.auth_health_open ? "open" : "need a credential",
                 options.metrics_auth ? "need the metrics scope" : "open");
  }
  return absl::OkStatus();
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
  RETURN_IF_ERROR(MakeRateLimits(options, impl->metrics.get(), &impl->rate_limit_lease, &impl->rate_limiter));
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
  if (options.http_port >= 0) {
    frontend::HttpServer::Options http;
    http.address = options.http_address;
    http.port = static_cast<uint16_t>(options.http_port);
    http.threads = options.http_threads;
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
    spdlog::info("HTTP listening on {}:{}{}", options.http_address, impl->http->port(),
                 impl->http_tls ? " (TLS)" : "");
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
