// SPDX-License-Identifier: Apache-2.0
// Server: wires the modules together (wiring only; no request logic here).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "alerts/alert_flags.h"
#include "retrieval/collection_flags.h"

namespace ortserve::server {

// The CPUs this process may run on: its affinity mask, within the
// container's CPU quota (cgroup v2's cpu.max, rounded up) when it has one.
int AvailableCpus();

struct ServerOptions {
  std::string model_repository;
  // A repository holding only model.onnx (and config.pbtxt) at its top level,
  // as KServe's storage initializer leaves a single-file storageUri, serves
  // it as this model, version 1 (repository/single_model_layout.h).
  std::string model_name = "model";
  std::string model_staging_dir;  // Where that layout is staged; "": the temporary folder.
  std::string http_address = "0.0.0.0";
  int http_port = 8000;       // 0: any free port; -1: HTTP off.
  int http_threads = 0;       // 0: one per CPU this process may use (AvailableCpus), at most 4.
  size_t http_max_body_bytes = 64u << 20;
  double http_idle_timeout_seconds = 60;
  size_t http_max_connections = 0;  // 0: three quarters of the open-files limit.
  std::string grpc_address = "0.0.0.0";
  int grpc_port = 8001;       // -1: gRPC off.
  size_t grpc_max_message_bytes = 64u << 20;
  std::string metrics_address = "0.0.0.0";
  int metrics_port = 8002;    // -1: metrics off.
  int model_load_threads = 4;
  // How the served models follow the repository: "none", "poll" or "explicit".
  std::string model_control_mode = "none";
  int repository_poll_secs = 15;  // poll mode: seconds between polls; 0: never.
  std::vector<std::string> load_models;  // explicit mode: loaded at start ("*": all).
  // Lazy models are evicted (least recently used first) while the loaded
  // versions' weights exceed this; 0: no budget.
  uint64_t model_memory_budget_bytes = 0;
  // The response cache shared by models with response_cache { enable: true }; 0: off.
  size_t response_cache_bytes = size_t{256} << 20;
  // Text pipelines (issue 5).
  int tokenizer_threads = 0;                       // Tokenization workers; 0: one per core.
  std::string sae_model = "sae_classifier";        // POST /api/v1/sae/analyze; "": off.
  std::string embed_model = "text_embedding";      // TEI /embed, OpenAI /v1/embeddings fallback; "": off.
  std::string predict_model;                       // TEI /predict; "": the SAE model.
  size_t sae_max_report_chars = 20000;
  // SAE alerts to the clinical team's webhooks through a durable outbox
  // (docs/alerts.md); off unless a webhook is configured.
  alerts::AlertFlags alert_flags;
  // Vector collections (docs/retrieval.md); off unless --collections-dir is set.
  retrieval::CollectionFlags collection_flags;
  // Audit lines of SAE verdicts carry the raw patient id instead of its keyed
  // hash (docs/alerts.md, "What is recorded").
  bool audit_raw_patient_id = false;             // Longer reportText gets 400.
  // Conversation sessions of /v1/chat/completions (docs/generation.md).
  size_t chat_sessions = 1024;                 // sessions held, at most (least recently used out); 0: off
  size_t chat_session_turns = 32;              // messages kept per session
  int64_t chat_session_tokens = 2048;          // tokens kept per session
  size_t chat_session_bytes = 64 << 10;        // text bytes kept per session
  int64_t chat_session_ttl_seconds = 1800;     // a session unused this long is gone
  std::string log_level = "info";
  std::string log_format = "json";  // "json" or "text".
  bool access_log = false;
  // Readiness: these models must be READY (empty: ready once start-up loading is done).
  std::vector<std::string> required_models;
  // Triton's --strict-readiness: not ready while a model failed to load.
  bool strict_readiness = false;
  // Triton's --exit-on-error: start-up fails when a model failed to load.
  bool exit_on_error = false;
  // Who may register system shared memory: "off", "loopback" (clients on a
  // loopback connection) or "any"; and the prefix keys must carry.
  std::string system_shared_memory = "loopback";
  std::string shared_memory_key_prefix;
  // Export Triton's nv_* metric names besides ortserve's own (docs/triton.md).
  bool triton_metrics = false;
  // Admission (admission/admission.h): requests in flight at once, the
  // memory they may hold (0: a quarter of the machine's or the container's
  // memory), and requests of one model in flight (0: no bound).
  uint64_t max_inflight_requests = 4096;
  uint64_t max_inflight_bytes = 0;
  uint64_t max_model_inflight = 0;
  // Rate limits (admission/rate_limit.h), each "RPS[:BURST]"; empty: off.
  // Per model: "MODEL=RPS[:BURST]" entries, and "RPS[:BURST]" for the others.
  // The global limit is shared by replicas through Redis at rate_limit_redis
  // ("host:port") when set, and enforced locally while Redis is unreachable.
  std::string rate_limit_per_client;
  std::vector<std::string> rate_limit_per_model;
  std::string rate_limit_global;
  std::string rate_limit_redis;
  std::string rate_limit_redis_key = "ortserve:ratelimit:global";
  size_t rate_limit_max_clients = 100000;
  // SIGTERM: how long readiness is false while requests are still served and
  // connections accepted, so that load balancers that poll readiness stop
  // sending before the listeners close (0: close at once).
  double shutdown_delay_seconds = 0;
  // SIGTERM: how long in-flight requests may take to drain before exit.
  double shutdown_grace_seconds = 30;
  // What the binary was built from, for the ortserve_build_info metric.
  std::string build_commit = "unknown";
  // Histogram buckets, comma-separated (empty: the defaults in docs/metrics.md).
  std::string latency_buckets;
  std::string batch_size_buckets;
  std::string response_bytes_buckets;
  // Tracing: OTLP/HTTP JSON collector URL (e.g. http://collector:4318/v1/traces).
  std::string otlp_endpoint;
  double trace_sampling_ratio = 0;  // New root traces sampled; a traceparent's flag wins.
  size_t trace_buffer_spans = 4096;
  bool enable_profiling = false;    // GET /v2/admin/profile/{cpu,heap} on the HTTP port.
  bool console = true;              // GET /console on the HTTP port (docs/console.md).
  int ort_log_severity = 3;
  int ort_intra_op_threads = 0;  // The shared intra-op pool; 0: one thread per core.
  int ort_inter_op_threads = 0;
  bool ort_allow_spinning = true;

