// SPDX-License-Identifier: Apache-2.0
// GrpcServer: the KServe v2 gRPC front end (`inference.GRPCInferenceService`,
// wire-compatible with Triton's clients) plus `grpc.health.v1.Health`, on
// gRPC's callback (reactor) API: no thread per call or per stream.
//
// ModelInfer decodes into an InferRequest whose raw inputs view the request
// message (the message lives in a reference-counted holder that the
// InferRequest shares), asks InferenceService::Infer, and answers with
// raw_output_contents. The RPC's deadline becomes the request's deadline;
// a cancelled RPC marks the request cancelled so the scheduler drops it.
// ModelStreamInfer answers each inference request of the stream in request
// order; a request to a model with a generation block is answered by its
// tokens, as they come (generate_stream.h). A failed request answers with
// error_message and the stream continues.
// Errors are absl codes, which are gRPC codes (the same numbers).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/support/status.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "admission/admission.h"
#include "frontend/inference_service.h"

namespace ortserve::retrieval {
class CollectionStore;
}  // namespace ortserve::retrieval

namespace ortserve::frontend {

class AccessControl;

// Thread-safe: Start and Stop may be called from any thread, once each.
class GrpcServer {
 public:
  struct Options {
    std::string address = "0.0.0.0";
    uint16_t port = 8001;  // 0: any free port; see port().
    // Largest request message accepted; larger ones get RESOURCE_EXHAUSTED
    // (from gRPC itself). Responses are not limited.
    size_t max_message_bytes = 64u << 20;
    // Requests of one stream admitted before their answers are written;
    // reading pauses beyond it (back-pressure on a fast sender).
    int max_stream_in_flight = 64;
    // How long Stop waits for calls in flight before cancelling them.
    absl::Duration shutdown_grace = absl::Seconds(5);
    InferenceService* service = nullptr;  // Not owned; outlives the server.
    // Where each ModelInfer message takes its permit (not owned; outlives the
    // server); null: no admission.
    admission::Admission* admission = nullptr;
    // Authentication from the call's metadata ("authorization",
    // "x-api-key") or its verified client certificate, authorization by
    // route class, the audit log (not owned; outlives the server); null:
    // every call is served as before authentication existed.
    // grpc.health.v1.Health stays open whatever it says.
    const AccessControl* access = nullptr;
    // TLS (admission::GrpcTlsCredentials); null: insecure (plain HTTP/2).
    std::shared_ptr<grpc::ServerCredentials> credentials{};
    // Vector collections: ortserve.retrieval.v1.Collections (docs/retrieval.md);
    // null: not served. Not owned; outlives the server.
    retrieval::CollectionStore* collections = nullptr;
  };

  // Binds and starts serving. The health service starts NOT_SERVING; see
  // SetServing. Errors: InvalidArgument without a service, Unavailable when
  // the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<GrpcServer>> Start(Options options);

  // Stops accepting calls, waits up to shutdown_grace for calls in flight,
  // cancels the rest, and returns when every call has finished.
  ~GrpcServer();
  void Stop();

  // The health service's status for "" and "inference.GRPCInferenceService".
  void SetServing(bool serving);

  // The bound port (the real one when Options::port was 0).
  uint16_t port() const;

 private:
  struct Impl;
  explicit GrpcServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// absl and gRPC share their status codes; the message is kept.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace ortserve::frontend
