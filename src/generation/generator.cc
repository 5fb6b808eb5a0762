// SPDX-License-Identifier: Apache-2.0
#include "generation/generator.h"

#include <algorithm>
#include <random>

#include "core/status.h"
#include "core/strings.h"

namespace ortserve::generation {

std::string_view FinishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kLength:
      return "length";
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kCancelled:
      return "cancelled";
  }
  return "unknown";
}

absl::Status ValidateRequest(const GenerationRequest& request, const GenerationLimits& limits, int64_t vocab_size) {
  RETURN_IF_ERROR(request.sampling.Validate());
  if (request.prompt_ids.empty()) return absl::InvalidArgumentError("the prompt is empty");
  for (int32_t id : request.prompt_ids) {
    if (id < 0 || id >= vocab_size) return absl::InvalidArgumentError(StrCat("prompt token id ", id, " is out of range"));
  }
  if (request.max_tokens < 0 || request.max_tokens > limits.max_tokens_limit) {
    return absl::InvalidArgumentError(
        StrCat("max_tokens must be in [1, ", limits.max_tokens_limit, "], got ", request.max_tokens));
  }
  const int64_t max_tokens = request.max_tokens == 0 ? limits.default_max_tokens : request.max_tokens;
  const int64_t prompt = static_cast<int64_t>(request.prompt_ids.size());
  if (prompt + max_tokens > limits.max_context_tokens) {
    return absl::InvalidArgumentError(StrCat("this model's maximum context length is ", limits.max_context_tokens,
                                             " tokens; the prompt is ", prompt, " tokens and max_tokens ", max_tokens));
  }
  if (request.stop.size() > limits.max_stop_sequences) {
    return absl::InvalidArgumentError(
        StrCat("at most ", limits.max_stop_sequences, " stop sequences, got ", request.stop.size()));
  }
  for (const std::string& s : request.stop) {
    if (s.empty() || s.size() > limits.max_stop_bytes) {
      return absl::InvalidArgumentError(StrCat("a stop sequence must be 1 to ", limits.max_stop_bytes, " bytes"));
    }
  }
  return absl::OkStatus();
}

bool StopMatcher::Append(std::string_view delta, std::string_view* ready) {
  const size_t before = text_.size();
  text_.append(delta);
  size_t cut = std::string::npos;
  for (const std::string& stop : stops_) {
    // A new match ends inside the appended part.
    const size_t from = before >= stop.size() ? before - stop.size() + 1 : 0;
    const size_t at = text_.find(stop, from);
    if (at != std::string::npos) cut = std::min(cut, at);
  }
  if (cut != std::string::npos) {
    text_.resize(std::max(cut, emitted_));
    *ready = std::string_view(text_).substr(emitted_);
    emitted_ = text_.size();
    return true;
  }
  // Hold back the longest suffix that is a proper prefix of a stop sequence.
  size_t hold = 0;
  for (const std::string& stop : stops_) {
    for (size_t k = std::min(stop.size() - 1, text_.size()); k > hold; --k) {
      if (std::string_view(text_).substr(text_.size() - k) == std::string_view(stop).substr(0, k)) {
        hold = k;
        break;
      }
    }
  }
  const size_t safe = std::max(emitted_, text_.size() - hold);
  *ready = std::string_view(text_).substr(emitted_, safe - emitted_);
  emitted_ = safe;
  return false;
}

std::string_view StopMatcher::Flush() {
  std::string_view rest = std::string_view(text_).substr(emitted_);
  emitted_ = text_.size();
  return rest;
}

absl::StatusOr<GenerationResult> Generator::Generate(const GenerationRequest& request,
                                                     const TextCallback& on_text) const {
  RETURN_IF_ERROR(ValidateRequest(request, limits_, model_.vocab_size() > 0 ? model_.vocab_size()
                                                                            : tokenizer_.vocab_size()));
  const int32_t max_tokens = request.max_tokens == 0 ? limits_.default_max_tokens : request.max_tokens;
  GenerationResult result;
  result.prompt_tokens = static_cast<int64_t>(request.prompt_ids.size());
  SequenceState seq;
  seq.tokens.reserve(request.prompt_ids.size() + static_cast<size_t>(max_tokens));
  seq.tokens = request.prompt_ids;
  Sampler sampler;
  Rng rng(request.sampling.has_seed ? request.sampling.seed : std::random_device{}() * 0x9E3779B97F4A7C15ull);
  pipeline::IncrementalDecoder decoder(tokenizer_);
  StopMatcher stops(request.stop);
  std::vector<float> logits;
  std::string delta;
  SequenceState* batch[] = {&seq};
  auto deliver = [&](std::string_view ready) {
    if (ready.empty() || !on_text) return true;
    return on_text(ready);
  };
  bool eos = false, stop_sequence = false, cancelled = false;
  for (int32_t step = 0; step < max_tokens; ++step) {
    RETURN_IF_ERROR(model_.Step(batch, &logits));
    const int32_t id = sampler.Sample(logits, seq.tokens, request.sampling, rng);
    ++result.completion_tokens;
    if (!request.ignore_eos &&
        std::find(limits_.eos_token_ids.begin(), limits_.eos_token_ids.end(), id) != limits_.eos_token_ids.end()) {
      eos = true;
      break;
    }
    seq.tokens.push_back(id);
    result.ids.push_back(id);
    delta.clear();
    RETURN_IF_ERROR(decoder.Add(id, &delta));
    std::string_view ready;
    stop_sequence = stops.Append(delta, &ready);
    if (!deliver(ready)) {
      cancelled = true;
      break;
    }
    if (stop_sequence) break;
  }
  if (!cancelled && !stop_sequence) {
    // Bytes of an unfinished character, then whatever was held back.
    delta.clear();
    decoder.Finish(&delta);
    std::string_view ready;
    stop_sequence = stops.Append(delta, &ready);
    cancelled = !deliver(ready) || !deliver(stops.Flush());
  }
  result.text = stops.text();
  result.finish = cancelled                 ? FinishReason::kCancelled
                  : (eos || stop_sequence) ? FinishReason::kStop
                                           : FinishReason::kLength;
  return result;
}

}  // namespace ortserve::generation
