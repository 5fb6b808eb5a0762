// SPDX-License-Identifier: Apache-2.0
// Model source: what the repository folder holds for a model, read from disk
// and fingerprinted by content, plus the checks that keep request-supplied
// names and config-supplied file names inside the repository.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace ortserve::repository {

// One model folder as read at one moment. Fingerprints hash file names, sizes
// and bytes (never mtimes), so an edit that keeps the size and the timestamp is
// still seen, and a `touch` alone is not a change.
struct ModelSnapshot {
  std::string name;
  std::string dir;                 // <repository>/<name>
  bool has_config = false;         // config.pbtxt exists.
  std::string config_text;         // Its content when present.
  uint64_t model_fingerprint = 0;  // config.pbtxt and every file outside version folders.
  // Per version folder found (a folder whose name is a non-negative integer).
  std::map<int64_t, uint64_t> version_fingerprints;
  // Everything above together: equal values mean nothing on disk changed.
  uint64_t fingerprint = 0;
};

// Reads `<repository>/<name>` and fingerprints it. Errors: NotFound when the
// folder does not exist; Internal when a file cannot be read.
absl::StatusOr<ModelSnapshot> ReadModelSnapshot(const std::string& repository, const std::string& name);

// The model folders in `repository` (sorted; hidden folders skipped).
// Errors: NotFound when `repository` is not a directory.
absl::StatusOr<std::vector<std::string>> ListModelNames(const std::string& repository);

// A model name as it arrives in a request (URL segment, gRPC field): not
// empty, no '/', '\\' or NUL, no "..", not starting with '.', and — with the
// repository path resolved through symlinks — naming a direct child of the
// repository. Errors: InvalidArgument naming the offending name.
absl::Status ValidateModelName(const std::string& repository, std::string_view name);

// A file name a config gives (default_model_filename, label_filename,
// warm-up input_data_file): relative, no "..", no NUL, `field` names the
// config field in the error. Errors: InvalidArgument.
absl::Status ValidateRelativeFileName(std::string_view field, std::string_view file_name);

// Parses a version folder name; nullopt if it is not a non-negative integer.
std::optional<int64_t> ParseVersionNumber(std::string_view text);

}  // namespace ortserve::repository
