// SPDX-License-Identifier: Apache-2.0
#include "generation/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/strings.h"

namespace ortserve::generation {

absl::Status SamplingParams::Validate() const {
  if (!std::isfinite(temperature) || temperature < 0 || temperature > 100) {
    return absl::InvalidArgumentError(StrCat("temperature must be in [0, 100], got ", temperature));
  }
  if (top_k < 0) return absl::InvalidArgumentError(StrCat("top_k must be 0 or more, got ", top_k));
  if (!std::isfinite(top_p) || top_p <= 0 || top_p > 1) {
    return absl::InvalidArgumentError(StrCat("top_p must be in (0, 1], got ", top_p));
  }
  if (!std::isfinite(repetition_penalty) || repetition_penalty <= 0 || repetition_penalty > 100) {
    return absl::InvalidArgumentError(
        StrCat("repetition_penalty must be in (0, 100], got ", repetition_penalty));
  }
  return absl::OkStatus();
}

Rng::Rng(uint64_t seed) {
  for (uint64_t& s : s_) {  // SplitMix64
    seed += 0x9E3779B97F4A7C15ull;
    uint64_t z = seed;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    s = z ^ (z >> 31);
  }
}

uint64_t Rng::Next() {  // xoshiro256**
  auto rotl = [](uint64_t x, int k) { return (x << k) | (x >> (64 - k)); };
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

int32_t Argmax(std::span<const float> values) {
  const size_t n = values.size();
  if (n == 0) return -1;
  const float* v = values.data();
  // The largest value first, in eight independent lanes (GCC makes them two
  // maxps on SSE registers; one chained compare per element was 3% of the
  // server's time at 32 greedy streams), then its first index. A NaN is
  // never larger, as in a plain scan from element 0.
  float lane[8];
  for (float& l : lane) l = v[0];
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (size_t k = 0; k < 8; ++k) lane[k] = v[i + k] > lane[k] ? v[i + k] : lane[k];
  }
  float best = v[0];
  for (float l : lane) best = l > best ? l : best;
  for (; i < n; ++i) best = v[i] > best ? v[i] : best;
  for (size_t j = 0; j < n; ++j) {
    if (v[j] == best) return static_cast<int32_t>(j);
  }
  return 0;  // v[0] is NaN and nothing beat it
}

int32_t Sampler::Sample(std::span<float> logits, std::span<const int32_t> context, const SamplingParams& params,
                        Rng& rng) {
  const int32_t n = static_cast<int32_t>(logits.size());
  if (n == 0) return -1;
  if (params.repetition_penalty != 1.0f) {
    seen_.assign(logits.size(), 0);
    for (int32_t id : context) {
      if (id < 0 || id >= n || seen_[id]) continue;
      seen_[id] = 1;
      float& l = logits[id];
      l = l > 0 ? l / params.repetition_penalty : l * params.repetition_penalty;
    }
  }
  auto argmax = [&] { return Argmax(std::span<const float>(logits.data(), logits.size())); };
  if (params.temperature == 0.0f || params.top_k == 1) return argmax();

  // Candidates, most likely first (ties: lower id first), cut to top_k.
  const int32_t k = params.top_k > 0 ? std::min(params.top_k, n) : n;
  order_.resize(logits.size());
  std::iota(order_.begin(), order_.end(), 0);
  auto more_likely = [&](int32_t a, int32_t b) { return logits[a] != logits[b] ? logits[a] > logits[b] : a < b; };
  if (k < n) {
    std::partial_sort(order_.begin(), order_.begin() + k, order_.end(), more_likely);
    order_.resize(k);
  } else {
    std::sort(order_.begin(), order_.end(), more_likely);
  }
  // Softmax of logits / temperature over the candidates.
  const double inv_t = 1.0 / params.temperature;
  const double top = logits[order_[0]];
  probs_.resize(order_.size());
  double sum = 0;
  for (size_t i = 0; i < order_.size(); ++i) {
    const double p = std::exp((logits[order_[i]] - top) * inv_t);
    probs_[i] = static_cast<float>(p);
    sum += p;
  }
  // Nucleus: the shortest prefix whose mass reaches top_p (at least one).
  size_t keep = order_.size();
  if (params.top_p < 1.0f) {
    double mass = 0;
    for (size_t i = 0; i < order_.size(); ++i) {
      mass += probs_[i] / sum;
      if (mass >= params.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  double kept = 0;
  for (size_t i = 0; i < keep; ++i) kept += probs_[i];
  const double target = rng.Uniform() * kept;
  double acc = 0;
  for (size_t i = 0; i < keep; ++i) {
    acc += probs_[i];
    if (target < acc) return order_[i];
  }
  return order_[keep - 1];
}

}  // namespace ortserve::generation
