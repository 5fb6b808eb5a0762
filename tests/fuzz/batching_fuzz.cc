// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for the path that combines requests: several REST
// requests, decoded and checked as the server checks them, are grouped into
// batches by the scheduler's rules (CanBatch, the padded-size bound), built by
// the real BatchInputBuilder, and split back with SliceRows as a model that
// echoes its input would be. Decoders fuzzed alone never reach the arithmetic
// of padding one request's shape against another's; issue #14's remote crash
// lived there.
//
// Input layout: byte 0 holds flags (bit 0: pad variable dims), byte 1 picks
// the padded-batch byte bound (1 KiB << (b % 17), up to 64 MiB), then up to
// eight request bodies separated by "\n;\n".
//
// Stateful: the builder (and so its buffers) lives across inputs, as a runner's
// does across batches, so a buffer sized by one input and reused by the next
// is exercised too.
//
// Checked properties: a batch the rules accept always builds; its shape and
// bytes agree; every request's rows come back unchanged (for padded batches,
// in the top-left corner of its padded rows, the rest being the pad value).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "frontend/http/kserve_json_codec.h"
#include "scheduler/batch_builder.h"
#include "simdjson.h"

namespace {

using ortserve::InferRequest;
using ortserve::Tensor;
using ortserve::scheduler::BatchInputBuilder;

constexpr int64_t kMaxRows = 8;
constexpr double kPadValue = 7;

void Check(bool condition) {
  if (!condition) __builtin_trap();
}

// Compares the top-left block of `padded` (shape `outer`) with `inner` (shape
// `inner_shape`); every other element must equal `pad`.
bool MatchesPadded(const std::byte* padded, std::span<const int64_t> outer, const std::byte* inner,
                   std::span<const int64_t> inner_shape, size_t element_size, const ortserve::scheduler::PadElement& pad) {
  if (outer.empty()) return std::memcmp(padded, inner, element_size) == 0;
  size_t outer_inner = element_size, inner_inner = element_size;
  for (size_t d = 1; d < outer.size(); ++d) {
    outer_inner *= static_cast<size_t>(outer[d]);
    inner_inner *= static_cast<size_t>(inner_shape[d]);
  }
  for (int64_t i = 0; i < outer[0]; ++i) {
    const std::byte* block = padded + static_cast<size_t>(i) * outer_inner;
    if (i < inner_shape[0]) {
      if (!MatchesPadded(block, outer.subspan(1), inner + static_cast<size_t>(i) * inner_inner,
                         inner_shape.subspan(1), element_size, pad)) {
        return false;
      }
      continue;
    }
    for (size_t at = 0; at < outer_inner; at += element_size) {
      if (std::memcmp(block + at, pad.bytes.data(), element_size) != 0) return false;
    }
  }
  return true;
}

void RunBatch(std::span<const InferRequest* const> batch, bool pad, uint64_t max_bytes) {
  static BatchInputBuilder builder;  // Stateful on purpose (see the header).
  const absl::Status built = builder.Build(batch, {.pad = pad, .pad_value = kPadValue, .max_rows = kMaxRows,
                                                   .max_padded_bytes = max_bytes});
  Check(built.ok());
  int64_t total_rows = 0;
  for (const InferRequest* request : batch) total_rows += request->inputs[0].shape[0];
  const auto tensors = builder.tensors();
  Check(tensors.size() == batch[0]->inputs.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& output = tensors[i];  // The echo model's output.
    Check(output.shape[0] == total_rows);
    const size_t element_size = ortserve::DataTypeSize(output.type);
    if (element_size > 0) {
      auto bytes = ortserve::DenseByteSize(output.type, output.shape);
      Check(bytes.ok() && *bytes == output.data.size());
    }
    int64_t row_begin = 0;
    for (const InferRequest* request : batch) {
      const Tensor* input = request->FindInput(output.name);
      Check(input != nullptr);
      Tensor slice;
      Check(ortserve::scheduler::SliceRows(output, total_rows, row_begin, input->shape[0], &slice).ok());
      row_begin += input->shape[0];
      if (slice.shape == input->shape) {
        Check(slice.data.size() == input->data.size());
        Check(input->data.empty() || std::memcmp(slice.data.data(), input->data.data(), input->data.size()) == 0);
      } else {
        Check(pad && element_size > 0);
        Check(MatchesPadded(slice.data.data(), slice.shape, input->data.data(), input->shape, element_size,
                            ortserve::scheduler::MakePadElement(output.type, kPadValue)));
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const bool pad = data[0] & 1;
  const uint64_t max_bytes = uint64_t{1024} << (data[1] % 17);
  const std::string_view rest(reinterpret_cast<const char*>(data + 2), size - 2);

  // Decode and check each body as the server does before queueing it.
  std::vector<std::unique_ptr<InferRequest>> requests;
  size_t at = 0;
  while (at <= rest.size() && requests.size() < 8) {
    size_t end = rest.find("\n;\n", at);
    if (end == std::string_view::npos) end = rest.size();
    auto body = std::make_shared<std::string>(rest.substr(at, end - at));
    const size_t body_size = body->size();
    body->append(simdjson::SIMDJSON_PADDING, '\0');
    auto request = ortserve::frontend::DecodeInferRequest(body->data(), body_size, body->size(), std::nullopt,
                                                          body, absl::FromUnixSeconds(1));
    at = end + 3;
    if (!request.ok()) continue;
    // As the server's model checks: valid bytes, and no input twice.
    bool valid = true;
    for (size_t i = 0; i < request->inputs.size(); ++i) {
      valid = valid && ortserve::ValidateTensorBytes(request->inputs[i]).ok();
      for (size_t j = 0; j < i; ++j) valid = valid && request->inputs[j].name != request->inputs[i].name;
    }
    auto rows = ortserve::scheduler::BatchRows(*request);
    if (!valid || !rows.ok() || *rows > kMaxRows) continue;
    requests.push_back(std::make_unique<InferRequest>(std::move(*request)));
  }

  // Form batches in queue order as the dynamic batcher does: the head always
  // runs; others join while they batch with it, fit the rows and, padded,
  // the byte bound.
  std::vector<bool> done(requests.size(), false);
  std::vector<const InferRequest*> batch;
  ortserve::scheduler::PaddedBatchShape padded;
  for (size_t head = 0; head < requests.size(); ++head) {
    if (done[head]) continue;
    batch.assign(1, requests[head].get());
    done[head] = true;
    int64_t rows = requests[head]->inputs[0].shape[0];
    if (pad) padded.Start(*requests[head], max_bytes);
    for (size_t j = head + 1; j < requests.size(); ++j) {
      if (done[j] || !ortserve::scheduler::CanBatch(*requests[head], *requests[j], pad)) continue;
      const int64_t more = requests[j]->inputs[0].shape[0];
      if (rows + more > kMaxRows) continue;
      if (pad && !padded.TryJoin(*requests[j], max_bytes)) continue;
      rows += more;
      batch.push_back(requests[j].get());
      done[j] = true;
    }
    // A request alone runs in place (no builder), as the scheduler does.
    if (batch.size() > 1) RunBatch(batch, pad, max_bytes);
  }
  return 0;
}
