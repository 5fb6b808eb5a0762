// SPDX-License-Identifier: Apache-2.0
// The client side of the KServe v2 gRPC codec: InferRequest to
// inference::ModelInferRequest and ModelInferResponse (and the other RPCs'
// responses) to the client's types. The mirror of frontend/grpc/grpc_codec.h.
// Pure functions.
//
// Thread-safety: every function is thread-safe.
//
// Wire rules: inputs always travel in raw_input_contents (their bytes as they
// are, BYTES in core/tensor.h's layout), as tritonclient sends them. Outputs
// are read from raw_output_contents, or from typed `contents` when a server
// answers that way.
#pragma once

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "client/client.h"
#include "core/infer_request.h"
#include "proto/grpc_service.pb.h"

namespace ortserve::client {

// Errors: InvalidArgument naming the tensor when an input's bytes do not match
// its type and shape.
absl::Status EncodeGrpcInferRequest(const InferRequest& request, inference::ModelInferRequest* out);

// Raw outputs view `message` (their holder shares it). Errors: Internal naming
// the output when the message is malformed (unknown datatype, raw contents
// whose count or sizes do not match the outputs).
absl::StatusOr<InferResponse> DecodeGrpcInferResponse(std::shared_ptr<const inference::ModelInferResponse> message);

// Errors: Internal naming the tensor for an unknown datatype.
absl::StatusOr<ModelMetadata> DecodeGrpcModelMetadata(const inference::ModelMetadataResponse& message);
ServerMetadata DecodeGrpcServerMetadata(const inference::ServerMetadataResponse& message);
std::vector<ModelIndexEntry> DecodeGrpcRepositoryIndex(const inference::RepositoryIndexResponse& message);

}  // namespace ortserve::client
