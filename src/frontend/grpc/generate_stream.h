// SPDX-License-Identifier: Apache-2.0
// Text generation over gRPC ModelStreamInfer, as Triton serves its decoupled
// LLM backends (vLLM, TensorRT-LLM): a message to a model with a
// `generation` block carries the input `text_input` (BYTES, one element) and
// the parameters of Triton's generate extension, each as a one-element input
// tensor or a request parameter of the same name (max_tokens, temperature,
// top_k, top_p, repetition_penalty, seed, stop, ignore_eos, stream;
// frontend/generate_request.h has their bounds). It is answered by several
// responses, each with the request's id and the output `text_output` (BYTES,
// shape [1]) and the parameter `triton_final_response`: with `stream` true,
// one per piece of decoded text (false), then a last one with empty text
// (true); with `stream` false (the default, as Triton's backends), one
// response with the whole text (true). The last also carries the parameters
// `finish_reason` ("length" or "stop"), `prompt_tokens` and
// `completion_tokens`. An error is a response with `error_message` (and the
// id, and `triton_final_response` true); the stream goes on.
#pragma once

#include <functional>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/infer_request.h"
#include "frontend/http/openai_generation.h"
#include "frontend/inference_service.h"
#include "proto/grpc_service.pb.h"

namespace ortserve::frontend {

// The generate request a decoded message carries (model and prompt, the
// parameters; `stream` in CompletionRequest::stream). InvalidArgument naming
// the input or parameter: a tensor whose bytes do not match its type and
// shape, text_input missing or not one BYTES element, a parameter of the
// wrong type, count or range, an unknown input or parameter (the KServe
// reserved parameters priority, timeout, binary_data_output, headers,
// sequence_* and triton_* are ignored), a requested output other than
// text_output.
absl::StatusOr<CompletionRequest> DecodeGrpcGenerateRequest(const InferRequest& request);

// Receives a generation's responses, in order, on the model's decode loop
// thread; `last` is true exactly once, on the final response or on an error
// response (`code` then not OK).
using GenerateEmit =
    std::function<void(inference::ModelStreamInferResponse response, bool last, absl::StatusCode code)>;

// Starts `request`'s generation on `model` (which has a generation block):
// decodes it, encodes its prompt and queues it to the model's continuous
// batcher. A raised `cancel` ends it before the next step and frees its
// key/value blocks. Errors (nothing is then emitted): the decoder's and the
// prompt's (InvalidArgument), the batcher's Submit (InvalidArgument,
// ResourceExhausted when the waiting queue is full, Unavailable).
absl::Status StartGrpcGeneration(const ModelHandle& model, const InferRequest& request,
                                 std::shared_ptr<const CancellationFlag> cancel, GenerateEmit emit);

// Marks `response` as the last of its request (triton_final_response true)
// or not.
void SetFinalResponse(bool final, inference::ModelInferResponse* response);

}  // namespace ortserve::frontend
