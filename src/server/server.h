// SPDX-License-Identifier: Apache-2.0
// Server: wires the modules together (wiring only; no request logic here).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace ortserve::server {

struct ServerOptions {
  std::string model_repository;
  std::string http_address = "0.0.0.0";
  int http_port = 8000;       // 0: any free port; -1: HTTP off.
  int http_threads = 4;
  size_t http_max_body_bytes = 64u << 20;
  std::string grpc_address = "0.0.0.0";
  int grpc_port = 8001;       // -1: gRPC off.
  size_t grpc_max_message_bytes = 64u << 20;
  std::string metrics_address = "0.0.0.0";
  int metrics_port = 8002;    // -1: metrics off.
  int model_load_threads = 4;
  std::string log_level = "info";
  int ort_log_severity = 3;
  int ort_intra_op_threads = 0;  // The shared intra-op pool; 0: one thread per core.
  int ort_inter_op_threads = 0;
  bool ort_allow_spinning = true;
};

// Thread-safe.
class Server {
 public:
  // Loads the repository, then opens the front ends. Models that fail to load
  // are reported and skipped; a repository that is not a directory, or a port
  // that cannot be bound, is an error.
  static absl::StatusOr<std::unique_ptr<Server>> Start(const ServerOptions& options);
  ~Server();

  // Readiness off, front ends closed, admitted requests drained, models released.
  void Stop();

  uint16_t http_port() const;
  uint16_t grpc_port() const;

 private:
  struct Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ortserve::server
