// SPDX-License-Identifier: Apache-2.0
// Tensor: a named, typed view over bytes that something else keeps alive.
#pragma once

#include <cstddef>
#include <cstring>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/status/statusor.h"
#include "core/data_type.h"

namespace ortserve {

// Dimensions, row-major. -1 marks a variable dimension in signatures only;
// a tensor that carries data has a concrete shape.
using Shape = absl::InlinedVector<int64_t, 6>;

// The element count of a concrete shape. InvalidArgument on a negative
// dimension, or when the dimensions, zeros counted as one, multiply past
// kMaxTensorElements (core/checked_math.h).
absl::StatusOr<int64_t> ElementCount(std::span<const int64_t> shape);

// The bytes of a dense tensor of `type` and `shape` (ElementCount times the
// element size, checked). InvalidArgument for BYTES/INVALID (no fixed size)
// and for what ElementCount refuses.
absl::StatusOr<uint64_t> DenseByteSize(DataType type, std::span<const int64_t> shape);

// "[2,3]".
std::string ShapeToString(std::span<const int64_t> shape);

// A tensor value. `data` is a view; `holder` owns what it points into (a request
// body, an ORT output value, a pooled buffer) or is null when the owner
// outlives the tensor by construction. Copying a Tensor copies the view and
// shares the holder, never the bytes.
//
// BYTES tensors use the binary tensor extension's layout: per element a 4-byte
// little-endian length, then that many bytes. Binary requests therefore decode
// to views, and every front end and the backend agree on one layout.
//
// Not thread-safe for mutation; immutable once built, then safe to share.
struct Tensor {
  std::string name;
  DataType type = DataType::kInvalid;
  Shape shape;
  std::span<const std::byte> data;
  std::shared_ptr<const void> holder;

  // Elements as T; the caller has checked `type` (DCHECK only).
  template <typename T>
  std::span<const T> values() const {
    return {reinterpret_cast<const T*>(data.data()), data.size() / sizeof(T)};
  }
};

// Builds a tensor that owns `bytes`.
Tensor MakeOwnedTensor(std::string name, DataType type, Shape shape, std::vector<std::byte> bytes);

// Builds a tensor that owns a copy of `values` (for tests and small outputs).
template <typename T>
Tensor MakeTensor(std::string name, DataType type, Shape shape, std::span<const T> values) {
  std::vector<std::byte> bytes(values.size_bytes());
  if (!bytes.empty()) std::memcpy(bytes.data(), values.data(), bytes.size());
  return MakeOwnedTensor(std::move(name), type, std::move(shape), std::move(bytes));
}

// Appends one BYTES element (length prefix + bytes) to `out`.
void AppendBytesElement(std::string_view element, std::vector<std::byte>* out);

// Builds an owning BYTES tensor from strings.
Tensor MakeBytesTensor(std::string name, Shape shape, std::span<const std::string> elements);

// Splits a BYTES buffer into its elements (views into `data`). InvalidArgument,
// naming `tensor_name`, when a length runs past the end or when the count
// differs from `expected_count` (pass -1 to skip that check).
absl::StatusOr<std::vector<std::string_view>> SplitBytesElements(std::span<const std::byte> data,
                                                                 int64_t expected_count,
                                                                 std::string_view tensor_name);

// Checks that `data` holds exactly the bytes the type and shape call for
// (for BYTES: well-formed elements, as many as the shape says).
absl::Status ValidateTensorBytes(const Tensor& tensor);

}  // namespace ortserve
