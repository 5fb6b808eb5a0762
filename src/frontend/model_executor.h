// SPDX-License-Identifier: Apache-2.0
// ModelExecutor: the server's router::Executor. It checks a request against
// the version the router chose (the model's declared inputs and outputs, or
// its text signature) and runs it: on the version's scheduler, or through its
// text pipeline (tokenized on the tokenization pool, one row per text).
//
// Thread-safe (stateless apart from its options).
#pragma once

#include "pipeline/tokenization_pool.h"
#include "repository/model_manager.h"
#include "router/executor.h"

namespace ortserve::frontend {

class ModelExecutor final : public router::Executor {
 public:
  // `tokenization_pool` (not owned; outlives the executor) is where text
  // models tokenize; null: on the calling thread (tests).
  explicit ModelExecutor(pipeline::TokenizationPool* tokenization_pool) : pool_(tokenization_pool) {}

  absl::Status Validate(const repository::ModelVersion& model, InferRequest& request) override;
  void Execute(repository::ModelHandle model, std::unique_ptr<InferRequest> request, InferCallback done,
               bool version_held) override;

  // Validate's checks for a model without a text pipeline: input names,
  // types, shapes against the served shape, batch size, byte sizes, required
  // inputs, requested outputs. InvalidArgument naming the tensor.
  static absl::Status ValidateTensorRequest(const repository::ModelVersion& model, const InferRequest& request);

 private:
  pipeline::TokenizationPool* pool_;
};

}  // namespace ortserve::frontend
