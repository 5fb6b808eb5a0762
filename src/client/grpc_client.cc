// SPDX-License-Identifier: Apache-2.0
// The gRPC transport: the generated stub, blocking for the blocking calls and
// gRPC's callback API for InferAsync (no thread waits per call).
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "client/grpc_codec.h"
#include "client/transports.h"
#include "core/status.h"
#include "core/strings.h"
#include "grpcpp/grpcpp.h"
#include "proto/grpc_service.grpc.pb.h"

namespace ortserve::client {
namespace {

// gRPC codes are absl codes (same numbers, same meaning).
absl::Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

void SetDeadline(grpc::ClientContext* context, absl::Time deadline) {
  if (deadline != absl::InfiniteFuture()) context->set_deadline(absl::ToChronoTime(deadline));
}

class GrpcClient final : public Client {
 public:
  GrpcClient(ClientOptions options, std::shared_ptr<grpc::ChannelCredentials> credentials)
      : options_(std::move(options)) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(options_.max_grpc_message_bytes);
    args.SetMaxSendMessageSize(options_.max_grpc_message_bytes);
    if (credentials && !options_.tls_server_name.empty()) args.SetSslTargetNameOverride(options_.tls_server_name);
    const bool ipv6 = options_.address.find(':') != std::string::npos;
    const std::string target = ipv6 ? StrCat("[", options_.address, "]:", options_.port)
                                    : StrCat(options_.address, ":", options_.port);
    channel_ = grpc::CreateCustomChannel(target, credentials ? credentials : grpc::InsecureChannelCredentials(), args);
    stub_ = inference::GRPCInferenceService::NewStub(channel_);
  }

  // Waits for in-flight asynchronous calls: their contexts and callbacks
  // need the stub and channel.
  ~GrpcClient() override {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(+[](int* n) { return *n == 0; }, &in_flight_));
  }

  Protocol protocol() const override { return Protocol::kGrpc; }

  absl::StatusOr<bool> ServerLive() override {
    inference::ServerLiveResponse response;
    RETURN_IF_ERROR(Call(&Stub::ServerLive, inference::ServerLiveRequest(), &response));
    return response.live();
  }
  absl::StatusOr<bool> ServerReady() override {
    inference::ServerReadyResponse response;
    RETURN_IF_ERROR(Call(&Stub::ServerReady, inference::ServerReadyRequest(), &response));
    return response.ready();
  }
  absl::StatusOr<bool> ModelReady(std::string_view name, std::string_view version) override {
    inference::ModelReadyRequest request;
    request.set_name(std::string(name));
    request.set_version(std::string(version));
    inference::ModelReadyResponse response;
    RETURN_IF_ERROR(Call(&Stub::ModelReady, request, &response));
    return response.ready();
  }

  absl::StatusOr<ServerMetadata> GetServerMetadata() override {
    inference::ServerMetadataResponse response;
    RETURN_IF_ERROR(Call(&Stub::ServerMetadata, inference::ServerMetadataRequest(), &response));
    return DecodeGrpcServerMetadata(response);
  }

  absl::StatusOr<ModelMetadata> GetModelMetadata(std::string_view name, std::string_view version) override {
    inference::ModelMetadataRequest request;
    request.set_name(std::string(name));
    request.set_version(std::string(version));
    inference::ModelMetadataResponse response;
    RETURN_IF_ERROR(Call(&Stub::ModelMetadata, request, &response));
    return DecodeGrpcModelMetadata(response);
  }

  absl::StatusOr<std::vector<ModelIndexEntry>> RepositoryIndex() override {
    inference::RepositoryIndexResponse response;
    RETURN_IF_ERROR(Call(&Stub::RepositoryIndex, inference::RepositoryIndexRequest(), &response));
    return DecodeGrpcRepositoryIndex(response);
  }

