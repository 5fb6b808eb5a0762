// SPDX-License-Identifier: Apache-2.0
#include "core/tensor.h"

#include <algorithm>
#include <optional>

#include "core/checked_math.h"
#include "core/status.h"
#include "core/strings.h"

namespace ortserve {

absl::StatusOr<int64_t> ElementCount(std::span<const int64_t> shape) {
  int64_t count = 1;
  // The product with zero dimensions counted as one: a shape like
  // [0, 2^62] holds no element but would overflow any later product
  // (padding it against another request, say), so it is refused as well.
  int64_t extent = 1;
  for (int64_t dim : shape) {
    if (dim < 0) {
      return absl::InvalidArgumentError(
          StrCat("shape ", ShapeToString(shape), " has a negative dimension"));
    }
    const std::optional<int64_t> grown = CheckedMul(extent, std::max<int64_t>(dim, 1));
    if (!grown || *grown > kMaxTensorElements) {
      return absl::InvalidArgumentError(StrCat("shape ", ShapeToString(shape),
                                               " has too many elements (at most 2^40, zero dimensions counted as 1)"));
    }
    extent = *grown;
    count *= dim;  // Cannot overflow: |count| <= extent.
  }
  return count;
}

absl::StatusOr<uint64_t> DenseByteSize(DataType type, std::span<const int64_t> shape) {
  ASSIGN_OR_RETURN(const int64_t count, ElementCount(shape));
  const size_t element_size = DataTypeSize(type);
  if (element_size == 0) {
    return absl::InvalidArgumentError(StrCat("data type ", DataTypeName(type), " has no fixed element size"));
  }
  const std::optional<uint64_t> bytes = CheckedMul(static_cast<uint64_t>(count), uint64_t{element_size});
  if (!bytes) {
    return absl::InvalidArgumentError(StrCat("shape ", ShapeToString(shape), " of ", DataTypeName(type),
                                             " needs more bytes than fit in 64 bits"));
  }
  return *bytes;
}

std::string ShapeToString(std::span<const int64_t> shape) {
  return StrCat("[", StrJoin(shape, ","), "]");
}

Tensor MakeOwnedTensor(std::string name, DataType type, Shape shape, std::vector<std::byte> bytes) {
  auto owned = std::make_shared<std::vector<std::byte>>(std::move(bytes));
  Tensor tensor;
  tensor.name = std::move(name);
  tensor.type = type;
  tensor.shape = std::move(shape);
  tensor.data = std::span<const std::byte>(owned->data(), owned->size());
  tensor.holder = std::move(owned);
  return tensor;
}

void AppendBytesElement(std::string_view element, std::vector<std::byte>* out) {
  const auto length = static_cast<uint32_t>(element.size());
  const size_t at = out->size();
  out->resize(at + 4 + element.size());
  // Little-endian length, independent of the host's byte order.
  for (int i = 0; i < 4; ++i) (*out)[at + i] = static_cast<std::byte>((length >> (8 * i)) & 0xff);
  if (!element.empty()) std::memcpy(out->data() + at + 4, element.data(), element.size());
}

Tensor MakeBytesTensor(std::string name, Shape shape, std::span<const std::string> elements) {
  std::vector<std::byte> bytes;
  for (const auto& element : elements) AppendBytesElement(element, &bytes);
  return MakeOwnedTensor(std::move(name), DataType::kBytes, std::move(shape), std::move(bytes));
}

absl::StatusOr<std::vector<std::string_view>> SplitBytesElements(std::span<const std::byte> data,
                                                                 int64_t expected_count,
                                                                 std::string_view tensor_name) {
  std::vector<std::string_view> elements;
  if (expected_count > 0) elements.reserve(static_cast<size_t>(expected_count));
  size_t at = 0;
  while (at < data.size()) {
    if (data.size() - at < 4) {
      return absl::InvalidArgumentError(StrCat(
          "BYTES tensor '", tensor_name, "': truncated element length at byte offset ", at));
    }
    uint32_t length = 0;
    for (int i = 0; i < 4; ++i) length |= static_cast<uint32_t>(data[at + i]) << (8 * i);
    at += 4;
    if (length > data.size() - at) {
      return absl::InvalidArgumentError(StrCat("BYTES tensor '", tensor_name, "': element ",
                                                     elements.size(), " claims ", length,
                                                     " bytes but only ", data.size() - at, " remain"));
    }
    elements.emplace_back(reinterpret_cast<const char*>(data.data() + at), length);
    at += length;
  }
  if (expected_count >= 0 && static_cast<int64_t>(elements.size()) != expected_count) {
    return absl::InvalidArgumentError(StrCat("BYTES tensor '", tensor_name, "' has ",
                                                   elements.size(), " elements, its shape needs ",
                                                   expected_count));
  }
  return elements;
}

absl::Status ValidateTensorBytes(const Tensor& tensor) {
  auto count = ElementCount(tensor.shape);
  if (!count.ok()) {
    return absl::InvalidArgumentError(StrCat("input '", tensor.name, "': ", count.status().message()));
  }
  if (tensor.type == DataType::kBytes) {
    return SplitBytesElements(tensor.data, *count, tensor.name).status();
  }
  if (DataTypeSize(tensor.type) == 0) {
    return absl::InvalidArgumentError(StrCat("tensor '", tensor.name, "' has an invalid data type"));
  }
  const absl::StatusOr<uint64_t> want = DenseByteSize(tensor.type, tensor.shape);
  if (!want.ok()) {
    return absl::InvalidArgumentError(StrCat("input '", tensor.name, "': ", want.status().message()));
  }
  if (tensor.data.size() != *want) {
    return absl::InvalidArgumentError(StrCat(
        "tensor '", tensor.name, "' of type ", DataTypeName(tensor.type), " and shape ",
        ShapeToString(tensor.shape), " needs ", *want, " bytes, got ", tensor.data.size()));
  }
  return absl::OkStatus();
}

}  // namespace ortserve
