// SPDX-License-Identifier: Apache-2.0
// The gRPC front end's inference calls: ModelInfer (unary) and
// ModelStreamInfer (bidirectional), each a reactor that takes its admission
// permit, decodes, hands the request to the service and encodes the answer
// on whichever thread finishes it. grpc_server.cc registers them.
#pragma once

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/message_allocator.h>

#include <memory>

#include "admission/admission.h"
#include "frontend/inference_service.h"
#include "proto/grpc_service.grpc.pb.h"

namespace ortserve::frontend {

// The allocator ModelInfer's messages must come from: the decoded request
// shares ownership of the message, so raw tensors stay views (no copy).
std::unique_ptr<grpc::MessageAllocator<inference::ModelInferRequest, inference::ModelInferResponse>>
MakeInferAllocator();

// Starts one ModelInfer call (its messages from MakeInferAllocator's
// allocator). `admission` may be null.
grpc::ServerUnaryReactor* StartModelInfer(InferenceService* service, admission::Admission* admission,
                                          grpc::CallbackServerContext* context,
                                          inference::ModelInferResponse* response);

// Starts one ModelStreamInfer call: at most `max_in_flight` of its requests
// are admitted before their answers are written.
grpc::ServerBidiReactor<inference::ModelInferRequest, inference::ModelStreamInferResponse>* StartModelStreamInfer(
    InferenceService* service, admission::Admission* admission, grpc::CallbackServerContext* context,
    int max_in_flight);

}  // namespace ortserve::frontend
