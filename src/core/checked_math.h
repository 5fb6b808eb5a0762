// SPDX-License-Identifier: Apache-2.0
// Checked arithmetic for sizes that come from outside the process: shapes,
// element and byte counts, offsets, config numbers. Every product or sum of
// such numbers goes through these helpers (STYLE.md: "Sizes from outside are
// hostile"); a wrapped size is how a 0-byte body "matches" a 2^61-element
// shape, or a padded batch buffer ends up too small for what is copied into it.
// Pure functions: safe from any thread.
#pragma once

#include <concepts>
#include <cstdint>
#include <optional>

namespace ortserve {

// a * b, or nullopt when it does not fit in T.
template <std::integral T>
[[nodiscard]] constexpr std::optional<T> CheckedMul(T a, T b) {
  T out;
  if (__builtin_mul_overflow(a, b, &out)) return std::nullopt;
  return out;
}

// a + b, or nullopt when it does not fit in T.
template <std::integral T>
[[nodiscard]] constexpr std::optional<T> CheckedAdd(T a, T b) {
  T out;
  if (__builtin_add_overflow(a, b, &out)) return std::nullopt;
  return out;
}

// The most elements a tensor's shape may describe, counting a zero
// dimension as one: no request tensor comes near 2^40 (a terabyte of one-byte
// elements), and with every dimension of every tensor under this bound, no
// shape a client sends can reach an overflow by itself, whatever it is
// padded or multiplied with later (those products are checked too).
inline constexpr int64_t kMaxTensorElements = int64_t{1} << 40;

}  // namespace ortserve
