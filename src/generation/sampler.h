// SPDX-License-Identifier: Apache-2.0
// Choosing the next token from a model's logits: greedy, temperature, top-k,
// top-p (nucleus) and a repetition penalty, with a seeded generator so that a
// request with a seed is reproducible on any machine.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace ortserve::generation {

// What a request asks of the sampler. Validate() bounds every field.
struct SamplingParams {
  float temperature = 1.0f;         // 0: greedy (argmax); otherwise logits / temperature
  int32_t top_k = 0;                // keep the k most likely tokens; 0: all
  float top_p = 1.0f;               // keep the smallest set whose probability reaches top_p
  float repetition_penalty = 1.0f;  // > 1 discourages tokens already in the context (CTRL's rule)
  uint64_t seed = 0;                // with has_seed: the generator's seed
  bool has_seed = false;

  // InvalidArgument naming the field: temperature in [0, 100], top_k >= 0,
  // top_p in (0, 1], repetition_penalty in (0, 100], all finite.
  absl::Status Validate() const;
};

// The generator: SplitMix64-seeded xoshiro256**, fully specified here so that
// a seed gives the same tokens with any standard library.
class Rng {
 public:
  explicit Rng(uint64_t seed);
  uint64_t Next();
  // Uniform in [0, 1), 53 bits.
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

 private:
  uint64_t s_[4];
};

// The index of the largest value (the first one on a tie; NaNs never win
// over element 0); -1 when empty.
int32_t Argmax(std::span<const float> values);

// Picks tokens. Holds scratch space so that a decode step allocates nothing
// after the first.
//
// Thread-safety: not thread-safe; one per sequence.
class Sampler {
 public:
  // `context`: the token ids the penalty applies to (prompt and generated so
  // far). `logits` is modified in place (penalty, temperature). Returns the
  // chosen id. Greedy ties go to the lowest id.
  int32_t Sample(std::span<float> logits, std::span<const int32_t> context, const SamplingParams& params,
                 Rng& rng);

 private:
  std::vector<int32_t> order_;
  std::vector<float> probs_;
  std::vector<uint8_t> seen_;
};

}  // namespace ortserve::generation
