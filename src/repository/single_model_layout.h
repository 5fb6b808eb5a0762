// SPDX-License-Identifier: Apache-2.0
// The single-file repository layout: a folder whose top level holds
// `model.onnx` (and optionally `config.pbtxt`) with no Triton layout around
// it, as KServe's storage initializer leaves /mnt/models when a storageUri
// names one file. Served as one model, version 1, under a name the operator
// gives (--model-name; KServe passes the InferenceService name).
//
// It is staged, not special-cased in the manager: a private folder holds
// `<name>/1/model.onnx` and `<name>/config.pbtxt` as symbolic links to the
// originals, so the repository code sees an ordinary Triton layout and polls
// follow the original files by content. The source folder is never written
// (KServe mounts it read-only).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace ortserve::repository {

// A staged repository; removes its folder when destroyed. Not thread-safe
// (owned by the server's wiring; nothing shares it).
class StagedRepository {
 public:
  StagedRepository(const StagedRepository&) = delete;
  StagedRepository& operator=(const StagedRepository&) = delete;
  ~StagedRepository();

  // The folder to pass as the model repository.
  const std::string& path() const { return path_; }
  // The model it holds.
  const std::string& model_name() const { return model_name_; }
  // The folder whose model.onnx it links to (where its links lead).
  const std::string& source() const { return source_; }

  // When `repository` holds a regular file `model.onnx` at its top level,
  // stages it as model `model_name` (version 1) in a new folder under
  // `staging_parent` (empty: the system's temporary folder) and returns the
  // staged repository; otherwise nullopt (a Triton-layout repository).
  // Errors: InvalidArgument when `model_name` is not a usable model name
  // (empty, '/', '\\', NUL, "..", leading '.', over 255 bytes); Internal when
  // the staging folder cannot be made.
  static absl::StatusOr<std::unique_ptr<StagedRepository>> StageIfSingleModel(const std::string& repository,
                                                                              const std::string& model_name,
                                                                              const std::string& staging_parent = {});

 private:
  StagedRepository(std::string path, std::string model_name, std::string source)
      : path_(std::move(path)), model_name_(std::move(model_name)), source_(std::move(source)) {}

  std::string path_;
  std::string model_name_;
  std::string source_;
};

}  // namespace ortserve::repository
