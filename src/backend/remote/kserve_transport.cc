// SPDX-License-Identifier: Apache-2.0
// KServe v2 endpoints through the client library: its HTTP transport keeps
// keep-alive connections served by one I/O thread, its gRPC transport one
// channel, so a call in flight costs a socket, not a thread.
#include "backend/remote/transport.h"

#include "client/client.h"
#include "core/status.h"
#include "core/strings.h"

namespace ortserve::backend::remote {
namespace {

class KServeTransport final : public Transport {
 public:
  KServeTransport(TransportOptions options, std::unique_ptr<client::Client> client)
      : options_(std::move(options)), client_(std::move(client)) {}

  // The client cuts the call at the earlier of its timeout and the deadline.
  absl::StatusOr<InferResponse> Infer(const InferRequest& request) override { return client_->Infer(request); }

  absl::StatusOr<bool> Ready() override { return client_->ModelReady(options_.model_name, options_.model_version); }

  absl::StatusOr<ModelSignature> Metadata() override {
    ASSIGN_OR_RETURN(client::ModelMetadata metadata,
                     client_->GetModelMetadata(options_.model_name, options_.model_version));
    ModelSignature signature;
    for (const auto& [from, to] : {std::pair{&metadata.inputs, &signature.inputs},
                                   std::pair{&metadata.outputs, &signature.outputs}}) {
      for (const client::TensorMetadata& tensor : *from) {
        if (tensor.type == DataType::kInvalid) {
          return absl::FailedPreconditionError(StrCat("the remote's metadata gives tensor '", tensor.name,
                                                      "' a type ortserve does not know"));
        }
        to->push_back(TensorSpec{tensor.name, tensor.type, tensor.shape});
      }
    }
    if (signature.inputs.empty() || signature.outputs.empty()) {
      return absl::FailedPreconditionError("the remote's metadata lists no inputs or no outputs");
    }
    return signature;
  }

 private:
  const TransportOptions options_;
  const std::unique_ptr<client::Client> client_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Transport>> MakeTfServingTransport(TransportOptions options);

absl::StatusOr<std::unique_ptr<Transport>> MakeTransport(TransportOptions options) {
  if (options.protocol == WireProtocol::kTfServingRest) return MakeTfServingTransport(std::move(options));
  client::ClientOptions client_options;
  client_options.address = options.host;
  client_options.port = options.port;
  client_options.protocol =
      options.protocol == WireProtocol::kKServeGrpc ? client::Protocol::kGrpc : client::Protocol::kHttp;
  client_options.timeout = options.timeout;
  client_options.binary_http = !options.json_tensors;
  client_options.tls = options.tls;
  client_options.tls_ca_file = options.tls_ca_file;
  client_options.tls_cert_file = options.tls_cert_file;
  client_options.tls_key_file = options.tls_key_file;
  client_options.tls_server_name = options.tls_server_name;
  ASSIGN_OR_RETURN(std::unique_ptr<client::Client> client, client::Client::Create(std::move(client_options)));
  return std::unique_ptr<Transport>(new KServeTransport(std::move(options), std::move(client)));
}

}  // namespace ortserve::backend::remote