  // --- Security (issue 16; docs/security.md) ---
  // Authentication is on when a credential source is set: an API key file,
  // a JWT key set (JWKS), or an mTLS grant.
  std::string api_keys_file;
  std::string jwt_jwks_file;
  std::vector<std::string> jwt_issuers;    // Accepted `iss`; required with a JWKS file.
  std::vector<std::string> jwt_audiences;  // Accepted `aud`; required with a JWKS file.
  int jwt_clock_skew_seconds = 60;         // At most 300.
  std::string jwt_scope_prefix;            // e.g. "ortserve:"; empty: every scope counts.
  // "SUBJECT|scopes[|models[|tenant]]": a verified client certificate's
  // subject (RFC 2253, or "*") and what it grants.
  std::vector<std::string> mtls_grants;
  bool auth_health_open = true;  // Health probes need no credential.
  bool metrics_auth = true;      // With authentication on, /metrics needs the metrics scope (Basic auth).
  // TLS on HTTP and gRPC: certificate chain and key (PEM); client CA for mTLS.
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;
  std::string tls_client_cert;  // "none", "optional", "require"; empty: require with a client CA.
  double tls_reload_seconds = 5;  // How often the TLS files are checked for a change.
  // The audit log (JSON lines): path, size rotation (0: off), sync policy.
  std::string audit_log;
  uint64_t audit_log_max_bytes = 0;
  std::string audit_log_sync = "every-line";  // "every-line", "interval" or "none".
};

// Thread-safe.
class Server {
 public:
  // Loads the repository, then opens the front ends. Models that fail to load
  // are reported and skipped; a repository that is not a directory, or a port
  // that cannot be bound, is an error.
  static absl::StatusOr<std::unique_ptr<Server>> Start(const ServerOptions& options);
  ~Server();

  // Readiness off for shutdown_delay_seconds while requests are still served,
  // then new work refused, listening sockets closed, admitted requests
  // drained (bounded by shutdown_grace_seconds), then front ends closed and
  // models released. Idempotent.
  void Stop();

  // SIGHUP: reopens the audit log (after logrotate renamed it) and re-reads
  // the API key, JWT key set and TLS files now.
  void Reload();

  uint16_t http_port() const;
  uint16_t grpc_port() const;

 private:
  struct Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ortserve::server
