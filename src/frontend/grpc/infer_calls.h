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
#include "admission/identity.h"
#include "frontend/inference_service.h"
#include "proto/grpc_service.grpc.pb.h"

namespace ortserve::frontend {

class AccessControl;

// What a stream's credential allowed, judged at its start.
struct StreamAccess {
  const AccessControl* access = nullptr;  // Not owned; outlives the call.
  admission::IdentityPtr identity{};      // Null when refused.
  absl::Status refused{};                 // Not OK: the stream ends with it at once.
  std::string peer{};                     // For the audit log; empty when not auditing.
};

// The allocator ModelInfer's messages must come from (infer_messages.h): the
// decoded request shares ownership of the message, so raw tensors stay views
// (no copy), and pairs are recycled across calls.
std::unique_ptr<grpc::MessageAllocator<inference::ModelInferRequest, inference::ModelInferResponse>>
MakeInferAllocator();

// Starts one ModelInfer call (its messages from MakeInferAllocator's
// allocator). `admission` may be null; `identity` (null when authentication
// is off) keys the rate limits, and is used only during this call.
grpc::ServerUnaryReactor* StartModelInfer(InferenceService* service, admission::Admission* admission,
                                          grpc::CallbackServerContext* context,
                                          inference::ModelInferResponse* response,
                                          const admission::Identity* identity = nullptr);

// Starts one ModelStreamInfer call: at most `max_in_flight` of its requests
// are admitted before their answers are written. A message naming a model
// the identity may not use is answered with its error_message (the stream
// goes on), as any failed request of a stream.
grpc::ServerBidiReactor<inference::ModelInferRequest, inference::ModelStreamInferResponse>* StartModelStreamInfer(
    InferenceService* service, admission::Admission* admission, grpc::CallbackServerContext* context,
    int max_in_flight, StreamAccess access);

}  // namespace ortserve::frontend
