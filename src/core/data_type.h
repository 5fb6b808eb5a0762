// SPDX-License-Identifier: Apache-2.0
// The tensor element types of the KServe v2 / Open Inference Protocol.
// Constants and pure functions: safe from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace ortserve {

enum class DataType : uint8_t {
  kInvalid,  // Not a type; the result of parsing an unknown name.
  kBool,     // One byte per element, 0 or 1.
  kUint8,
  kUint16,
  kUint32,
  kUint64,
  kInt8,
  kInt16,
  kInt32,
  kInt64,
  kFp16,     // IEEE 754 half precision.
  kBf16,     // bfloat16.
  kFp32,
  kFp64,
  kBytes,    // Variable-length byte strings; see Tensor for the layout.
};

// The protocol name, e.g. "FP32". "INVALID" for kInvalid.
std::string_view DataTypeName(DataType type);

// Parses a protocol name ("FP32"); nullopt if unknown. Case-sensitive, as the
// protocol is.
std::optional<DataType> DataTypeFromName(std::string_view name);

// Parses a Triton model-config name ("TYPE_FP32", also "TYPE_STRING").
std::optional<DataType> DataTypeFromConfigName(std::string_view name);

// The Triton model-config name ("TYPE_FP32"; BYTES is "TYPE_STRING").
std::string_view DataTypeConfigName(DataType type);

// Bytes per element, or 0 for kBytes and kInvalid (variable size).
size_t DataTypeSize(DataType type);

// Widen FP16 (IEEE 754 half, subnormals, Inf and NaN payloads kept) and
// bfloat16 bit patterns to float. Exact.
float HalfToFloat(uint16_t bits);
float Bfloat16ToFloat(uint16_t bits);

}  // namespace ortserve
