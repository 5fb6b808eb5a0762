// SPDX-License-Identifier: Apache-2.0
// The `generation` block of a model's config.pbtxt, checked and turned into
// the tokenizer, limits and sampling defaults a Generator needs.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "generation/chat_template.h"
#include "generation/continuous_batcher.h"
#include "generation/generator.h"
#include "generation/session_store.h"
#include "proto/model_config.pb.h"
#include "pipeline/bpe_tokenizer.h"

namespace ortserve::generation {

struct GenerationSetup {
  std::unique_ptr<pipeline::BpeTokenizer> tokenizer;
  GenerationLimits limits;
  SamplingParams defaults;  // what a request that sets nothing gets
  size_t max_prompt_bytes = size_t{1} << 20;
  // The continuous batcher's pool and queue bounds (model, tokenizer and
  // limits are filled in by GenerationModel::Load).
  ContinuousBatcher::Options batching;
  // The model's Hugging Face chat template (generation.chat_template, or one
  // found beside the tokenizer); null: the simple template below.
  std::shared_ptr<const ChatTemplate> chat_template;
  // The simple chat template: each message with {role} and {content}
  // replaced, then the generation prompt.
  std::string chat_message_template = "{role}: {content}\n";
  std::string chat_generation_prompt = "assistant:";
  // What the loader should log: deprecated spellings that were used.
  std::vector<std::string> warnings;
};

// The batching settings from the `generation` block (kv_cache_bytes,
// kv_block_tokens, max_batch_sequences, max_waiting_requests,
// max_queue_wait_ms) or, deprecated, from the model `parameters`
// "generation.<name>" (a warning each in setup->warnings), and the
// chat-template parameters (docs/model_config.md, "Generation").
// InvalidArgument naming the field or parameter: out of range, not an
// integer, or one setting given both ways.
absl::Status ReadGenerationParameters(const config::ModelConfig& config, GenerationSetup* setup);

// Loads the tokenizer named by the block (relative to `model_dir`, never
// outside it) and checks every number. InvalidArgument naming the field;
// the tokenizer loader's errors otherwise.
absl::StatusOr<GenerationSetup> LoadGenerationConfig(const config::ModelGeneration& block,
                                                     const std::string& model_dir);

}  // namespace ortserve::generation

namespace ortserve::generation {

// A loaded generative model version: tokenizer, limits, the decoder on its
// session, the one-sequence generator, and the continuous batcher that
// serves requests (its decode loop runs until this object is destroyed).
//
// Thread-safety: thread-safe (Generate and the batcher run concurrently).
class GenerationModel {
 public:
  // Reads the `generation` block and the `generation.*` parameters, checks the session's tensors
  // (DecoderModel::Create); errors name the field or tensor.
  // `metrics` (not owned, outlives the model; null: none) gets the
  // batcher's series.
  static absl::StatusOr<std::shared_ptr<const GenerationModel>> Load(
      const config::ModelConfig& config, const std::string& model_dir, std::shared_ptr<backend::Session> session,
      observability::GenerationMetrics* metrics = nullptr);

  const pipeline::BpeTokenizer& tokenizer() const { return *tokenizer_; }
  const DecoderModel& decoder() const { return *decoder_; }
  const Generator& generator() const { return *generator_; }
  ContinuousBatcher& batcher() const { return *batcher_; }
  const SamplingParams& default_sampling() const { return setup_.defaults; }
  size_t max_prompt_bytes() const { return setup_.max_prompt_bytes; }
  // Deprecated spellings the config used (for the loader's log).
  const std::vector<std::string>& warnings() const { return setup_.warnings; }
  // `messages` rendered with the model's chat template, ending with the
  // generation prompt (what the model continues as the assistant), with the
  // ranges of it that are message text (to be encoded without matching
  // control tokens). InvalidArgument when the Hugging Face template refuses
  // the conversation (raise_exception) or fails on it.
  absl::StatusOr<RenderedChat> RenderChat(std::span<const ChatMessage> messages) const;
  // Whether chats use a Hugging Face chat template.
  bool has_chat_template() const { return setup_.chat_template != nullptr; }

 private:
  GenerationModel() = default;
  GenerationSetup setup_;
  std::shared_ptr<const pipeline::BpeTokenizer> tokenizer_;
  std::shared_ptr<const DecoderModel> decoder_;
  std::unique_ptr<Generator> generator_;
  std::unique_ptr<ContinuousBatcher> batcher_;  // last: stopped first
};

}  // namespace ortserve::generation
