// SPDX-License-Identifier: Apache-2.0
// Text generation for one request: prompt ids in, tokens out one at a time
// through a DecoderModel, with sampling, stop sequences, an end-of-sequence
// token and max_tokens, and the text streamed as it becomes final.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "generation/decoder_model.h"
#include "generation/sampler.h"
#include "pipeline/bpe_tokenizer.h"

namespace ortserve::generation {

// Per-model bounds (the config.pbtxt `generation` block).
struct GenerationLimits {
  int64_t max_context_tokens = 2048;  // prompt + generated
  int32_t max_tokens_limit = 1024;    // the most one request may ask for
  int32_t default_max_tokens = 16;
  size_t max_stop_sequences = 4;
  size_t max_stop_bytes = 256;        // per stop sequence
  std::vector<int32_t> eos_token_ids;  // generation ends at any of these
  // Streamed text goes out once per this many tokens (and at the end): 1
  // sends each token's text as it becomes final; more sends fewer, larger
  // pieces (fewer events and socket writes per token, at the cost of
  // inter-token latency). Never holds text past the end.
  int32_t stream_interval_tokens = 1;
};

struct GenerationRequest {
  std::vector<int32_t> prompt_ids;
  SamplingParams sampling;
  int32_t max_tokens = 0;  // 0: the model's default_max_tokens
  std::vector<std::string> stop;
  bool ignore_eos = false;
};

enum class FinishReason {
  kLength,     // max_tokens or the context was reached
  kStop,       // an end-of-sequence token or a stop sequence
  kCancelled,  // the text callback asked to stop (client gone)
};
std::string_view FinishReasonName(FinishReason reason);  // "length", "stop", "cancelled"

struct GenerationResult {
  std::vector<int32_t> ids;  // generated ids (an end-of-sequence token not included)
  std::string text;          // their text, cut before a stop sequence
  FinishReason finish = FinishReason::kLength;
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;  // ids.size() plus a final end-of-sequence token
};

// Called with each piece of final text, in order; their concatenation is
// GenerationResult::text. Returning false stops generation (kCancelled).
using TextCallback = std::function<bool(std::string_view delta)>;

// Checks a request against the limits: InvalidArgument naming the field
// (sampling fields, max_tokens, stop sequences, a prompt that leaves no room
// in the context, an empty prompt).
absl::Status ValidateRequest(const GenerationRequest& request, const GenerationLimits& limits,
                             int64_t vocab_size);

// Stop sequences over streamed text: holds back the end of the text while it
// could still be the start of a stop sequence.
//
// Thread-safety: not thread-safe.
class StopMatcher {
 public:
  explicit StopMatcher(std::span<const std::string> stops) : stops_(stops) {}
  // Appends `delta`; returns true when a stop sequence now appears, the text
  // then being cut before it. *ready is set to the text now final (not yet
  // returned before).
  bool Append(std::string_view delta, std::string_view* ready);
  // At the end: everything not yet returned.
  std::string_view Flush();
  const std::string& text() const { return text_; }

 private:
  std::span<const std::string> stops_;
  std::string text_;
  size_t emitted_ = 0;
};

// One sequence's generation around the model's steps: after each step it
// samples the next token, ends at an end-of-sequence token, a stop sequence,
// max_tokens or the context, and passes on the text as it becomes final.
// Used by Generator (one sequence) and ContinuousBatcher (many per step).
//
// Thread-safety: not thread-safe; one thread at a time.
class SequenceRun {
 public:
  // `request` must have passed ValidateRequest; `tokenizer` outlives this.
  SequenceRun(GenerationRequest request, const GenerationLimits& limits, const pipeline::BpeTokenizer& tokenizer);

  // The tokens and cache the next step runs.
  SequenceState& state() { return seq_; }
  const GenerationRequest& request() const { return request_; }
  // The most tokens this sequence can reach (prompt + max_tokens).
  int64_t max_total_tokens() const { return static_cast<int64_t>(request_.prompt_ids.size()) + max_tokens_; }

  // After a step: `logits` is this sequence's row (modified in place).
  // Returns true when the sequence is done (result() then final); text goes
  // to `on_text` (false from it ends the sequence as kCancelled). Errors
  // from the tokenizer's decoder.
  absl::StatusOr<bool> Advance(std::span<float> logits, const TextCallback& on_text);
  // Ends a sequence that has not finished by itself (client gone).
  void Cancel() { finish_ = FinishReason::kCancelled; result_.finish = finish_; }
  GenerationResult& result() { return result_; }

 private:
  bool Deliver(std::string_view ready, const TextCallback& on_text) {
    return ready.empty() || !on_text || on_text(ready);
  }
  // Delivers `ready` now (stream_interval_tokens 1), or adds it to the
  // held text, delivered once the interval's tokens have come.
  bool DeliverAtInterval(std::string_view ready, const TextCallback& on_text);
  bool Finish(bool eos, bool stop_sequence, const TextCallback& on_text);

  GenerationRequest request_;
  const GenerationLimits& limits_;
  int32_t max_tokens_ = 0;
  SequenceState seq_;
  Sampler sampler_;
  Rng rng_;
  pipeline::IncrementalDecoder decoder_;
  StopMatcher stops_;
  std::string delta_;
  std::string held_;          // text waiting for the stream interval
  int32_t held_tokens_ = 0;   // tokens since the last delivery
  GenerationResult result_;
  FinishReason finish_ = FinishReason::kLength;
};

// Thread-safety: thread-safe; Generate may run on many threads at once (each
// call has its own sequence state).
class Generator {
 public:
  Generator(const DecoderModel& model, const pipeline::BpeTokenizer& tokenizer, GenerationLimits limits)
      : model_(model), tokenizer_(tokenizer), limits_(std::move(limits)) {}

  absl::StatusOr<GenerationResult> Generate(const GenerationRequest& request,
                                            const TextCallback& on_text = nullptr) const;

  const GenerationLimits& limits() const { return limits_; }

 private:
  const DecoderModel& model_;
  const pipeline::BpeTokenizer& tokenizer_;
  GenerationLimits limits_;
};

}  // namespace ortserve::generation
