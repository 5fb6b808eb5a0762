// SPDX-License-Identifier: Apache-2.0
// ortserve: serves ONNX models over KServe v2 REST and gRPC.
#include <spdlog/spdlog.h>

#include <csignal>
#include <iostream>

#include "CLI/CLI.hpp"
#include "server/server.h"

int main(int argc, char** argv) {
  ortserve::server::ServerOptions options;
  CLI::App app{"ortserve: an ONNX Runtime inference server speaking KServe v2 (REST and gRPC)"};
  app.add_option("--model-repository", options.model_repository,
                 "Model repository: <repo>/<model>/config.pbtxt and <repo>/<model>/<version>/model.onnx")
      ->required();
  app.add_option("--http-address", options.http_address, "Address the HTTP server binds")
      ->capture_default_str();
  app.add_option("--http-port", options.http_port, "HTTP port; 0 picks a free port, -1 disables HTTP")
      ->capture_default_str();
  app.add_option("--http-thread-count,--http-threads", options.http_threads,
                 "HTTP I/O threads (event loops; requests never hold one while a model runs)")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  app.add_option("--http-max-input-size", options.http_max_body_bytes,
                 "Largest HTTP request body accepted, in bytes; larger ones get 413")
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
                 "Threads that load models in parallel at start")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  app.add_option("--log-level", options.log_level, "trace, debug, info, warn, error or off")
      ->capture_default_str()
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
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
  CLI11_PARSE(app, argc, argv);

  spdlog::set_level(spdlog::level::from_str(options.log_level));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ ortserve: %v");

  // Block the stop signals in every thread; this one waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto server = ortserve::server::Server::Start(options);
  if (!server.ok()) {
    spdlog::critical("{}", std::string_view(server.status().message().data(), server.status().message().size()));
    return 1;
  }
  int signal = 0;
  sigwait(&signals, &signal);
  spdlog::info("received signal {}; shutting down", signal);
  (*server)->Stop();
  return 0;
}
