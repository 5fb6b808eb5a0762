// SPDX-License-Identifier: Apache-2.0
#include "scheduler/batch_builder.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>

#include "core/checked_math.h"
#include "core/strings.h"

namespace ortserve::scheduler {
namespace {

// Reserve's bound on what a model's declared shape may preallocate per input.
constexpr uint64_t kReserveCap = uint64_t{256} << 20;

// The input of `request` named like seed input `index` (`name`); requests
// usually list inputs in the same order, so that position is tried first.
const Tensor* MatchingInput(const InferRequest& request, size_t index, const std::string& name) {
  if (index < request.inputs.size() && request.inputs[index].name == name) {
    return &request.inputs[index];
  }
  for (const auto& input : request.inputs) {
    if (input.name == name) return &input;
  }
  return nullptr;
}

// Elements per row (the product of the dimensions after the first). Only for
// shapes whose total size was checked already: the batch's, once BatchBytes
// accepted it, and those within it.
int64_t InnerCount(std::span<const int64_t> shape) {
  int64_t n = 1;
  for (size_t i = 1; i < shape.size(); ++i) n *= shape[i];
  return n;
}

// The bytes of a dense block of `shape`, or nullopt on overflow.
std::optional<uint64_t> BlockBytes(std::span<const int64_t> shape, size_t element_size) {
  std::optional<uint64_t> bytes = element_size;
  for (int64_t dim : shape) {
    if (dim < 0) return std::nullopt;
    bytes = CheckedMul(*bytes, static_cast<uint64_t>(dim));
    if (!bytes) return std::nullopt;
  }
  return bytes;
}

// Copies a row-major block of shape `src` into the top-left corner of a block
// of shape `dst` (dst[i] >= src[i] for every dimension).
void CopyPadded(const std::byte* src, std::byte* dst, std::span<const int64_t> src_shape,
                std::span<const int64_t> dst_shape, size_t element_size) {
  if (src_shape.size() == 1) {
    std::memcpy(dst, src, static_cast<size_t>(src_shape[0]) * element_size);
    return;
  }
  const size_t src_inner = static_cast<size_t>(InnerCount(src_shape)) * element_size;
  const size_t dst_inner = static_cast<size_t>(InnerCount(dst_shape)) * element_size;
  for (int64_t i = 0; i < src_shape[0]; ++i) {
    CopyPadded(src + i * src_inner, dst + i * dst_inner, src_shape.subspan(1), dst_shape.subspan(1),
               element_size);
  }
}

void Fill(std::byte* dst, size_t bytes, const PadElement& pad) {
  bool zero = true;
  for (size_t i = 0; i < pad.size; ++i) zero = zero && pad.bytes[i] == std::byte{0};
  if (zero) {
    std::memset(dst, 0, bytes);
    return;
  }
  for (size_t at = 0; at + pad.size <= bytes; at += pad.size) std::memcpy(dst + at, pad.bytes.data(), pad.size);
}

template <typename T>
T Saturate(double value) {
  if (std::isnan(value)) return T{0};
  if (value <= static_cast<double>(std::numeric_limits<T>::lowest())) return std::numeric_limits<T>::lowest();
  if (value >= static_cast<double>(std::numeric_limits<T>::max())) return std::numeric_limits<T>::max();
  return static_cast<T>(value);
}

uint16_t FloatToHalf(float f) {
  uint32_t x;
  std::memcpy(&x, &f, sizeof(x));
  const uint32_t sign = (x >> 16) & 0x8000u;
  const int32_t exponent = static_cast<int32_t>((x >> 23) & 0xffu);
  uint32_t mantissa = x & 0x7fffffu;
  if (exponent == 0xff) return static_cast<uint16_t>(sign | 0x7c00u | (mantissa != 0 ? 0x200u : 0u));
  const int32_t e = exponent - 127 + 15;
  if (e >= 0x1f) return static_cast<uint16_t>(sign | 0x7c00u);  // Overflow: infinity.
  if (e <= 0) {                                                   // Subnormal half, or zero.
    if (e < -10) return static_cast<uint16_t>(sign);
    mantissa |= 0x800000u;
    const int shift = 14 - e;
    uint32_t half = mantissa >> shift;
    const uint32_t rest = mantissa & ((1u << shift) - 1);
    const uint32_t mid = 1u << (shift - 1);
    if (rest > mid || (rest == mid && (half & 1u))) ++half;
    return static_cast<uint16_t>(sign | half);
  }
  uint32_t half = sign | (static_cast<uint32_t>(e) << 10) | (mantissa >> 13);
  const uint32_t rest = mantissa & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (half & 1u))) ++half;  // A carry rounds up the exponent.
  return static_cast<uint16_t>(half);
}

