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

// The padded shape of a batch as requests join it, for a scheduler deciding
// whether one more request fits: with padding, the batch takes the largest
// size of every dimension among its requests, so its bytes can far exceed the
// requests' own (a [1, 1, 100000] and a [1, 100000, 1] request pad to 80 GB of
// FP32). Every product is checked.
//
// Not thread-safe. Warm after its first batch of a rank (no allocation).
class PaddedBatchShape {
 public:
  // Starts a batch with `seed`. False when `seed` alone is over `max_bytes`
  // in some input: then nothing may join it (it can only run on its own).
  bool Start(const InferRequest& seed, uint64_t max_bytes);
  // Joins `candidate` (CanBatch with the seed, padded) when every padded
  // input of the batch, with it, stays at most `max_bytes`; false (and the
  // batch unchanged) otherwise.
  bool TryJoin(const InferRequest& candidate, uint64_t max_bytes);

 private:
  bool Fits(const InferRequest& request, uint64_t max_bytes, bool commit);
  const InferRequest* seed_ = nullptr;
  std::vector<Shape> shapes_;  // Per seed input: rows, then the largest of each dimension.
};

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

  struct BuildOptions {
    // Pad every input to the largest size per dimension with `pad_value`.
    bool pad = false;
    double pad_value = 0;
    // A buffer that must grow is sized for `max_rows` rows of this batch's
    // row size at once (never past `max_padded_bytes`), so that a runner is
    // warm after its first batch of a shape.
    int64_t max_rows = 0;
    // With `pad`: the most bytes one padded input may take.
    uint64_t max_padded_bytes = uint64_t{256} << 20;
  };
  // Builds the batch for `requests` (all CanBatch with requests[0]). The
  // tensors are views into this builder's buffers, valid until the next
  // Build. Errors: InvalidArgument when a request's input bytes do not match
  // its shape, or when the padded batch would exceed `max_padded_bytes` (a
  // scheduler that forms batches with PaddedBatchShape never sees this);
  // every size is checked arithmetic, so no shape can overflow a buffer.
  absl::Status Build(std::span<const InferRequest* const> requests, const BuildOptions& options);

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
  // `max_rows` rows of `rows`' row size at once, up to `cap` bytes.
  void Size(Buffer& buffer, size_t bytes, int64_t rows, int64_t max_rows, uint64_t cap);

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
