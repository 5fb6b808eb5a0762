// SPDX-License-Identifier: Apache-2.0
// The JSON request parser, built for two simdjson kernels (json_tensor_data.inc)
// and picked by CPU at run time: simdjson's on-demand API is compiled into its
// callers for one kernel, and without -mavx2 (Debian's amd64 baseline) that
// would be the portable one, whose first stage is several times slower.
#include "frontend/http/json_tensor_data.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "core/checked_math.h"
#include "core/status.h"
#include "core/strings.h"
#include "frontend/kserve/reserved_parameters.h"

namespace ortserve::frontend::rest_internal {

absl::Status NotJson(simdjson::error_code error) {
  return absl::InvalidArgumentError(StrCat("request body is not valid JSON: ", simdjson::error_message(error)));
}

}  // namespace ortserve::frontend::rest_internal

#define ORTSERVE_JSON_KERNEL fallback
#include "frontend/http/json_tensor_data.inc"  // NOLINT(build/include)
#undef ORTSERVE_JSON_KERNEL


namespace ortserve::frontend::rest_internal {
namespace {


}  // namespace

absl::Status ParseJsonRequest(const char* json, size_t json_size, size_t capacity, bool has_header_length,
                              InferRequest* request, JsonInputs* inputs, uint64_t* binary_total) {
  return fallback::ParseJsonRequest(json, json_size, capacity, has_header_length, request, inputs, binary_total);
}

}  // namespace ortserve::frontend::rest_internal