uint16_t FloatToBfloat16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, sizeof(x));
  if (std::isnan(f)) return static_cast<uint16_t>((x >> 16) | 0x40u);
  x += 0x7fffu + ((x >> 16) & 1u);
  return static_cast<uint16_t>(x >> 16);
}

template <typename T>
PadElement ElementOf(T value) {
  PadElement pad;
  std::memcpy(pad.bytes.data(), &value, sizeof(T));
  pad.size = sizeof(T);
  return pad;
}

}  // namespace

absl::StatusOr<int64_t> BatchRows(const InferRequest& request) {
  if (request.inputs.empty()) {
    return absl::InvalidArgumentError(StrCat("request '", request.id, "' has no inputs"));
  }
  int64_t rows = -1;
  for (const auto& input : request.inputs) {
    if (input.shape.empty()) {
      return absl::InvalidArgumentError(StrCat("input '", input.name, "' has shape [] but model '",
                                               request.model_name, "' needs a batch dimension"));
    }
    if (rows >= 0 && input.shape[0] != rows) {
      return absl::InvalidArgumentError(
          StrCat("input '", input.name, "' has batch size ", input.shape[0], " but input '",
                 request.inputs[0].name, "' has ", rows, "; all inputs need the same batch size"));
    }
    rows = input.shape[0];
  }
  if (rows < 1) {
    return absl::InvalidArgumentError(
        StrCat("input '", request.inputs[0].name, "' has batch size ", rows, "; it must be at least 1"));
  }
  return rows;
}

bool CanBatch(const InferRequest& seed, const InferRequest& candidate, bool pad) {
  if (seed.inputs.size() != candidate.inputs.size()) return false;
  for (size_t i = 0; i < seed.inputs.size(); ++i) {
    const Tensor& a = seed.inputs[i];
    const Tensor* b = MatchingInput(candidate, i, a.name);
    if (b == nullptr || b->type != a.type || b->shape.size() != a.shape.size()) return false;
    const bool may_pad = pad && a.type != DataType::kBytes;
    if (may_pad) continue;
    for (size_t d = 1; d < a.shape.size(); ++d) {
      if (a.shape[d] != b->shape[d]) return false;
    }
  }
  return true;
}

PadElement MakePadElement(DataType type, double value) {
  switch (type) {
    case DataType::kBool: return ElementOf<uint8_t>(value != 0 ? 1 : 0);
    case DataType::kUint8: return ElementOf(Saturate<uint8_t>(value));
    case DataType::kUint16: return ElementOf(Saturate<uint16_t>(value));
    case DataType::kUint32: return ElementOf(Saturate<uint32_t>(value));
    case DataType::kUint64: return ElementOf(Saturate<uint64_t>(value));
    case DataType::kInt8: return ElementOf(Saturate<int8_t>(value));
    case DataType::kInt16: return ElementOf(Saturate<int16_t>(value));
    case DataType::kInt32: return ElementOf(Saturate<int32_t>(value));
    case DataType::kInt64: return ElementOf(Saturate<int64_t>(value));
    case DataType::kFp16: return ElementOf(FloatToHalf(static_cast<float>(value)));
    case DataType::kBf16: return ElementOf(FloatToBfloat16(static_cast<float>(value)));
    case DataType::kFp32: return ElementOf(static_cast<float>(value));
    case DataType::kFp64: return ElementOf(value);
    case DataType::kBytes:
    case DataType::kInvalid: break;
  }
  return PadElement{};
}

void BatchInputBuilder::Size(Buffer& buffer, size_t bytes, int64_t rows, int64_t max_rows, uint64_t cap) {
  if (bytes > buffer.memory.size()) {
    size_t capacity = bytes;
    if (rows > 0 && max_rows > rows) {
      const std::optional<uint64_t> warm =
          CheckedMul(static_cast<uint64_t>(bytes / static_cast<size_t>(rows)), static_cast<uint64_t>(max_rows));
      capacity = std::max<uint64_t>(bytes, std::min<uint64_t>(warm.value_or(cap), cap));
    }
    // The old contents need not survive: every Build writes the whole batch.
    buffer.memory = memory_source_ != nullptr ? memory_source_->AllocateHostBuffer(capacity)
                                              : backend::HostBuffer(capacity);
  }
  buffer.size = bytes;
}

