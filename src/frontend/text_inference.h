// SPDX-License-Identifier: Apache-2.0
// Text inference: how the facade serves a model with a text pipeline. A
// request carries raw text (input `text`, BYTES [-1], one string per row); it
// is tokenized on the tokenization pool, each row becomes its own sub-request
// ([1, len] token tensors) queued to the model's scheduler, which batches rows
// of many requests by token budget; once every row is answered the outputs
// are post-processed (softmax and labels, or pooling and normalization) into
// the text signature's outputs.
#pragma once

#include <memory>

#include "core/clock.h"
#include "core/infer_request.h"
#include "pipeline/tokenization_pool.h"
#include "repository/model_manager.h"

namespace ortserve::frontend {

// Request parameters a text request may carry.
inline constexpr std::string_view kTruncateParameter = "truncate";    // bool, default true
inline constexpr std::string_view kNormalizeParameter = "normalize";  // bool, embeddings; default: config
// Response parameter: the number of tokens the request's texts encoded to.
inline constexpr std::string_view kTokenCountParameter = "token_count";

// The most rows (texts) one text request may carry.
inline constexpr int64_t kMaxTextRows = 1024;

// Checks `request` against the text signature of `model` (which has a
// text_pipeline): exactly one input `text`, BYTES, shape [n] or [n, 1] with
// 1 <= n <= kMaxTextRows, well-formed elements, known requested outputs, and
// boolean `truncate` / `normalize` parameters. InvalidArgument naming the
// tensor or parameter otherwise.
absl::Status ValidateTextRequest(const repository::ModelVersion& model, const InferRequest& request);

// Serves a validated text request; `done` is called exactly once (see
// InferenceService::Infer). Errors: InvalidArgument for text that is not
// UTF-8, OutOfRange for a text longer than max_length with truncate=false,
// ResourceExhausted when the tokenization queue is full, and the scheduler's
// errors. With no pool (tests), tokenization runs on the calling thread.
void InferText(repository::ModelHandle model, std::unique_ptr<InferRequest> request,
               pipeline::TokenizationPool* pool, InferCallback done);

}  // namespace ortserve::frontend
