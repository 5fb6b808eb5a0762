// SPDX-License-Identifier: Apache-2.0
// The string-valued `parameters` of a model config read as numbers and flags,
// with errors naming the model and the key. Internal to the repository module
// (model_config.cc, session_options_config.cc). Pure functions: safe from any
// thread.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "proto/model_config.pb.h"

namespace ortserve::repository::config_parameters {

// The integer value of parameter `key`, `fallback` when it is absent.
absl::StatusOr<int> Int(const config::ModelConfig& config, const std::string& key, int fallback);

// The value of parameter `key` (1/true/True or 0/false/False), `fallback` when absent.
absl::StatusOr<bool> Bool(const config::ModelConfig& config, const std::string& key, bool fallback);

}  // namespace ortserve::repository::config_parameters
