// SPDX-License-Identifier: Apache-2.0
// The `generation` block of a model's config.pbtxt, checked and turned into
// the tokenizer, limits and sampling defaults a Generator needs.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "generation/generator.h"
#include "proto/model_config.pb.h"
#include "pipeline/bpe_tokenizer.h"

namespace ortserve::generation {

struct GenerationSetup {
  std::unique_ptr<pipeline::BpeTokenizer> tokenizer;
  GenerationLimits limits;
  SamplingParams defaults;  // what a request that sets nothing gets
  size_t max_prompt_bytes = size_t{1} << 20;
};

// Loads the tokenizer named by the block (relative to `model_dir`, never
// outside it) and checks every number. InvalidArgument naming the field;
// the tokenizer loader's errors otherwise.
absl::StatusOr<GenerationSetup> LoadGenerationConfig(const config::ModelGeneration& block,
                                                     const std::string& model_dir);

}  // namespace ortserve::generation

namespace ortserve::generation {

// A loaded generative model version: tokenizer, limits, the decoder on its
// session, and the generator over them.
//
// Thread-safety: thread-safe (immutable; Generate runs concurrently).
class GenerationModel {
 public:
  // Reads the `generation` block and checks the session's tensors
  // (DecoderModel::Create); errors name the field or tensor.
  static absl::StatusOr<std::shared_ptr<const GenerationModel>> Load(const config::ModelGeneration& block,
                                                                     const std::string& model_dir,
                                                                     std::shared_ptr<backend::Session> session);

  const pipeline::BpeTokenizer& tokenizer() const { return *setup_.tokenizer; }
  const DecoderModel& decoder() const { return *decoder_; }
  const Generator& generator() const { return *generator_; }
  const SamplingParams& default_sampling() const { return setup_.defaults; }
  size_t max_prompt_bytes() const { return setup_.max_prompt_bytes; }

 private:
  GenerationModel() = default;
  GenerationSetup setup_;
  std::unique_ptr<DecoderModel> decoder_;
  std::unique_ptr<Generator> generator_;
};

}  // namespace ortserve::generation
