// SPDX-License-Identifier: Apache-2.0
// libFuzzer entry point for the KServe v2 gRPC codec: the input is a
// serialized ModelInferRequest (what a client puts on the wire). A request
// that decodes, and whose tensors pass the byte checks the service applies,
// is encoded back as a response with its inputs as outputs; the response must
// serialize.
#include <cstddef>
#include <cstdint>
#include <memory>

#include "frontend/grpc/grpc_codec.h"
#include "proto/grpc_service.pb.h"

namespace {

void Check(bool condition) {
  if (!condition) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto message = std::make_shared<inference::ModelInferRequest>();
  if (!message->ParseFromArray(data, static_cast<int>(size))) return 0;
  auto request = ortserve::frontend::DecodeModelInferRequest(message, absl::FromUnixSeconds(1));
  if (!request.ok()) {
    Check(!request.status().message().empty());  // Every rejection says why.
    return 0;
  }
  for (const auto& input : request->inputs) {
    if (!ortserve::ValidateTensorBytes(input).ok()) return 0;  // The service answers 400 here.
  }
  ortserve::InferResponse response;
  response.model_name = request->model_name;
  response.id = request->id;
  response.outputs = request->inputs;
  ortserve::InferRequest choices;
  choices.outputs = request->outputs;
  choices.binary_data_output = request->binary_data_output;
  inference::ModelInferResponse out;
  // Requested outputs need not exist among the inputs: a clean error then.
  if (ortserve::frontend::EncodeModelInferResponse(response, choices, {}, &out).ok()) {
    std::string wire;
    Check(out.SerializeToString(&wire));
  }
  return 0;
}
