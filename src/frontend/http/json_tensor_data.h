// SPDX-License-Identifier: Apache-2.0
// Internal to the REST codec (ortserve_http_codec): JSON `data` arrays, as
// simdjson parsed them, to tensor bytes. Include kserve_json_codec.h instead.
//
// Thread-safety: every function is thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "absl/status/statusor.h"
#include "core/data_type.h"
#include "core/tensor.h"
#include "simdjson.h"

namespace ortserve::frontend::rest_internal {

// "an array", "a string", ...: the kind of a JSON value, for error messages.
std::string_view JsonKindName(simdjson::dom::element_type type);

// Bytes in one heap block that `holder` keeps alive.
struct OwnedBytes {
  std::shared_ptr<const void> holder;
  std::span<const std::byte> data;
};

// Converts `data` (flat or nested to any depth; row-major) into `count`
// elements of `type` in core/tensor.h's layout, in one allocation of exactly
// the size needed. `json_size` is the size of the whole JSON text: a count
// larger than it cannot be right and is refused before anything is allocated.
// Errors: InvalidArgument naming input `name` (and the element index) for an
// element count that differs from `shape`, a value of the wrong kind or out
// of range for `type`, or FP16/BF16 (binary only).
absl::StatusOr<OwnedBytes> FillFromJson(std::string_view name, DataType type, const Shape& shape, int64_t count,
                                        simdjson::dom::element data, size_t json_size);

}  // namespace ortserve::frontend::rest_internal
