// SPDX-License-Identifier: Apache-2.0
// Batch assembly: which requests may share a run, how their inputs are
// concatenated (and padded) into one batch, and how a batch output is cut back
// into per-request views.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "backend/session.h"
#include "core/infer_request.h"
#include "core/tensor.h"

namespace ortserve::scheduler {

// The rows (dim 0) a batchable request contributes, or InvalidArgument naming
// the input when inputs have no batch dimension or disagree on it.
absl::StatusOr<int64_t> BatchRows(const InferRequest& request);

// Whether `candidate` can run in one batch with `seed`: the same input names
// and types, and per input the same non-batch dimensions, or only the same
// rank when `pad` is set (BYTES inputs always need equal shapes: their
// elements have no fixed width to pad to).
bool CanBatch(const InferRequest& seed, const InferRequest& candidate, bool pad);

// One element of `type` holding `value` (cast; FP16/BF16 rounded to nearest
// even; integers saturate), used to fill padding.
struct PadElement {
  std::array<std::byte, 8> bytes{};
  size_t size = 0;
};
PadElement MakePadElement(DataType type, double value);

// Concatenates the inputs of several requests along dim 0 into buffers it owns
// and reuses: after the first batch of a given byte size, building another one
// allocates nothing (buffers and tensor vectors keep their capacity).
//
// The buffers come from the session the batches run on
// (Session::AllocateHostBuffer), so a GPU session's batches are built in
// pinned memory and reach the device in one DMA; without a session they are
// heap memory.
//
// Not thread-safe: one per runner thread. Must not outlive `memory_source`.
class BatchInputBuilder {
 public:
  explicit BatchInputBuilder(backend::Session* memory_source = nullptr) : memory_source_(memory_source) {}

  // Builds the batch for `requests` (all CanBatch with requests[0]). With `pad`
  // every input is padded to the largest size per dimension with `pad_value`.
  // A buffer that must grow is sized for `max_rows` rows of this batch's row
  // size at once, so that a runner is warm after its first batch of a shape.
  // The tensors are views into this builder's buffers, valid until the next
  // Build. Errors: InvalidArgument when a request's input bytes do not match its
  // shape.
  absl::Status Build(std::span<const InferRequest* const> requests, bool pad, double pad_value,
                     int64_t max_rows = 0);

  // Sizes the pool up front for the model's inputs: names, and for an input
  // whose non-batch dimensions are all fixed (and not BYTES), a buffer for
  // `max_rows` rows. Then a fixed-shape model allocates nothing on its first batch.
  void Reserve(std::span<const backend::TensorSpec> inputs, int64_t max_rows);

  std::span<const Tensor> tensors() const { return {tensors_.data(), tensors_.size()}; }

 private:
  struct Buffer {
    backend::HostBuffer memory;  // Its size is the capacity.
    size_t size = 0;             // Bytes of the current batch.
  };
  // Makes `buffer` hold `bytes`; a buffer that must grow takes room for
  // `max_rows` rows of `rows`' row size at once.
  void Size(Buffer& buffer, size_t bytes, int64_t rows, int64_t max_rows);

  backend::Session* memory_source_;
  std::vector<Buffer> buffers_;  // One per input position.
  std::vector<Tensor> tensors_;
};

// Sets `out` to rows [row_begin, row_begin + rows) of `batch_output`, whose dim
// 0 must be `batch_rows`: a view into the same bytes that shares its holder
// (no copy). `out->name` is left alone. Internal when the output has no batch
// dimension matching the batch, or malformed BYTES data.
absl::Status SliceRows(const Tensor& batch_output, int64_t batch_rows, int64_t row_begin,
                       int64_t rows, Tensor* out);

}  // namespace ortserve::scheduler
