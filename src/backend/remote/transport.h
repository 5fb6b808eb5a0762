// SPDX-License-Identifier: Apache-2.0
// How a remote model's calls reach one endpoint: KServe v2 over HTTP or gRPC
// (the client library's non-blocking pools) or TF Serving's REST predict API.
// Internal to backend/remote.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "backend/session.h"
#include "core/infer_request.h"

namespace ortserve::backend::remote {

enum class WireProtocol { kKServeHttp, kKServeGrpc, kTfServingRest };

struct TransportOptions {
  WireProtocol protocol = WireProtocol::kKServeHttp;
  std::string host;
  uint16_t port = 0;
  std::string model_name;     // On the remote.
  std::string model_version;  // Empty: the remote's default.
  absl::Duration timeout = absl::Seconds(10);
  bool json_tensors = false;  // KServe HTTP: JSON data arrays instead of binary tensors.
  // TLS (KServe HTTP and gRPC): the endpoint's certificate is verified
  // against tls_ca_file (empty: the system's CAs) and tls_server_name (empty:
  // host); a client certificate and key for mTLS.
  bool tls = false;
  std::string tls_ca_file, tls_cert_file, tls_key_file, tls_server_name;
  // TF Serving: the tensors the remote takes and returns (it has no KServe
  // metadata route); from the local config.
  ModelSignature signature;
};

// One endpoint. Thread-safe: calls may run concurrently (each transport keeps
// its own pool of keep-alive connections).
class Transport {
 public:
  virtual ~Transport() = default;
  // One inference on the remote model, answered by `request.deadline` at the
  // latest. The response owns its tensors. Errors: the remote's status and
  // message; Unavailable when it cannot be reached; DeadlineExceeded when the
  // deadline passed.
  virtual absl::StatusOr<InferResponse> Infer(const InferRequest& request) = 0;
  // Whether the remote model answers ready.
  virtual absl::StatusOr<bool> Ready() = 0;
  // The remote model's tensors (KServe metadata). Unimplemented for TF
  // Serving, whose tensors come from the config.
  virtual absl::StatusOr<ModelSignature> Metadata() = 0;
};

absl::StatusOr<std::unique_ptr<Transport>> MakeTransport(TransportOptions options);

}  // namespace ortserve::backend::remote
