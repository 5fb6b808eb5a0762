// SPDX-License-Identifier: Apache-2.0
// ortserve: serves ONNX models over KServe v2 REST and gRPC.
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <cctype>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/synchronization/mutex.h"
#include "backend/ort/ort_session_factory.h"
#include "frontend/inference_service.h"
#include "server/build_info.h"
#include "server/server.h"

// What shutdown may take past --shutdown-delay-seconds and
// --shutdown-grace-seconds before the process ends regardless: the loaders'
// bounded stop (10 s, ModelManager::Options::stop_loads_timeout) and the rest
// of the teardown.
constexpr double kShutdownStopLoadsSeconds = 30.0;

int main(int argc, char** argv) {
  // Debian's abseil is built without NDEBUG, so every absl::Mutex (ours and
  // gRPC's) would keep a lock-order graph for deadlock detection: several
  // lock/unlock round trips into a global graph per request. The unit tests
  // keep the detection on; the server does not pay for it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  ortserve::server::ServerOptions options;
  CLI::App app{"ortserve: an ONNX Runtime inference server speaking KServe v2 (REST and gRPC)"};
  options.build_commit = std::string(ortserve::server::BuildCommit());
  app.set_version_flag("--version",
                       "ortserve " + std::string(ortserve::frontend::InferenceService::ServerVersion()) +
                           " (commit " + options.build_commit + ", ONNX Runtime " +
                           ortserve::backend::OrtSessionFactory::RuntimeVersion() + ")",
                       "Print the version, the git commit it was built from and the ONNX Runtime version, then exit");
  app.add_option("--model-repository", options.model_repository,
                 "Model repository: <repo>/<model>/config.pbtxt and <repo>/<model>/<version>/model.onnx")
      ->required();
  app.add_option("--model-name", options.model_name,
                 "When the repository holds model.onnx at its top level (KServe's single-file "
                 "storageUri), the name it is served under, as version 1; ignored for a Triton layout")
      ->capture_default_str();
  app.add_option("--model-staging-dir", options.model_staging_dir,
                 "Where that single-file layout is staged as links (default: the temporary folder)");
  app.add_option("--http-address", options.http_address, "Address the HTTP server binds")
      ->capture_default_str();
  app.add_option("--http-port", options.http_port, "HTTP port; 0 picks a free port, -1 disables HTTP")
      ->capture_default_str();
  app.add_option("--http-thread-count,--http-threads", options.http_threads,
                 "HTTP I/O threads (event loops; requests never hold one while a model runs); 0: one per CPU "
                 "the process may use (affinity and container CPU quota), at most 4")
      ->capture_default_str()
      ->check(CLI::Range(0, 256));
  app.add_option("--http-max-input-size", options.http_max_body_bytes,
                 "Largest HTTP request body accepted, in bytes; larger ones get 413")
      ->capture_default_str();
  app.add_option("--http-idle-timeout-seconds", options.http_idle_timeout_seconds,
                 "Close an HTTP connection whose request or response has not moved for this long")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--http-max-connections", options.http_max_connections,
                 "HTTP connections open at once; past it new ones serve only health probes (32 more), then "
                 "are answered 503 and closed; 0: three quarters of the open-files limit")
      ->capture_default_str();
  app.add_option("--grpc-address", options.grpc_address, "Address the gRPC server binds")->capture_default_str();
  app.add_option("--grpc-port", options.grpc_port, "gRPC port; 0 picks a free port, -1 disables gRPC")
      ->capture_default_str();
  app.add_option("--grpc-max-message-size", options.grpc_max_message_bytes,
                 "Largest gRPC message accepted, in bytes; larger ones get RESOURCE_EXHAUSTED")
      ->capture_default_str();
  app.add_option("--metrics-address", options.metrics_address, "Address the metrics server binds")
      ->capture_default_str();
  app.add_option("--metrics-port", options.metrics_port, "Prometheus /metrics port; -1 disables it")
      ->capture_default_str();
  app.add_option("--model-load-thread-count,--model-load-threads", options.model_load_threads,
                 "Loader threads: load and warm up models at start, on reload and on explicit load")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  app.add_option("--model-control-mode", options.model_control_mode,
                 "none: serve what the repository holds at start; poll: also follow its changes "
                 "(--repository-poll-secs); explicit: load only --load-model models, then load/unload "
                 "through the repository API")
      ->capture_default_str()
      ->check(CLI::IsMember({"none", "poll", "explicit"}));
  app.add_option("--repository-poll-secs", options.repository_poll_secs,
                 "poll mode: seconds between repository polls (changes are found by content); 0: never")
      ->capture_default_str()
      ->check(CLI::Range(0, 86400));
  app.add_option("--load-model", options.load_models,
                 "explicit mode: a model to load at start (repeatable; '*' loads all)");
  app.add_option("--tokenizer-threads", options.tokenizer_threads,
                 "Threads that tokenize text for text pipeline models; 0: one per core")
      ->capture_default_str()
      ->check(CLI::Range(0, 1024));
  app.add_option("--sae-model", options.sae_model,
                 "Model that answers POST /api/v1/sae/analyze (a TEXT_CLASSIFICATION text_pipeline); "
                 "empty: endpoint off")
      ->capture_default_str();
  app.add_option("--embed-model", options.embed_model,
                 "Model that answers TEI POST /embed and OpenAI POST /v1/embeddings without a 'model' "
                 "field (an EMBEDDING text_pipeline); empty: off")
      ->capture_default_str();
  app.add_option("--predict-model", options.predict_model,
                 "Model that answers TEI POST /predict (a TEXT_CLASSIFICATION text_pipeline); empty: "
                 "the --sae-model");
  app.add_option("--sae-max-report-chars", options.sae_max_report_chars,
                 "Longest reportText the SAE endpoint accepts, in characters; longer gets 400")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{1} << 24));
  app.add_option("--log-level", options.log_level, "trace, debug, info, warn, error or off")
      ->capture_default_str()
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  app.add_option("--log-format", options.log_format, "json: one JSON object a line; text: readable lines")
      ->capture_default_str()
      ->check(CLI::IsMember({"json", "text"}));
  app.add_flag("--access-log", options.access_log, "Log one line per request (also: POST /v2/logging access_log)");
  app.add_option("--response-cache-bytes", options.response_cache_bytes,
                 "Byte budget of the response cache used by models with response_cache { enable: true }; "
                 "0: no caching")
      ->capture_default_str();
  app.add_option("--model-memory-budget-bytes", options.model_memory_budget_bytes,
                 "Unload lazy models, least recently used first, while loaded model weights exceed this; "
                 "0: no budget")
      ->capture_default_str();
  app.add_option("--required-model", options.required_models,
                 "A model that must be READY for /v2/health/ready (repeatable); without any, ready once "
                 "start-up loading is done");
  app.add_flag("--strict-readiness", options.strict_readiness,
               "Triton's strict readiness (also --strict-readiness=false): /v2/health/ready is false while any "
               "model failed to load and has no READY version");
  app.add_flag("--triton-metrics", options.triton_metrics,
               "Also export Triton's metric names (nv_inference_*, and nv_gpu_* with a GPU) besides ortserve's "
               "own (docs/triton.md)");
  app.add_option("--system-shared-memory", options.system_shared_memory,
                 "Who may register system shared memory regions: off, loopback (clients connected over a "
                 "loopback address) or any")
      ->check(CLI::IsMember({"off", "loopback", "any"}))
      ->capture_default_str();
  app.add_option("--shared-memory-key-prefix", options.shared_memory_key_prefix,
                 "Only shared memory keys that begin with '/' and this prefix may be registered (empty: any key)");
  app.add_flag("--exit-on-error", options.exit_on_error,
               "Exit (status 1) at start-up when any model failed to load, instead of serving the others");
  app.add_option("--max-inflight-requests", options.max_inflight_requests,
                 "Requests in flight at once over HTTP and gRPC; more are refused with 503 (0: no bound)")
      ->capture_default_str();
  app.add_option("--max-inflight-bytes", options.max_inflight_bytes,
                 "Memory the requests in flight may hold (bodies and their decoding); more are refused with 503 "
                 "(0: a quarter of the machine's or container's memory)")
      ->capture_default_str();
  app.add_option("--max-model-inflight", options.max_model_inflight,
                 "Requests of one model in flight at once (queued or running); more get 429 (0: no bound)")
      ->capture_default_str();
  // Rate limits (docs/security.md#limits).
  app.add_option("--rate-limit-per-client", options.rate_limit_per_client,
                 "Token bucket per client (its identity, else its address): RPS[:BURST]; over it, 429 with "
                 "Retry-After (empty: off)");
  app.add_option("--rate-limit-per-model", options.rate_limit_per_model,
                 "Token bucket per model: MODEL=RPS[:BURST] (repeatable), or RPS[:BURST] for every model not "
                 "named; over it, 429 with Retry-After (empty: off)");
  app.add_option("--rate-limit-global", options.rate_limit_global,
                 "Token bucket for the whole server (shared by replicas with --rate-limit-redis): RPS[:BURST]; "
                 "over it, 429 with Retry-After (empty: off)");
  app.add_option("--rate-limit-redis", options.rate_limit_redis,
                 "host:port of a Redis server through which replicas share --rate-limit-global; while it is "
                 "unreachable the global limit is enforced by each replica alone (empty: local only)");
  app.add_option("--rate-limit-redis-key", options.rate_limit_redis_key,
                 "Redis key of the shared global bucket (replicas sharing a limit use the same key)")
      ->capture_default_str();
  app.add_option("--rate-limit-max-clients", options.rate_limit_max_clients,
                 "Clients whose bucket is remembered; past it the least recently seen is forgotten")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{100000000}));
  app.add_option("--shutdown-delay-seconds", options.shutdown_delay_seconds,
                 "On SIGTERM/SIGINT: readiness goes false but requests are still served (and connections "
                 "accepted) for this long, so load balancers polling readiness stop sending first; then the "
                 "drain (--shutdown-grace-seconds)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 3600.0));
  app.add_option("--shutdown-grace-seconds", options.shutdown_grace_seconds,
                 "On SIGTERM/SIGINT: readiness goes false, then in-flight requests get this long to finish")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 3600.0));
  app.add_option("--metrics-latency-buckets", options.latency_buckets,
                 "Comma-separated upper bounds (seconds) of the latency histograms");
  app.add_option("--metrics-batch-size-buckets", options.batch_size_buckets,
                 "Comma-separated upper bounds of ortserve_batch_size");
  app.add_option("--metrics-response-bytes-buckets", options.response_bytes_buckets,
                 "Comma-separated upper bounds (bytes) of ortserve_response_bytes");
  app.add_option("--otlp-endpoint", options.otlp_endpoint,
                 "OTLP/HTTP (JSON) trace collector URL, e.g. http://127.0.0.1:4318/v1/traces");
  app.add_option("--trace-sampling-ratio", options.trace_sampling_ratio,
                 "Fraction of new traces sampled (requests with a traceparent follow its sampled flag)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--trace-buffer-spans", options.trace_buffer_spans,
                 "Spans buffered for export; more are dropped (and counted), never waited for")
      ->capture_default_str();
  app.add_flag("--enable-profiling", options.enable_profiling,
               "Serve GET /v2/admin/profile/cpu?seconds=N (a pprof CPU profile of the server) and "
               "/v2/admin/profile/heap (a tcmalloc heap sample)");
  app.add_option("--console", options.console,
                 "Serve the live web console at GET /console on the HTTP port (its data needs the admin scope "
                 "once authentication is on; docs/console.md); false turns it off")
      ->capture_default_str();
  app.add_option("--ort-log-severity", options.ort_log_severity,
                 "ONNX Runtime's own log severity: 0 verbose .. 4 fatal")
      ->capture_default_str()
      ->check(CLI::Range(0, 4));
  app.add_option("--intra-op-thread-count", options.ort_intra_op_threads,
                 "Threads in the intra-op pool that models share (models whose config sets "
                 "intra_op_thread_count get their own); 0: one per core")
      ->capture_default_str()
      ->check(CLI::Range(0, 1024));
  app.add_option("--inter-op-thread-count", options.ort_inter_op_threads,
                 "Threads in the shared inter-op pool (parallel execution mode); 0: one per core")
      ->capture_default_str()
      ->check(CLI::Range(0, 1024));
  app.add_option("--ort-allow-spinning", options.ort_allow_spinning,
                 "Let idle ONNX Runtime pool threads spin before sleeping (lower latency, more CPU)")
      ->capture_default_str();
  // --- Security (issue 16; docs/security.md) ---
  app.add_option("--api-keys-file", options.api_keys_file,
                 "API key file (ortserve-keys generate); turns authentication on; re-read when it changes");
  app.add_option("--jwt-jwks-file", options.jwt_jwks_file,
                 "JWT key set (JWKS: HS256 'oct' and RS256 'RSA' keys); turns authentication on; re-read when it "
                 "changes");
  app.add_option("--jwt-issuer", options.jwt_issuers, "An accepted JWT 'iss' (repeatable; required with a JWKS)");
  app.add_option("--jwt-audience", options.jwt_audiences,
                 "An accepted JWT 'aud' (repeatable; required with a JWKS)");
  app.add_option("--jwt-clock-skew-seconds", options.jwt_clock_skew_seconds,
                 "Tolerance for exp, nbf and iat, in seconds")
      ->capture_default_str()
      ->check(CLI::Range(0, 300));
  app.add_option("--jwt-scope-prefix", options.jwt_scope_prefix,
                 "Only JWT scopes with this prefix count, without it (e.g. 'ortserve:')");
  app.add_option("--mtls-grant", options.mtls_grants,
                 "What a verified client certificate grants: 'SUBJECT|scopes[|models[|tenant]]', SUBJECT in RFC "
                 "2253 form or '*' (repeatable); turns authentication on");
  app.add_option("--auth-health-open", options.auth_health_open,
                 "With authentication on, health probes (live, ready, model ready) need no credential")
      ->capture_default_str();
  app.add_option("--metrics-auth", options.metrics_auth,
                 "With authentication on, /metrics needs the metrics scope (HTTP Basic, the credential as "
                 "password); false opens it")
      ->capture_default_str();
  app.add_option("--tls-cert-file", options.tls_cert_file,
                 "TLS certificate chain (PEM) for HTTP and gRPC; reloaded when it changes");
  app.add_option("--tls-key-file", options.tls_key_file, "TLS private key (PEM, unencrypted)");
  app.add_option("--tls-client-ca-file", options.tls_client_ca_file,
                 "CA bundle client certificates must chain to (mutual TLS)");
  app.add_option("--tls-client-cert", options.tls_client_cert,
                 "Client certificates: none, optional or require (default: require with --tls-client-ca-file)")
      ->check(CLI::IsMember({"none", "optional", "require"}));
  app.add_option("--tls-reload-seconds", options.tls_reload_seconds,
                 "How often the TLS files are checked for a change")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 3600.0));
  app.add_option("--audit-log", options.audit_log,
                 "Audit log (JSON lines): model control, admin actions, refused credentials; SIGHUP reopens it");
  app.add_option("--audit-log-max-bytes", options.audit_log_max_bytes,
                 "Rotate the audit log at this size (renamed <path>.<time>-<seq>); 0: never")
      ->capture_default_str();
  app.add_option("--audit-log-sync", options.audit_log_sync,
                 "every-line: fdatasync each line; interval: at most every second; none: leave it to the kernel")
      ->capture_default_str()
      ->check(CLI::IsMember({"every-line", "interval", "none"}));
  // --- end of security ---

  ortserve::alerts::AddAlertFlags(app, &options.alert_flags);
  ortserve::retrieval::AddCollectionFlags(app, &options.collection_flags);
  // Conversation sessions (docs/generation.md): at most sessions x
  // session-bytes of text (64 MiB with the defaults).
  app.add_option("--chat-sessions", options.chat_sessions,
                 "Conversation sessions held for /v1/chat/completions (least recently used out); 0: off")
      ->capture_default_str()
      ->check(CLI::Range(0, 1 << 20));
  app.add_option("--chat-session-turns", options.chat_session_turns, "Messages kept per session")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  app.add_option("--chat-session-tokens", options.chat_session_tokens, "Tokens kept per session")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 24));
  app.add_option("--chat-session-bytes", options.chat_session_bytes, "Text bytes kept per session")
      ->capture_default_str()
      ->check(CLI::Range(1, 64 << 20));
  app.add_option("--chat-session-ttl-secs", options.chat_session_ttl_seconds,
                 "A session unused this long is forgotten")
      ->capture_default_str()
      ->check(CLI::Range(1, 30 * 86400));
  app.add_flag("--audit-raw-patient-id", options.audit_raw_patient_id,
               "Audit lines of SAE verdicts carry the raw patientId instead of its keyed hash "
               "(only where the audit log may hold patient identifiers)");
  // Every option can also come from the environment, ORTSERVE_<FLAG> (upper
  // case, '-' as '_': ORTSERVE_LOG_LEVEL=debug), e.g. from a Kubernetes
  // ConfigMap; a flag on the command line wins over its variable.
  for (CLI::Option* option : app.get_options()) {
    if (option->get_lnames().empty() || option->get_lnames()[0] == "help" || option->get_lnames()[0] == "version") {
      continue;
    }
    std::string name = "ORTSERVE_" + option->get_lnames()[0];
    for (char& c : name) c = c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    option->envname(name);
  }
  CLI11_PARSE(app, argc, argv);

  // Server::Start installs the configured log format; until then, text.
  spdlog::set_level(spdlog::level::from_str(options.log_level));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ ortserve: %v");

  // Connections, models and threads all take descriptors; the common soft
  // limit of 1,024 runs out long before the machine does. Take what the hard
  // limit allows (as nginx's worker_rlimit_nofile and systemd services do).
  if (rlimit files{}; getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    const rlim_t before = files.rlim_cur;
    files.rlim_cur = files.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &files) == 0) {
      spdlog::info("open files limit raised from {} to {}", before, files.rlim_cur);
    }
  }

  // Block the stop signals in every thread; this one waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);  // Reopen the audit log, re-read credential and certificate files.
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto server = ortserve::server::Server::Start(options);
  if (!server.ok()) {
    spdlog::critical("{}", std::string_view(server.status().message().data(), server.status().message().size()));
    return 1;
  }
  int signal = 0;
  while (sigwait(&signals, &signal) == 0 && signal == SIGHUP) (*server)->Reload();
  spdlog::info("received signal {}; shutting down", signal);
  // Shutdown finishes within its deadline whatever a load or a request is
  // doing: past the delay, the drain and the loaders' bounded stop, the
  // process ends anyway (a load stuck inside ONNX Runtime's session creation
  // cannot be cancelled). A repeated SIGTERM does not cut the delay short.
  const double deadline_seconds =
      options.shutdown_delay_seconds + options.shutdown_grace_seconds + kShutdownStopLoadsSeconds;
  std::thread([deadline_seconds] {
    std::this_thread::sleep_for(std::chrono::duration<double>(deadline_seconds));
    spdlog::critical("shutdown did not finish within {:.0f} s; exiting", deadline_seconds);
    spdlog::default_logger()->flush();
    std::_Exit(1);
  }).detach();
  (*server)->Stop();
  return 0;
}
