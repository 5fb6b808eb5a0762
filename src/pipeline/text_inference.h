// SPDX-License-Identifier: Apache-2.0
// Text inference: how a model with a text pipeline is served. A request
// carries raw text (input `text`, BYTES [-1], one string per row); it
// is tokenized on the tokenization pool, each row becomes its own sub-request
// ([1, len] token tensors) queued to the model's scheduler, which batches rows
// of many requests by token budget; once every row is answered the outputs
// are post-processed (softmax and labels, or pooling and normalization) into
// the text signature's outputs.
#pragma once

#include <memory>

#include <string_view>

#include "core/infer_request.h"
#include "pipeline/text_pipeline.h"
#include "pipeline/tokenization_pool.h"
#include "scheduler/scheduler.h"

namespace ortserve::observability {
class VersionMetrics;
}  // namespace ortserve::observability

namespace ortserve::pipeline {

// Request parameters a text request may carry.
inline constexpr std::string_view kTruncateParameter = "truncate";    // bool, default true
inline constexpr std::string_view kNormalizeParameter = "normalize";  // bool, embeddings; default: config
// bool, classification only, default false: a text longer than max_length is
// read as overlapping windows (TextPipeline::TokenizeRows) instead of being
// cut, and its answer is that of its most serious window (the highest
// probability of the positive label). Overrides `truncate`.
inline constexpr std::string_view kSlidingWindowParameter = "sliding_window";
// Response parameters: the number of tokens the request's texts encoded to;
// with sliding_window, the model rows (windows) read for all texts together
// and whether any text should go to a human (TextPipeline::ReviewRecommended,
// or the out-of-scope label won).
inline constexpr std::string_view kTokenCountParameter = "token_count";
inline constexpr std::string_view kWindowsParameter = "windows";
inline constexpr std::string_view kReviewRecommendedParameter = "review_recommended";

// The most rows (texts) one text request may carry.
inline constexpr int64_t kMaxTextRows = 1024;

// The model version a text request runs on. Its fields point into the
// version, which `keepalive` holds until the request is answered.
struct TextModel {
  const TextPipeline* pipeline = nullptr;
  scheduler::Scheduler* scheduler = nullptr;
  std::string_view name;
  std::string_view version;
  observability::VersionMetrics* metrics = nullptr;  // May be null.
  std::shared_ptr<const void> keepalive;
};

// Checks `request` against the text signature of `pipeline` (model
// `model_name`): exactly one input `text`, BYTES, shape [n] or [n, 1] with
// 1 <= n <= kMaxTextRows, well-formed elements, known requested outputs, and
// boolean `truncate` / `normalize` parameters. InvalidArgument naming the
// tensor or parameter otherwise (also for sliding_window on an embedding
// pipeline).
absl::Status ValidateTextRequest(const TextPipeline& pipeline, std::string_view model_name,
                                 const InferRequest& request);

// Serves a validated text request; `done` is called exactly once. Errors: InvalidArgument for text that is not
// UTF-8, OutOfRange for a text longer than max_length with truncate=false or
// for texts needing more than text_pipeline.max_windows windows,
// ResourceExhausted when the tokenization queue is full, and the scheduler's
// errors. With no pool (tests), tokenization runs on the calling thread.
void InferText(TextModel model, std::unique_ptr<InferRequest> request, TokenizationPool* pool,
               InferCallback done);

}  // namespace ortserve::pipeline
