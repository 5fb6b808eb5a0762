// SPDX-License-Identifier: Apache-2.0
#include "generation/generator.h"

#include <algorithm>
#include <random>

#include "core/status.h"
#include "core/strings.h"

namespace ortserve::generation {

namespace {

// The seed of a request that names none: drawn from a generator per thread,
// itself seeded once from std::random_device (constructing a random_device
// per request opened the entropy source each time: ~0.5% of the server's CPU
// at 32 streams of 64 tokens).
uint64_t UnnamedSeed() {
  thread_local std::mt19937_64 seeds{(uint64_t{std::random_device{}()} << 32) ^ std::random_device{}()};
  return seeds();
}

}  // namespace

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

SequenceRun::SequenceRun(GenerationRequest request, const GenerationLimits& limits,
                         const pipeline::BpeTokenizer& tokenizer)
    : request_(std::move(request)),
      limits_(limits),
      max_tokens_(request_.max_tokens == 0 ? limits.default_max_tokens : request_.max_tokens),
      rng_(request_.sampling.has_seed ? request_.sampling.seed : UnnamedSeed()),
      decoder_(tokenizer),
      stops_(request_.stop) {
  result_.prompt_tokens = static_cast<int64_t>(request_.prompt_ids.size());
  seq_.tokens.reserve(request_.prompt_ids.size() + static_cast<size_t>(max_tokens_));
  seq_.tokens = request_.prompt_ids;
  result_.ids.reserve(static_cast<size_t>(max_tokens_));
}

absl::StatusOr<bool> SequenceRun::Advance(std::span<float> logits, const TextCallback& on_text) {
  const int32_t id = sampler_.Sample(logits, seq_.tokens, request_.sampling, rng_);
  ++result_.completion_tokens;
  if (!request_.ignore_eos &&
      std::find(limits_.eos_token_ids.begin(), limits_.eos_token_ids.end(), id) != limits_.eos_token_ids.end()) {
    return Finish(true, false, on_text);
  }
  seq_.tokens.push_back(id);
  result_.ids.push_back(id);
  delta_.clear();
  RETURN_IF_ERROR(decoder_.Add(id, &delta_));
  std::string_view ready;
  const bool stop_sequence = stops_.Append(delta_, &ready);
  if (!DeliverAtInterval(ready, on_text)) {
    Cancel();
    result_.text = stops_.text();
    return true;
  }
  if (stop_sequence || result_.completion_tokens >= max_tokens_) return Finish(false, stop_sequence, on_text);
  return false;
}

bool SequenceRun::DeliverAtInterval(std::string_view ready, const TextCallback& on_text) {
  if (limits_.stream_interval_tokens <= 1 || !on_text) return Deliver(ready, on_text);
  held_.append(ready);
  if (++held_tokens_ < limits_.stream_interval_tokens) return true;
  held_tokens_ = 0;
  const bool go_on = Deliver(held_, on_text);
  held_.clear();
  return go_on;
}

bool SequenceRun::Finish(bool eos, bool stop_sequence, const TextCallback& on_text) {
  bool cancelled = false;
  if (!stop_sequence) {
    // Bytes of an unfinished character, then whatever was held back.
    delta_.clear();
    decoder_.Finish(&delta_);
    std::string_view ready;
    stop_sequence = stops_.Append(delta_, &ready);
    if (held_.empty()) {
      cancelled = !Deliver(ready, on_text) || !Deliver(stops_.Flush(), on_text);
    } else {  // what the interval held, then the rest, as one piece
      held_.append(ready).append(stops_.Flush());
      cancelled = !Deliver(held_, on_text);
    }
  } else if (!held_.empty()) {
    cancelled = !Deliver(held_, on_text);
  }
  held_.clear();
  result_.text = stops_.text();
  finish_ = cancelled ? FinishReason::kCancelled : (eos || stop_sequence) ? FinishReason::kStop : FinishReason::kLength;
  result_.finish = finish_;
  return true;
}

absl::StatusOr<GenerationResult> Generator::Generate(const GenerationRequest& request,
                                                     const TextCallback& on_text) const {
  RETURN_IF_ERROR(ValidateRequest(request, limits_, model_.vocab_size() > 0 ? model_.vocab_size()
                                                                            : tokenizer_.vocab_size()));
  SequenceRun run(request, limits_, tokenizer_);
  std::vector<float> logits;
  SequenceState* batch[] = {&run.state()};
  for (;;) {
    RETURN_IF_ERROR(model_.Step(batch, &logits));
    ASSIGN_OR_RETURN(bool done, run.Advance(logits, on_text));
    if (done) break;
  }
  return std::move(run.result());
}

}  // namespace ortserve::generation
