// SPDX-License-Identifier: Apache-2.0
#include "pipeline/text_inference.h"

#include <atomic>
#include <cstring>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "core/checked_math.h"
#include "core/status.h"
#include "core/strings.h"
#include "observability/metrics.h"
#include "observability/tracing.h"

namespace ortserve::pipeline {
namespace {

// One text request in flight: its rows' sub-requests report here; the last
// one to answer finishes the request. Thread-safe (rows answer on scheduler
// runner threads).
struct TextJob {
  TextModel model;
  const TextPipeline* pipeline = nullptr;
  std::unique_ptr<InferRequest> request;  // Holds the text (views into its payload).
  InferCallback done;
  bool truncate = true;
  bool normalize = false;
  bool windows = false;  // sliding_window: long texts read as windows
  std::vector<std::string_view> texts;
  std::vector<TextEncodingInfo> infos;  // Per text.
  std::vector<size_t> first_row;        // Per text, then the total: its rows are [first_row[i], first_row[i+1]).
  std::vector<int64_t> row_lengths;     // Per model row: its tokens.
  std::vector<Tensor> rows;             // Per model row: its row of the model output.
  std::atomic<size_t> remaining{0};
  absl::Mutex mu;
  absl::Status error ABSL_GUARDED_BY(mu);
};

bool Wanted(const InferRequest& request, std::string_view name) {
  if (request.outputs.empty()) return true;
  for (const auto& output : request.outputs) {
    if (output.name == name) return true;
  }
  return false;
}

// Builds the text signature's outputs from the rows.
absl::StatusOr<InferResponse> Postprocess(TextJob& job) {
  const TextPipeline& pipeline = *job.pipeline;
  const auto n = static_cast<int64_t>(job.texts.size());
  InferResponse response;
  response.model_name = job.model.name;
  response.model_version = job.model.version;
  response.id = job.request->id;
  int64_t tokens = 0;
  for (const TextEncodingInfo& info : job.infos) tokens += info.tokens;
  response.parameters.Set(std::string(kTokenCountParameter), tokens);
  const InferRequest& request = *job.request;

  if (pipeline.task() == TextPipeline::Task::kClassification) {
    const size_t labels = pipeline.labels().size();
    std::vector<std::string> label_names(static_cast<size_t>(n));
    std::vector<float> probabilities(static_cast<size_t>(n) * labels);
    std::vector<float> logits(static_cast<size_t>(n) * labels);
    std::vector<uint8_t> positive(static_cast<size_t>(n));
    std::vector<float> positive_probability(static_cast<size_t>(n));
    Classification result;
    Classification window;
    bool review = false;
    for (int64_t i = 0; i < n; ++i) {
      const auto row = static_cast<size_t>(i);
      // A text read as several windows is decided by its most serious one:
      // an event anywhere in a long report is seen.
      RETURN_IF_ERROR(pipeline.Classify(job.rows[job.first_row[row]], &result));
      for (size_t w = job.first_row[row] + 1; w < job.first_row[row + 1]; ++w) {
        RETURN_IF_ERROR(pipeline.Classify(job.rows[w], &window));
        if (window.positive_probability > result.positive_probability) std::swap(result, window);
      }
      if (pipeline.ReviewRecommended(job.infos[row]) || pipeline.OutOfScope(result)) review = true;
      label_names[row] = std::string(result.label);
      std::memcpy(probabilities.data() + row * labels, result.probabilities.data(), labels * sizeof(float));
      std::memcpy(logits.data() + row * labels, result.logits.data(), labels * sizeof(float));
      positive[row] = result.is_positive ? 1 : 0;
      positive_probability[row] = result.positive_probability;
    }
    // Outputs in the signature's order, or the order the client asked for.
    auto add = [&](std::string_view name) {
      if (name == kLabelOutput) {
        response.outputs.push_back(MakeBytesTensor(std::string(name), Shape{n}, label_names));
      } else if (name == kProbabilitiesOutput) {
        response.outputs.push_back(MakeTensor<float>(std::string(name), DataType::kFp32,
                                                     Shape{n, static_cast<int64_t>(labels)}, probabilities));
      } else if (name == kLogitsOutput) {
        response.outputs.push_back(MakeTensor<float>(std::string(name), DataType::kFp32,
                                                     Shape{n, static_cast<int64_t>(labels)}, logits));
      } else if (name == kIsPositiveOutput) {
        response.outputs.push_back(MakeTensor<uint8_t>(std::string(name), DataType::kBool, Shape{n}, positive));
      } else if (name == kPositiveProbabilityOutput) {
        response.outputs.push_back(
            MakeTensor<float>(std::string(name), DataType::kFp32, Shape{n}, positive_probability));
      }
    };
    if (request.outputs.empty()) {
      for (const auto& spec : pipeline.text_outputs()) add(spec.name);
    } else {
      for (const auto& output : request.outputs) add(output.name);
    }
    if (job.windows) {
      response.parameters.Set(std::string(kWindowsParameter), static_cast<int64_t>(job.rows.size()));
      response.parameters.Set(std::string(kReviewRecommendedParameter), review);
    }
    return response;
  }

  std::vector<float> embeddings;
  std::vector<float> vector;
  int64_t dim = -1;
  for (int64_t i = 0; i < n; ++i) {
    const auto row = static_cast<size_t>(i);
    RETURN_IF_ERROR(pipeline.Embed(job.rows[row], job.row_lengths[row], job.normalize, &vector));
    if (dim < 0) {
      dim = static_cast<int64_t>(vector.size());
      embeddings.reserve(static_cast<size_t>(n * dim));
    } else if (dim != static_cast<int64_t>(vector.size())) {
      return absl::InternalError(StrCat("model '", job.model.name, "' gave embeddings of ", dim, " and ",
                                        vector.size(), " values in one request"));
    }
    embeddings.insert(embeddings.end(), vector.begin(), vector.end());
  }
  if (Wanted(request, kEmbeddingOutput)) {
    response.outputs.push_back(MakeTensor<float>(std::string(kEmbeddingOutput), DataType::kFp32,
                                                 Shape{n, dim}, embeddings));
  }
  return response;
}

void Finish(const std::shared_ptr<TextJob>& job) {
  absl::Status error;
  {
    absl::MutexLock lock(&job->mu);
    error = job->error;
  }
  InferCallback done = std::move(job->done);
  if (!error.ok()) return std::move(done)(std::move(error));
  std::move(done)(Postprocess(*job));
}

// Tokenizes every text and queues one sub-request per model row (a text is
// one row, or one per window). Runs on a tokenization worker (or inline
// without a pool).
void TokenizeAndQueue(const std::shared_ptr<TextJob>& job) {
  const TextPipeline& pipeline = *job->pipeline;
  const InferRequest& request = *job->request;
  const size_t n = job->texts.size();
  const LongText mode = job->windows ? LongText::kWindows : job->truncate ? LongText::kTruncate : LongText::kRefuse;
  // Windows are bounded per request, all texts together; one row per text
  // otherwise (at most kMaxTextRows).
  const int64_t budget = job->windows ? pipeline.options().max_windows : kMaxTextRows;
  int64_t used = 0;
  std::vector<std::vector<Tensor>> inputs;
  inputs.reserve(n);
  const absl::Time start = absl::Now();
  for (size_t i = 0; i < n; ++i) {
    job->first_row[i] = inputs.size();
    auto info = pipeline.TokenizeRows(job->texts[i], mode, budget - used, &inputs);
    if (!info.ok()) {
      absl::Status status = info.status();
      if (n > 1) {
        status = absl::Status(status.code(), StrCat("input 'text' element ", i, ": ", ToStd(status.message())));
      }
      InferCallback done = std::move(job->done);
      return std::move(done)(std::move(status));
    }
    // Both are at most the budget, so the sum cannot wrap; checked anyway.
    const std::optional<int64_t> sum = CheckedAdd(used, info->windows);
    if (!sum || *sum > budget) {
      InferCallback done = std::move(job->done);
      return std::move(done)(absl::OutOfRangeError(StrCat("the request needs more than ", budget,
                                                          " model rows (text_pipeline.max_windows)")));
    }
    used = *sum;
    job->infos[i] = *info;
  }
  const size_t rows = inputs.size();
  job->first_row[n] = rows;
  job->rows.resize(rows);
  job->row_lengths.resize(rows);
  std::vector<std::unique_ptr<InferRequest>> subs(rows);
  for (size_t r = 0; r < rows; ++r) {
    auto row = std::make_unique<InferRequest>();
    row->model_name = job->model.name;
    row->model_version = job->model.version;
    row->id = request.id;
    row->priority = request.priority;
    row->deadline = request.deadline;
    row->arrival = request.arrival;
    row->cancellation = request.cancellation;
    RequestedOutput output;
    output.name = pipeline.options().output;
    row->outputs.push_back(std::move(output));
    job->row_lengths[r] = inputs[r].empty() || inputs[r][0].shape.size() != 2 ? 0 : inputs[r][0].shape[1];
    row->inputs = std::move(inputs[r]);
    subs[r] = std::move(row);
  }
  const absl::Time end = absl::Now();
  if (job->model.metrics != nullptr) job->model.metrics->RecordTokenization(end - start);
  if (request.trace.sampled()) {
    int64_t tokens = 0;
    for (const TextEncodingInfo& info : job->infos) tokens += info.tokens;
    observability::Span span = observability::ChildSpan(request.trace, StrCat("tokenize ", job->model.name),
                                                        "tokenize", job->model.name,
                                                        job->model.version, start);
    span.end = end;
    span.attributes.emplace_back("llm.request.input_tokens", tokens);
    span.attributes.emplace_back("ai.request.texts", static_cast<int64_t>(n));
    span.attributes.emplace_back("ai.request.windows", static_cast<int64_t>(rows));
    request.trace.tracer->Export(std::move(span));
    // Each row's queue and batch spans belong to the request's span.
    for (auto& row : subs) {
      row->trace = request.trace;
      row->trace.input_tokens = tokens;
    }
  }
  job->remaining.store(rows, std::memory_order_relaxed);
  // The windows of a text are queued back to back, so the batcher takes them
  // into one batch as far as max_batch_size and the token budget allow.
  scheduler::Scheduler& scheduler = *job->model.scheduler;
  for (size_t i = 0; i < rows; ++i) {
    scheduler.Enqueue(std::move(subs[i]), [job, i](absl::StatusOr<InferResponse> result) {
      if (!result.ok()) {
        absl::MutexLock lock(&job->mu);
        if (job->error.ok()) job->error = result.status();
      } else if (result->outputs.empty()) {
        absl::MutexLock lock(&job->mu);
        if (job->error.ok()) {
          job->error = absl::InternalError(StrCat("model '", job->model.name, "' returned no output"));
        }
      } else {
        job->rows[i] = std::move(result->outputs[0]);
      }
      if (job->remaining.fetch_sub(1, std::memory_order_acq_rel) == 1) Finish(job);
    });
  }
}

}  // namespace

absl::Status ValidateTextRequest(const TextPipeline& pipeline, std::string_view model_name,
                                 const InferRequest& request) {
  if (request.inputs.size() != 1 || request.inputs[0].name != kTextInput) {
    for (const auto& input : request.inputs) {
      if (input.name != kTextInput) {
        return absl::InvalidArgumentError(StrCat("unexpected input '", input.name, "' for model '", model_name,
                                                 "', which takes one BYTES input 'text'"));
      }
    }
    return absl::InvalidArgumentError(
        StrCat("model '", model_name, "' expects exactly one input 'text' (BYTES, one string per row)"));
  }
  const Tensor& text = request.inputs[0];
  if (text.type != DataType::kBytes) {
    return absl::InvalidArgumentError(StrCat("input 'text' has datatype ", DataTypeName(text.type), ", model '",
                                             model_name, "' expects BYTES"));
  }
  const bool shape_ok = (text.shape.size() == 1) || (text.shape.size() == 2 && text.shape[1] == 1);
  if (!shape_ok || text.shape[0] < 1 || text.shape[0] > kMaxTextRows) {
    return absl::InvalidArgumentError(StrCat("input 'text' has shape ", ShapeToString(text.shape), ", model '",
                                             model_name, "' expects [n] (or [n,1]) with n from 1 to ",
                                             kMaxTextRows));
  }
  RETURN_IF_ERROR(ValidateTensorBytes(text));
  for (const auto& output : request.outputs) {
    if (pipeline.FindTextOutput(output.name) == nullptr) {
      return absl::InvalidArgumentError(
          StrCat("unexpected requested output '", output.name, "' for model '", model_name, "'"));
    }
  }
  for (std::string_view key : {kTruncateParameter, kNormalizeParameter, kSlidingWindowParameter}) {
    if (request.parameters.Find(key) != nullptr && !request.parameters.FindBool(key).has_value()) {
      return absl::InvalidArgumentError(StrCat("parameter '", key, "' must be a boolean"));
    }
  }
  if (request.parameters.FindBool(kSlidingWindowParameter).value_or(false) &&
      pipeline.task() != TextPipeline::Task::kClassification) {
    return absl::InvalidArgumentError(StrCat("parameter '", kSlidingWindowParameter, "' applies to ",
                                             "TEXT_CLASSIFICATION pipelines; model '", model_name,
                                             "' is an EMBEDDING pipeline"));
  }
  return absl::OkStatus();
}

void InferText(TextModel model, std::unique_ptr<InferRequest> request, TokenizationPool* pool,
               InferCallback done) {
  auto job = std::make_shared<TextJob>();
  job->pipeline = model.pipeline;
  job->model = std::move(model);
  job->truncate = request->parameters.FindBool(kTruncateParameter).value_or(true);
  job->normalize = request->parameters.FindBool(kNormalizeParameter).value_or(job->pipeline->options().normalize);
  job->windows = request->parameters.FindBool(kSlidingWindowParameter).value_or(false);
  auto texts = SplitBytesElements(request->inputs[0].data, request->inputs[0].shape[0], "text");
  if (!texts.ok()) return std::move(done)(texts.status());
  job->texts = *std::move(texts);
  job->infos.resize(job->texts.size());
  job->first_row.resize(job->texts.size() + 1);
  job->request = std::move(request);
  job->done = std::move(done);
  if (pool == nullptr) return TokenizeAndQueue(job);
  pool->Submit([job](absl::Status admitted) {
    if (!admitted.ok()) {
      InferCallback done = std::move(job->done);
      return std::move(done)(std::move(admitted));
    }
    TokenizeAndQueue(job);
  });
}

}  // namespace ortserve::pipeline
