// SPDX-License-Identifier: Apache-2.0
// The server's parts, in the order they are built and torn down (private to
// src/server/: server.cc wires and stops them, server_security.cc sets up
// authentication, TLS, the audit log and rate limits from the flags).
#pragma once

#include <memory>
#include <string_view>

#include "absl/status/status.h"
#include "admission/admission.h"
#include "admission/api_keys.h"
#include "admission/authenticator.h"
#include "admission/grpc_tls.h"
#include "admission/jwt.h"
#include "admission/rate_limit.h"
#include "admission/redis_lease.h"
#include "admission/tls_context.h"
#include "alerts/alert_service.h"
#include "alerts/verdict_recorder.h"
#include "backend/ort/ort_session_factory.h"
#include "console/console.h"
#include "console/server_sources.h"
#include "core/status.h"
#include "core/strings.h"
#include "frontend/access_control.h"
#include "frontend/grpc/grpc_server.h"
#include "frontend/http/http_server.h"
#include "frontend/inference_service.h"
#include "generation/session_store.h"
#include "observability/audit_log.h"
#include "observability/logging.h"
#include "observability/metrics.h"
#include "observability/profiler.h"
#include "observability/tracing.h"
#include "pipeline/tokenization_pool.h"
#include "repository/model_manager.h"
#include "repository/single_model_layout.h"
#include "retrieval/collection_store.h"
#include "router/response_cache.h"
#include "server/server.h"

namespace ortserve::server {

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
  // Conversation sessions (null: off): outlive the models, whose decode loops
  // append answered turns, and the front ends.
  std::unique_ptr<generation::SessionStore> chat_sessions;
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
  // The rate limiter from the --rate-limit-* flags (left null when none is
  // set), and the Redis lease of the global limit when --rate-limit-redis is
  // set. Needs `metrics`.
  absl::Status SetUpRateLimits(const ServerOptions& options);
};

// Logs the outcome of a credentials or certificate reload (`what` names the
// file kind): the last good files stay in service when it failed.
void ReportReload(std::string_view what, const absl::Status& status);

}  // namespace ortserve::server