void BatchInputBuilder::Reserve(std::span<const backend::TensorSpec> inputs, int64_t max_rows) {
  if (buffers_.size() < inputs.size()) buffers_.resize(inputs.size());
  tensors_.resize(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const backend::TensorSpec& spec = inputs[i];
    tensors_[i].name.assign(spec.name);
    const size_t element_size = DataTypeSize(spec.type);
    bool fixed = element_size > 0 && !spec.dims.empty();
    int64_t row = 1;
    for (size_t d = 1; fixed && d < spec.dims.size(); ++d) {
      fixed = spec.dims[d] >= 0;
      const std::optional<int64_t> grown = fixed ? CheckedMul(row, spec.dims[d]) : std::nullopt;
      fixed = grown.has_value();
      row = grown.value_or(0);
    }
    const std::optional<int64_t> rows_elements = CheckedMul(row, max_rows);
    const std::optional<uint64_t> bytes =
        rows_elements ? CheckedMul(static_cast<uint64_t>(*rows_elements), uint64_t{element_size}) : std::nullopt;
    // A model declares its own dims; one that asks for more than the padded
    // bound up front is warmed on its first batch instead.
    if (fixed && max_rows > 0 && bytes && *bytes <= kReserveCap) {
      Size(buffers_[i], *bytes, max_rows, max_rows, kReserveCap);
    }
  }
}

absl::Status BatchInputBuilder::Build(std::span<const InferRequest* const> requests,
                                      const BuildOptions& options) {
  const InferRequest& seed = *requests[0];
  const size_t input_count = seed.inputs.size();
  if (buffers_.size() < input_count) buffers_.resize(input_count);
  tensors_.resize(input_count);
  for (size_t i = 0; i < input_count; ++i) {
    const Tensor& seed_input = seed.inputs[i];
    const bool may_pad = options.pad && seed_input.type != DataType::kBytes;
    const size_t element_size = DataTypeSize(seed_input.type);
    Tensor& batch = tensors_[i];
    batch.name.assign(seed_input.name);  // Reuses the string's capacity.
    batch.type = seed_input.type;
    batch.shape = seed_input.shape;
    batch.holder = nullptr;
    batch.shape[0] = 0;
    uint64_t bytes = 0;
    bool padded = false;
    for (const InferRequest* request : requests) {
      const Tensor* input = MatchingInput(*request, i, seed_input.name);
      const std::optional<int64_t> rows = CheckedAdd(batch.shape[0], input->shape[0]);
      const std::optional<uint64_t> sum = CheckedAdd(bytes, uint64_t{input->data.size()});
      if (!rows || !sum) {
        return absl::InvalidArgumentError(StrCat("input '", input->name, "': the batch's size overflows"));
      }
      batch.shape[0] = *rows;
      bytes = *sum;
      for (size_t d = 1; d < batch.shape.size(); ++d) {
        if (input->shape[d] != batch.shape[d]) {
          padded = true;
          batch.shape[d] = std::max(batch.shape[d], input->shape[d]);
        }
      }
      if (!may_pad || element_size == 0) continue;
      const std::optional<uint64_t> want = BlockBytes(input->shape, element_size);
      if (!want || input->data.size() != *want) {
        return absl::InvalidArgumentError(StrCat("input '", input->name, "' of request '", request->id,
                                                 "' has ", input->data.size(), " bytes, which its shape ",
                                                 ShapeToString(input->shape), " does not call for"));
      }
    }
    Buffer& buffer = buffers_[i];
    if (!padded) {
      // Equal non-batch shapes (or BYTES): the batch is the plain concatenation.
      Size(buffer, bytes, batch.shape[0], options.max_rows, std::max(bytes, options.max_padded_bytes));
      size_t at = 0;
      for (const InferRequest* request : requests) {
        const Tensor* input = MatchingInput(*request, i, seed_input.name);
        if (!input->data.empty()) std::memcpy(buffer.memory.data() + at, input->data.data(), input->data.size());
        at += input->data.size();
      }
    } else {
      // Every size below is within the batch's, which is checked here once.
      const std::optional<uint64_t> total = BlockBytes(batch.shape, element_size);
      if (!total || *total > options.max_padded_bytes) {
        return absl::InvalidArgumentError(StrCat("input '", seed_input.name, "': padded to ",
                                                 ShapeToString(batch.shape), " the batch would need more than ",
                                                 options.max_padded_bytes, " bytes (max_padded_batch_bytes)"));
      }
      const size_t row_bytes = static_cast<size_t>(InnerCount(batch.shape)) * element_size;
      Size(buffer, static_cast<size_t>(*total), batch.shape[0], options.max_rows, options.max_padded_bytes);
      const PadElement pad_element = MakePadElement(seed_input.type, options.pad_value);
      Shape target;
      size_t at = 0;
      for (const InferRequest* request : requests) {
        const Tensor* input = MatchingInput(*request, i, seed_input.name);
        const size_t region = static_cast<size_t>(input->shape[0]) * row_bytes;
        if (input->data.size() == region) {
          std::memcpy(buffer.memory.data() + at, input->data.data(), region);
        } else {
          Fill(buffer.memory.data() + at, region, pad_element);
          target = batch.shape;
          target[0] = input->shape[0];
          if (!input->data.empty()) {
            CopyPadded(input->data.data(), buffer.memory.data() + at, input->shape, target, element_size);
          }
        }
        at += region;
      }
    }
    batch.data = std::span<const std::byte>(buffer.memory.data(), buffer.size);
  }
  return absl::OkStatus();
}

