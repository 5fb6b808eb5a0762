// SPDX-License-Identifier: Apache-2.0
// OrtSessionFactory: creates ONNX Runtime sessions that share one Ort::Env.
// This folder is the only place ORT headers are included; Ort::Exception never
// leaves it.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "backend/session.h"

namespace ortserve::backend {

class OrtSessionFactory final : public SessionFactory {
 public:
  struct Options {
    // ORT's own log severity: 0 verbose .. 4 fatal.
    int log_severity = 3;
    std::string log_id = "ortserve";
    // The process-wide intra-op and inter-op thread pools that every session
    // without its own thread counts shares (0: one thread per core). Sharing
    // keeps a repository of many models from starting a spinning pool per
    // model.
    int shared_intra_op_threads = 0;
    int shared_inter_op_threads = 0;
    // Whether idle pool threads spin before sleeping (lower latency, more CPU).
    bool allow_spinning = true;
  };

  // Checks that the loaded libonnxruntime supports the API version the
  // headers were written for and creates the process's one Ort::Env.
  // FailedPrecondition (naming both versions) when the library is too old.
  static absl::StatusOr<std::unique_ptr<OrtSessionFactory>> Create(const Options& options);

  ~OrtSessionFactory() override;

  absl::StatusOr<std::unique_ptr<Session>> Create(const SessionOptions& options) override;

  // "1.29.0": the version of the loaded library.
  static std::string RuntimeVersion();

 private:
  struct Impl;
  explicit OrtSessionFactory(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ortserve::backend
