// SPDX-License-Identifier: Apache-2.0
#include "frontend/generate_request.h"

#include <array>
#include <cmath>

#include "core/status.h"
#include "core/strings.h"

namespace ortserve::frontend {

namespace {

using Kind = GenerateValue::Kind;

absl::Status Bad(std::string_view field, std::string_view what) {
  return absl::InvalidArgumentError(StrCat("field '", field, "' ", what));
}

absl::StatusOr<double> Number(const GenerateValue& v, std::string_view field, double low, double high) {
  double d = 0;
  switch (v.kind) {
    case Kind::kInt: d = static_cast<double>(v.i); break;
    case Kind::kUint: d = static_cast<double>(v.u); break;
    case Kind::kDouble: d = v.d; break;
    default: return Bad(field, StrCat("must be a number in [", low, ", ", high, "]"));
  }
  if (!std::isfinite(d) || d < low || d > high) return Bad(field, StrCat("must be a number in [", low, ", ", high, "]"));
  return d;
}

absl::StatusOr<int64_t> Integer(const GenerateValue& v, std::string_view field, int64_t low, int64_t high) {
  if (v.kind != Kind::kInt || v.i < low || v.i > high) {
    return Bad(field, StrCat("must be an integer in [", low, ", ", high, "]"));
  }
  return v.i;
}

absl::StatusOr<bool> Boolean(const GenerateValue& v, std::string_view field) {
  if (v.kind != Kind::kBool) return Bad(field, "must be a boolean");
  return v.b;
}

constexpr std::array<std::string_view, 9> kParameters = {"max_tokens",         "temperature", "top_p",
                                                          "top_k",              "repetition_penalty", "seed",
                                                          "stop",               "ignore_eos",  "stream"};

}  // namespace

bool IsGenerateParameter(std::string_view key) {
  for (std::string_view p : kParameters) {
    if (p == key) return true;
  }
  return false;
}

absl::Status ApplyGenerateParameter(std::string_view key, const GenerateValue& v, CompletionRequest* r) {
  if (key == "max_tokens") {
    ASSIGN_OR_RETURN(int64_t x, Integer(v, key, 1, 1 << 20));
    r->max_tokens = static_cast<int32_t>(x);
  } else if (key == "temperature") {
    ASSIGN_OR_RETURN(double x, Number(v, key, 0, 100));
    r->temperature = static_cast<float>(x);
  } else if (key == "top_p") {
    ASSIGN_OR_RETURN(double x, Number(v, key, 0, 1));
    r->top_p = static_cast<float>(x);
  } else if (key == "top_k") {
    ASSIGN_OR_RETURN(int64_t x, Integer(v, key, 0, 1 << 20));
    r->top_k = static_cast<int32_t>(x);
  } else if (key == "repetition_penalty") {
    ASSIGN_OR_RETURN(double x, Number(v, key, 0, 100));
    r->repetition_penalty = static_cast<float>(x);
  } else if (key == "seed") {
    if (v.kind != Kind::kInt) return Bad(key, "must be an integer");
    r->seed = static_cast<uint64_t>(v.i);
  } else if (key == "stop") {
    r->stop.clear();
    if (v.kind == Kind::kString) {
      r->stop.emplace_back(v.s);
    } else if (v.kind == Kind::kStrings && v.strings.size() <= 64) {
      for (std::string_view s : v.strings) r->stop.emplace_back(s);
    } else {
      return Bad(key, "must be a string or an array of at most 64 strings");
    }
  } else if (key == "ignore_eos") {
    ASSIGN_OR_RETURN(r->ignore_eos, Boolean(v, key));
  } else if (key == "stream") {
    ASSIGN_OR_RETURN(r->stream, Boolean(v, key));
  } else {
    return absl::InvalidArgumentError(StrCat("unknown field '", key, "'"));
  }
  return absl::OkStatus();
}

absl::Status BuildGenerationRequest(const CompletionRequest& parsed, const generation::GenerationModel& model,
                                    generation::GenerationRequest* request, const generation::RenderedChat* chat) {
  pipeline::BpeEncodeOptions encode;
  encode.max_text_bytes = model.max_prompt_bytes();
  encode.match_added_tokens = chat != nullptr;
  if (chat != nullptr) encode.literal_ranges = chat->client_ranges;
  if (auto s = model.tokenizer().Encode(parsed.prompt, encode, &request->prompt_ids); !s.ok()) {
    return absl::InvalidArgumentError(StrCat("prompt: ", ToStd(s.message())));
  }
  request->sampling = model.default_sampling();
  if (parsed.temperature) request->sampling.temperature = *parsed.temperature;
  if (parsed.top_p) request->sampling.top_p = *parsed.top_p;
  if (parsed.top_k) request->sampling.top_k = *parsed.top_k;
  if (parsed.repetition_penalty) request->sampling.repetition_penalty = *parsed.repetition_penalty;
  if (parsed.seed) {
    request->sampling.has_seed = true;
    request->sampling.seed = *parsed.seed;
  }
  request->max_tokens = parsed.max_tokens.value_or(0);
  request->stop = parsed.stop;
  request->ignore_eos = parsed.ignore_eos;
  return absl::OkStatus();
}

}  // namespace ortserve::frontend