  absl::StatusOr<InferResponse> Infer(const InferRequest& request) override {
    inference::ModelInferRequest wire;
    RETURN_IF_ERROR(EncodeGrpcInferRequest(request, &wire));
    auto response = std::make_shared<inference::ModelInferResponse>();
    RETURN_IF_ERROR(Call(&Stub::ModelInfer, wire, response.get(), request.deadline, TraceparentOf(request.trace)));
    return DecodeGrpcInferResponse(std::move(response));
  }

  void InferAsync(const InferRequest& request, InferDone done) override {
    auto call = std::make_unique<AsyncCall>();
    if (absl::Status encoded = EncodeGrpcInferRequest(request, &call->request); !encoded.ok()) {
      return std::move(done)(encoded);
    }
    call->done = std::move(done);
    call->response = std::make_shared<inference::ModelInferResponse>();
    Prepare(&call->context, CallDeadline(options_.timeout, request.deadline), TraceparentOf(request.trace));
    {
      absl::MutexLock lock(&mu_);
      ++in_flight_;
    }
    AsyncCall* raw = call.release();
    stub_->async()->ModelInfer(&raw->context, &raw->request, raw->response.get(),
                               [this, raw](grpc::Status status) {
                                 std::unique_ptr<AsyncCall> owned(raw);
                                 absl::StatusOr<InferResponse> result =
                                     status.ok() ? DecodeGrpcInferResponse(std::move(owned->response))
                                                 : absl::StatusOr<InferResponse>(FromGrpc(status));
                                 std::move(owned->done)(std::move(result));
                                 owned.reset();
                                 absl::MutexLock lock(&mu_);
                                 --in_flight_;
                               });
  }

 private:
  using Stub = inference::GRPCInferenceService::Stub;

  // One asynchronous ModelInfer; owned by its completion callback.
  struct AsyncCall {
    grpc::ClientContext context;
    inference::ModelInferRequest request;
    std::shared_ptr<inference::ModelInferResponse> response;
    InferDone done;
  };

  template <typename Request, typename Response>
  absl::Status Call(grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*),
                    const Request& request, Response* response,
                    absl::Time request_deadline = absl::InfiniteFuture(), const std::string& traceparent = {}) {
    grpc::ClientContext context;
    Prepare(&context, CallDeadline(options_.timeout, request_deadline), traceparent);
    return FromGrpc((stub_.get()->*method)(&context, request, response));
  }

  // The deadline, and the credential and trace context as metadata.
  void Prepare(grpc::ClientContext* context, absl::Time deadline, const std::string& traceparent = {}) const {
    SetDeadline(context, deadline);
    if (!traceparent.empty()) context->AddMetadata("traceparent", traceparent);
    if (!options_.api_key.empty()) context->AddMetadata("x-api-key", options_.api_key);
    if (!options_.bearer_token.empty()) context->AddMetadata("authorization", StrCat("Bearer ", options_.bearer_token));
  }

  const ClientOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<Stub> stub_;
  absl::Mutex mu_;
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Client>> CreateGrpcClient(ClientOptions options) {
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (options.tls) {
    auto read = [](const std::string& path, std::string* out) -> absl::Status {
      if (path.empty()) return absl::OkStatus();
      std::ifstream in(path, std::ios::binary);
      if (!in) return absl::InvalidArgumentError(StrCat("cannot read TLS file '", path, "'"));
      out->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
      return absl::OkStatus();
    };
    // Empty roots: gRPC's default CAs.
    grpc::SslCredentialsOptions ssl;
    RETURN_IF_ERROR(read(options.tls_ca_file, &ssl.pem_root_certs));
    RETURN_IF_ERROR(read(options.tls_cert_file, &ssl.pem_cert_chain));
    RETURN_IF_ERROR(read(options.tls_key_file, &ssl.pem_private_key));
    credentials = grpc::SslCredentials(ssl);
  }
  return std::unique_ptr<Client>(new GrpcClient(std::move(options), std::move(credentials)));
}

}  // namespace ortserve::client