bool PaddedBatchShape::Start(const InferRequest& seed, uint64_t max_bytes) {
  seed_ = &seed;
  if (shapes_.size() < seed.inputs.size()) shapes_.resize(seed.inputs.size());
  for (size_t i = 0; i < seed.inputs.size(); ++i) {
    shapes_[i] = seed.inputs[i].shape;
    if (!shapes_[i].empty()) shapes_[i][0] = 0;
  }
  if (Fits(seed, max_bytes, /*commit=*/false) && Fits(seed, max_bytes, /*commit=*/true)) return true;
  seed_ = nullptr;  // Nothing may join it.
  return false;
}

bool PaddedBatchShape::TryJoin(const InferRequest& candidate, uint64_t max_bytes) {
  return seed_ != nullptr && Fits(candidate, max_bytes, /*commit=*/false) &&
         Fits(candidate, max_bytes, /*commit=*/true);
}

bool PaddedBatchShape::Fits(const InferRequest& request, uint64_t max_bytes, bool commit) {
  for (size_t i = 0; i < seed_->inputs.size(); ++i) {
    const Tensor& seed_input = seed_->inputs[i];
    const Tensor* input = MatchingInput(request, i, seed_input.name);
    if (input == nullptr || input->shape.size() != shapes_[i].size() || shapes_[i].empty()) return false;
    // BYTES inputs are never padded (CanBatch wants equal shapes): their
    // bytes are the requests' own.
    const size_t element_size = DataTypeSize(seed_input.type);
    if (element_size == 0) continue;
    Shape& shape = shapes_[i];
    const std::optional<int64_t> rows = CheckedAdd(shape[0], input->shape[0]);
    if (!rows) return false;
    std::optional<uint64_t> bytes = CheckedMul(static_cast<uint64_t>(*rows), uint64_t{element_size});
    for (size_t d = 1; bytes && d < shape.size(); ++d) {
      bytes = CheckedMul(*bytes, static_cast<uint64_t>(std::max(shape[d], input->shape[d])));
    }
    if (!bytes || *bytes > max_bytes) return false;
    if (!commit) continue;
    shape[0] = *rows;
    for (size_t d = 1; d < shape.size(); ++d) shape[d] = std::max(shape[d], input->shape[d]);
  }
  return true;
}

absl::Status SliceRows(const Tensor& batch_output, int64_t batch_rows, int64_t row_begin, int64_t rows,
                       Tensor* out) {
  if (batch_output.shape.empty() || batch_output.shape[0] != batch_rows) {
    return absl::InternalError(StrCat("output '", batch_output.name, "' has shape ",
                                      ShapeToString(batch_output.shape), " but the batch has ", batch_rows,
                                      " rows; it cannot be split back per request"));
  }
  out->type = batch_output.type;
  out->shape = batch_output.shape;
  out->shape[0] = rows;
  out->holder = batch_output.holder;
  const int64_t per_row = InnerCount(batch_output.shape);
  if (batch_output.type != DataType::kBytes) {
    const size_t row_bytes = batch_rows == 0 ? 0 : batch_output.data.size() / static_cast<size_t>(batch_rows);
    out->data = batch_output.data.subspan(static_cast<size_t>(row_begin) * row_bytes,
                                          static_cast<size_t>(rows) * row_bytes);
    return absl::OkStatus();
  }
  // BYTES: walk the length prefixes to the row boundaries.
  const std::span<const std::byte> data = batch_output.data;
  size_t at = 0;
  size_t begin = 0;
  const int64_t first = row_begin * per_row;
  const int64_t last = (row_begin + rows) * per_row;
  for (int64_t element = 0; element < last; ++element) {
    if (element == first) begin = at;
    if (data.size() - at < 4) {
      return absl::InternalError(StrCat("BYTES output '", batch_output.name, "' is truncated at element ", element));
    }
    uint32_t length = 0;
    for (int b = 0; b < 4; ++b) length |= static_cast<uint32_t>(data[at + b]) << (8 * b);
    if (length > data.size() - at - 4) {
      return absl::InternalError(StrCat("BYTES output '", batch_output.name, "' element ", element,
                                        " runs past the end of the data"));
    }
    at += 4 + length;
  }
  if (first == last) begin = at;
  out->data = data.subspan(begin, at - begin);
  return absl::OkStatus();
}

}  // namespace ortserve::scheduler
