// SPDX-License-Identifier: Apache-2.0
#include "frontend/kserve/reserved_parameters.h"

#include <limits>
#include <string>
#include <variant>

#include "core/status.h"
#include "core/strings.h"

namespace ortserve::frontend {

absl::StatusOr<std::optional<uint64_t>> UnsignedParameter(const Parameters& parameters, std::string_view key,
                                                          std::string_view where, uint64_t max) {
  const ParameterValue* value = parameters.Find(key);
  if (value == nullptr) return std::optional<uint64_t>();
  if (const auto* i = std::get_if<int64_t>(value)) {
    if (*i >= 0 && static_cast<uint64_t>(*i) <= max) return std::optional<uint64_t>(*i);
    return absl::InvalidArgumentError(
        StrCat(where, " parameter '", key, "' is ", *i, "; it must be between 0 and ", max));
  }
  if (const auto* u = std::get_if<uint64_t>(value)) {
    if (*u <= max) return std::optional<uint64_t>(*u);
    return absl::InvalidArgumentError(
        StrCat(where, " parameter '", key, "' is ", *u, "; it must be between 0 and ", max));
  }
  return absl::InvalidArgumentError(StrCat(where, " parameter '", key, "' must be a non-negative integer"));
}

absl::StatusOr<bool> BoolParameter(const Parameters& parameters, std::string_view key, std::string_view where) {
  const ParameterValue* value = parameters.Find(key);
  if (value == nullptr) return false;
  if (const auto* b = std::get_if<bool>(value)) return *b;
  return absl::InvalidArgumentError(StrCat(where, " parameter '", key, "' must be a boolean"));
}

absl::Status ReadRequestParameters(absl::Time now, InferRequest* request) {
  const Parameters& parameters = request->parameters;
  if (parameters.empty()) return absl::OkStatus();
  if (parameters.Find("binary_data_output") != nullptr) {
    ASSIGN_OR_RETURN(request->binary_data_output, BoolParameter(parameters, "binary_data_output", "request"));
  }
  ASSIGN_OR_RETURN(std::optional<uint64_t> priority,
                   UnsignedParameter(parameters, "priority", "request", std::numeric_limits<uint32_t>::max()));
  if (priority) request->priority = static_cast<uint32_t>(*priority);
  ASSIGN_OR_RETURN(std::optional<uint64_t> timeout,
                   UnsignedParameter(parameters, "timeout", "request", std::numeric_limits<int64_t>::max()));
  if (timeout && *timeout > 0) request->deadline = now + absl::Microseconds(static_cast<int64_t>(*timeout));
  return absl::OkStatus();
}

absl::Status ReadOutputParameters(RequestedOutput* output) {
  // Most outputs carry no parameters: then nothing is read and no message
  // prefix is built.
  const Parameters& parameters = output->parameters;
  if (parameters.empty()) return absl::OkStatus();
  const std::string where = StrCat("output '", output->name, "'");
  if (parameters.Find("binary_data") != nullptr) {
    ASSIGN_OR_RETURN(output->binary_data, BoolParameter(parameters, "binary_data", where));
  }
  ASSIGN_OR_RETURN(std::optional<uint64_t> k,
                   UnsignedParameter(parameters, "classification", where, std::numeric_limits<uint32_t>::max()));
  if (k) output->classification = static_cast<uint32_t>(*k);
  return absl::OkStatus();
}

}  // namespace ortserve::frontend
