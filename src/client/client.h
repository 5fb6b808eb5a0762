// SPDX-License-Identifier: Apache-2.0
// ortserve::client::Client: a KServe v2 / Open Inference Protocol client over
// HTTP/REST (JSON or the binary tensor extension) or gRPC, with blocking and
// callback-based calls. It talks to ortserve and to any server that speaks the
// protocol (Triton, KServe runtimes).
//
// Example:
//   ASSIGN_OR_RETURN(auto client, Client::Create({.port = 8001, .protocol = Protocol::kGrpc}));
//   InferRequest request;
//   request.model_name = "iris_classifier";
//   std::vector<float> x = {5.1f, 3.5f, 1.4f, 0.2f};
//   request.inputs.push_back(MakeTensor<float>("input", DataType::kFp32, {1, 4}, x));
//   ASSIGN_OR_RETURN(InferResponse response, client->Infer(request));
//   // response.outputs[i]: name, type, shape, bytes (owned by the response).
//
// Requests and responses are the protocol-neutral types of core/infer_request.h.
// The fields a client sets: model_name, model_version, id, parameters,
// inputs, input_parameters, outputs (name, binary_data, classification,
// parameters), binary_data_output, priority (sent as parameter "priority"
// when non-zero), deadline (tightens the call's timeout) and trace (its
// trace_id and span_id, when the trace id is set, go out as the W3C
// `traceparent` header / metadata, flagged sampled when trace.sampled(), so
// the server's spans join the caller's trace). The others (arrival,
// cancellation, payload) are server-side and ignored.
//
// Errors: every call returns the server's error as an absl::Status: over gRPC
// the status code as is (absl codes are gRPC codes), over HTTP the status
// mapped back (400 InvalidArgument, 404 NotFound, 405/501 Unimplemented,
// 409 AlreadyExists, 413/429 ResourceExhausted, 499 Cancelled, 503 Unavailable,
// 504 DeadlineExceeded, other 4xx FailedPrecondition, other 5xx Internal), with
// the server's `error` message. Transport failures: Unavailable (cannot
// connect, connection lost), DeadlineExceeded (ClientOptions::timeout passed).
// A response the client cannot parse: Internal, naming the field.
//
// Thread-safety: Client is thread-safe; share one per server. Over HTTP it
// keeps a pool of keep-alive connections (one per concurrent call) served by
// one I/O thread; over gRPC one channel. Destroying a Client waits for its
// in-flight asynchronous calls to finish (each is bounded by the timeout), so
// a Client must not be destroyed from one of its own callbacks.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/data_type.h"
#include "core/infer_request.h"
#include "core/tensor.h"

namespace ortserve::client {

enum class Protocol {
  kHttp,  // KServe v2 REST over HTTP/1.1 (Triton's binary tensor extension optional).
  kGrpc,  // KServe v2 gRPC, service inference.GRPCInferenceService.
};

// "http" / "grpc"; InvalidArgument naming the value otherwise.
absl::StatusOr<Protocol> ParseProtocol(std::string_view name);
std::string_view ProtocolName(Protocol protocol);

struct ClientOptions {
  std::string address = "127.0.0.1";  // Host name or IP address of the server.
  uint16_t port = 8000;
  Protocol protocol = Protocol::kHttp;
  // Limit for one call, connecting included; absl::InfiniteDuration() for none.
  absl::Duration timeout = absl::Seconds(60);
  // HTTP only: send inputs and ask for outputs with the binary tensor
  // extension (as tritonclient does). false sends JSON `data` arrays, except
  // for FP16/BF16 tensors and BYTES tensors that are not valid UTF-8, which
  // JSON cannot carry exactly and are always sent binary.
  bool binary_http = true;
  // gRPC only: the largest message accepted or sent (bytes); -1 for no limit.
  int max_grpc_message_bytes = -1;
  // TLS (https, gRPC over TLS): the server's certificate is verified against
  // tls_ca_file (PEM; empty: the system's CAs) and the address. A client
  // certificate and key (PEM) for servers that ask for one (mTLS).
  bool tls = false;
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
  // The name the server's certificate must carry, also sent as the TLS SNI
  // name; empty: `address`. For a server reached by an address its
  // certificate does not name (an IP, a tunnel). Verification stays on.
  std::string tls_server_name;
  // Credentials, sent with every call (docs/security.md): an API key
  // (X-API-Key / x-api-key) or a bearer token (Authorization: Bearer, a JWT
  // or an API key). At most one.
  std::string api_key;
  std::string bearer_token;
};

struct ServerMetadata {
  std::string name;
  std::string version;
  std::vector<std::string> extensions;
};

// A tensor as model metadata shows it; -1 marks a variable dimension.
struct TensorMetadata {
  std::string name;
  DataType type = DataType::kInvalid;
  Shape shape;
};

struct ModelMetadata {
  std::string name;
  std::vector<std::string> versions;
  std::string platform;
  std::vector<TensorMetadata> inputs;
  std::vector<TensorMetadata> outputs;
};

// One model version of the repository index.
struct ModelIndexEntry {
  std::string name;
  std::string version;  // May be empty (a model that failed before any version was known).
  std::string state;    // "READY", "LOADING", "UNAVAILABLE", ...
  std::string reason;   // Why it is not ready; empty when it is.
};

// Called exactly once per asynchronous call, on a thread of the client (the
// HTTP I/O thread or a gRPC completion thread). It must not block and must not
// make blocking calls on the same Client (those return FailedPrecondition on
// the HTTP I/O thread instead of deadlocking).
using InferDone = absl::AnyInvocable<void(absl::StatusOr<InferResponse>) &&>;

class Client {
 public:
  // Builds a client; does not connect (the first call does). InvalidArgument
  // for an empty address or port 0.
  static absl::StatusOr<std::unique_ptr<Client>> Create(ClientOptions options);
  virtual ~Client() = default;

  virtual Protocol protocol() const = 0;

  // Health. true/false when the server answers (HTTP: 200 is true, any other
  // status without an error body is false); an error when it cannot be
  // reached or reports one.
  virtual absl::StatusOr<bool> ServerLive() = 0;
  virtual absl::StatusOr<bool> ServerReady() = 0;
  // Empty `version`: the version the server's policy serves.
  virtual absl::StatusOr<bool> ModelReady(std::string_view name, std::string_view version = "") = 0;

  virtual absl::StatusOr<ServerMetadata> GetServerMetadata() = 0;
  // NotFound for an unknown model or version.
  virtual absl::StatusOr<ModelMetadata> GetModelMetadata(std::string_view name,
                                                         std::string_view version = "") = 0;
  // Every model version the server knows and its state.
  virtual absl::StatusOr<std::vector<ModelIndexEntry>> RepositoryIndex() = 0;

  // Runs one inference and blocks until its response. Output tensors own
  // their bytes (they share the received message). Errors: as the class
  // comment says; e.g. NotFound for an unknown model, InvalidArgument naming
  // the tensor for a wrong shape or type.
  virtual absl::StatusOr<InferResponse> Infer(const InferRequest& request) = 0;

  // Starts one inference and returns at once; `done` receives the response or
  // the error (see InferDone). The request is encoded before InferAsync
  // returns, so `request` may be discarded afterwards.
  virtual void InferAsync(const InferRequest& request, InferDone done) = 0;
};

// The status an HTTP error response stands for (see the class comment).
absl::StatusCode StatusCodeForHttpStatus(unsigned http_status);

}  // namespace ortserve::client
