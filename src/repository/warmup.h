// SPDX-License-Identifier: Apache-2.0
// Warm-up: runs a freshly loaded model version on generated or recorded
// inputs before it takes traffic (the config's `model_warmup`, Triton's
// schema), so the first real request does not pay for lazy initialisation and
// a version that cannot run is rejected before it is ever served.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "backend/session.h"
#include "repository/model_config.h"

namespace ortserve::repository {

// The inputs of one warm-up sample, built from `warmup`:
//  - each input's shape is its `dims`, with `batch_size` (at least 1) in front
//    when the config's max_batch_size > 0; every dim must be concrete;
//  - the type is the input's `data_type`, or the config input's type when it
//    is TYPE_INVALID;
//  - data: zero_data (zeros; empty strings for BYTES), random_data (values in
//    [0, 1) for floats, 0 or 1 for integers and BOOL, short letter strings for
//    BYTES), or input_data_file (raw bytes read from <model_dir>/warmup/<file>,
//    BYTES in the length-prefixed layout), whose size must match the shape.
// Every non-optional config input must be given, each at most
// kMaxWarmupBytes (BYTES elements counted at 12 bytes). Errors:
// InvalidArgument naming the warm-up, the input and the field.
inline constexpr uint64_t kMaxWarmupBytes = uint64_t{1} << 30;
absl::StatusOr<std::vector<Tensor>> BuildWarmupInputs(const ModelConfig& config,
                                                      const config::ModelWarmup& warmup,
                                                      const std::string& model_dir);

// Runs every warm-up of `config` `count` times (default 1) on each session,
// directly (not through a scheduler). With `cancel` (not owned; null: never
// cancelled) the runs go through Session::RunCancellable, so cancelling the
// token ends the warm-up within one run, even mid-run on ORT (an unload or
// shutdown during a warm-up of count 1000 on a slow model, issue #14.3).
// Errors: InvalidArgument for a bad warm-up spec, Cancelled (the token's
// reason) once cancelled, and the session's own error (prefixed with the
// warm-up name) when a run fails. Runs on the calling (loader) thread.
absl::Status RunWarmup(const ModelConfig& config, const std::string& model_dir,
                       std::span<const std::shared_ptr<backend::Session>> sessions,
                       backend::CancelToken* cancel = nullptr);

}  // namespace ortserve::repository
