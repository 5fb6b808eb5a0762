// SPDX-License-Identifier: Apache-2.0
// Triton's generate extension (issue 22): POST
// /v2/models/{m}[/versions/{v}]/generate and /generate_stream. The request
// parser and the JSON of the answers, as pure functions; the connection
// runs them through the model's batcher (generation_routes.cc). Safe from
// any thread.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "frontend/http/openai_generation.h"
#include "generation/generator.h"

namespace ortserve::frontend {

// Parses {"text_input": "...", "parameters": {...}} into the fields a
// completion has (`model` left empty: it comes from the path). Parameters
// read, in `parameters` or beside text_input (Triton passes extra top-level
// fields as parameters): max_tokens, temperature, top_k, top_p,
// repetition_penalty, seed, stop (a string or an array of strings),
// ignore_eos, and stream (ignored: the route decides). InvalidArgument
// naming the field: not an object, a duplicate key, text_input missing or
// not a string, a value of the wrong type or out of range, or an unknown
// field (Triton refuses inputs a model lacks).
absl::StatusOr<CompletionRequest> ParseTritonGenerateRequest(std::string_view body);

// {"model_name", "model_version", "text_output"}; with `finish` also
// "finish_reason", "prompt_tokens" and "completion_tokens" (the whole
// answer and a stream's last event).
std::string TritonGenerateJson(std::string_view model, std::string_view version, std::string_view text,
                               const generation::GenerationResult* finish);
// The same, appended to `out` (a stream's reused buffer).
void AppendTritonGenerateJson(std::string_view model, std::string_view version, std::string_view text,
                              const generation::GenerationResult* finish, std::string* out);

// {"error": "<message>"}.
std::string TritonError(std::string_view message);

}  // namespace ortserve::frontend
