// SPDX-License-Identifier: Apache-2.0
// The request side of Triton's generate extension, shared by its REST routes
// (/generate, /generate_stream) and gRPC ModelStreamInfer on a generative
// model: one parameter's value, whatever carried it (a JSON field, a KServe
// request parameter, a one-element input tensor), checked against the same
// bounds; and a parsed request turned into the batcher's GenerationRequest.
// Pure functions, safe from any thread.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "frontend/http/openai_generation.h"
#include "generation/chat_template.h"
#include "generation/generation_config.h"
#include "generation/generator.h"

namespace ortserve::frontend {

// One parameter value as its carrier typed it. Views: valid while the
// carrier (the JSON document, the request message) lives.
struct GenerateValue {
  enum class Kind {
    kBool,
    kInt,      // fits int64
    kUint,     // above INT64_MAX
    kDouble,
    kString,
    kStrings,  // an array of strings (JSON) or a BYTES tensor of several elements
    kOther,    // anything else (null, an object, an array holding a non-string)
  };
  Kind kind = Kind::kOther;
  bool b = false;
  int64_t i = 0;
  uint64_t u = 0;
  double d = 0;
  std::string_view s;
  std::vector<std::string_view> strings;
};

// The generate parameters: max_tokens [1, 2^20], temperature [0, 100],
// top_p [0, 1], top_k [0, 2^20], repetition_penalty [0, 100], seed (an
// integer), stop (a string or at most 64 strings), ignore_eos and stream
// (booleans). The model's own limits (max_tokens_limit, stop sequences and
// their bytes, the context) are checked later by the batcher.
bool IsGenerateParameter(std::string_view key);

// Sets `key` on `r` (`stream` goes to r->stream). InvalidArgument naming the
// field: the wrong kind or out of range, or an unknown key.
absl::Status ApplyGenerateParameter(std::string_view key, const GenerateValue& value, CompletionRequest* r);

// The generation `parsed` asks of `model`: its prompt encoded, the model's
// sampling defaults under the request's choices. A client cannot write
// control tokens: a completion's prompt is encoded as plain text; a chat
// prompt (`chat`, the rendering parsed.prompt came from) matches them only
// where the chat template wrote them, never in the messages' text.
// InvalidArgument naming what was wrong.
absl::Status BuildGenerationRequest(const CompletionRequest& parsed, const generation::GenerationModel& model,
                                    generation::GenerationRequest* request,
                                    const generation::RenderedChat* chat = nullptr);

}  // namespace ortserve::frontend
