// SPDX-License-Identifier: Apache-2.0
// Per-version remote models (issue 26): a version folder that holds
// `remote.pbtxt` instead of model.onnx is served by another inference
// server, so one model can have local and remote versions, and the router's
// split, sticky keys, override header and shadow work across them (a team
// moving a model between servers shadows or splits between the two).
//
//   resnet/config.pbtxt          # the model's config (inputs, batching, routing)
//   resnet/1/model.onnx          # version 1: local
//   resnet/2/remote.pbtxt        # version 2: endpoints: "triton:8001" protocol: KSERVE_GRPC ...
//
// remote.pbtxt holds the fields of a `remote { }` block (ModelRemote, text
// format). It overrides the model-wide block of a platform "remote" model.
// Functions of their arguments (and the file read): safe from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "proto/model_config.pb.h"

namespace ortserve::repository {

// The file in a version folder that makes the version remote.
inline constexpr char kVersionRemoteFile[] = "remote.pbtxt";

// `config` as version `source`'s remote.pbtxt (`text`) makes it: platform
// and backend "remote", and the file's block as its `remote`. Pure.
// Errors: InvalidArgument naming `source` with the line and column of a
// syntax error or an unknown field (a typo must not silently fall back to
// defaults), or the field that is not valid UTF-8.
absl::StatusOr<config::ModelConfig> ApplyVersionRemote(const config::ModelConfig& config, std::string_view text,
                                                       std::string_view source);

// The config version `version` of the model in `model_dir` loads with when
// its folder holds remote.pbtxt (ApplyVersionRemote); nullopt when it holds
// none. Errors: those of ApplyVersionRemote; NotFound when the file exists
// but cannot be read; InvalidArgument when it is over 64 KiB.
absl::StatusOr<std::optional<config::ModelConfig>> VersionRemoteConfig(const config::ModelConfig& config,
                                                                       const std::string& model_dir, int64_t version);

}  // namespace ortserve::repository
