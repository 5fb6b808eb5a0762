// SPDX-License-Identifier: Apache-2.0
// OpenAI's POST /v1/completions and /v1/chat/completions (issue 22): the
// request parser and the JSON the answers are made of, as pure functions
// (the connection streams them; see generation_routes.cc). Safe from any
// thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "generation/generator.h"

namespace ortserve::frontend {

struct CompletionRequest {
  bool chat = false;
  std::string model;
  std::string prompt;  // completions only
  std::vector<std::pair<std::string, std::string>> messages;  // chat: (role, content), in order
  std::string session_id;  // chat: `session_id` (extension; or the X-Session-Id header)
  std::optional<int32_t> max_tokens;
  std::optional<float> temperature, top_p, repetition_penalty;
  std::optional<int32_t> top_k;
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  bool ignore_eos = false;     // extension (as vLLM): generate past end-of-sequence tokens
};

// Parses a completions (`chat` false) or chat completions body. InvalidArgument
// naming the field: not an object, a duplicate key, `model` missing, `prompt`
// (a string) or `messages` (an array of {role, content} with string
// content) missing, `session_id` not a string, a number of the wrong type or out of range, `n` other
// than 1, `echo`, `logprobs`, `best_of`, `suffix`, `tools`, or nonzero
// presence/frequency penalties (not supported). Unknown fields are ignored,
// as OpenAI clients send many.
absl::StatusOr<CompletionRequest> ParseCompletionRequest(std::string_view body, bool chat);

// {"error": {"message", "type", "param": null, "code"}}; code is
// "rate_limit_exceeded" for 429, null otherwise.
std::string OpenAiError(std::string_view message, unsigned http_status);

struct CompletionIds {
  std::string id;  // "cmpl-..." / "chatcmpl-..."
  std::string model;
  int64_t created = 0;  // Unix seconds
};

// The whole answer (stream false).
std::string CompletionJson(bool chat, const CompletionIds& ids, const generation::GenerationResult& result);
// One streamed chunk: `delta` text; `finish` set on the last one. For chat
// the first chunk carries the role (`first`).
std::string CompletionChunkJson(bool chat, const CompletionIds& ids, std::string_view delta, bool first,
                                const generation::GenerationResult* finish);
// The same, appended to `out` (a stream's buffer, reused: no allocation
// once it has grown).
void AppendCompletionChunkJson(bool chat, const CompletionIds& ids, std::string_view delta, bool first,
                               const generation::GenerationResult* finish, std::string* out);
// The usage chunk (stream_options.include_usage): empty choices.
std::string UsageChunkJson(bool chat, const CompletionIds& ids, const generation::GenerationResult& result);

}  // namespace ortserve::frontend
