// SPDX-License-Identifier: Apache-2.0
#include "core/data_type.h"

#include <array>
#include <bit>

namespace ortserve {
namespace {

struct TypeInfo {
  DataType type;
  std::string_view name;
  std::string_view config_name;
  size_t size;
};

constexpr std::array<TypeInfo, 14> kTypes = {{
    {DataType::kBool, "BOOL", "TYPE_BOOL", 1},
    {DataType::kUint8, "UINT8", "TYPE_UINT8", 1},
    {DataType::kUint16, "UINT16", "TYPE_UINT16", 2},
    {DataType::kUint32, "UINT32", "TYPE_UINT32", 4},
    {DataType::kUint64, "UINT64", "TYPE_UINT64", 8},
    {DataType::kInt8, "INT8", "TYPE_INT8", 1},
    {DataType::kInt16, "INT16", "TYPE_INT16", 2},
    {DataType::kInt32, "INT32", "TYPE_INT32", 4},
    {DataType::kInt64, "INT64", "TYPE_INT64", 8},
    {DataType::kFp16, "FP16", "TYPE_FP16", 2},
    {DataType::kBf16, "BF16", "TYPE_BF16", 2},
    {DataType::kFp32, "FP32", "TYPE_FP32", 4},
    {DataType::kFp64, "FP64", "TYPE_FP64", 8},
    {DataType::kBytes, "BYTES", "TYPE_STRING", 0},
}};

const TypeInfo* Find(DataType type) {
  for (const auto& info : kTypes) {
    if (info.type == type) return &info;
  }
  return nullptr;
}

}  // namespace

std::string_view DataTypeName(DataType type) {
  const TypeInfo* info = Find(type);
  return info ? info->name : "INVALID";
}

std::string_view DataTypeConfigName(DataType type) {
  const TypeInfo* info = Find(type);
  return info ? info->config_name : "TYPE_INVALID";
}

std::optional<DataType> DataTypeFromName(std::string_view name) {
  for (const auto& info : kTypes) {
    if (info.name == name) return info.type;
  }
  return std::nullopt;
}

std::optional<DataType> DataTypeFromConfigName(std::string_view name) {
  if (name == "TYPE_BYTES") return DataType::kBytes;
  for (const auto& info : kTypes) {
    if (info.config_name == name) return info.type;
  }
  return std::nullopt;
}

size_t DataTypeSize(DataType type) {
  const TypeInfo* info = Find(type);
  return info ? info->size : 0;
}

float HalfToFloat(uint16_t bits) {
  const uint32_t sign = static_cast<uint32_t>(bits & 0x8000) << 16;
  const uint32_t exponent = (bits >> 10) & 0x1f;
  uint32_t mantissa = bits & 0x3ff;
  uint32_t out;
  if (exponent == 0x1f) {
    out = sign | 0x7f800000 | (mantissa << 13);  // Inf / NaN (payload kept).
  } else if (exponent != 0) {
    out = sign | ((exponent + 112) << 23) | (mantissa << 13);  // 127 - 15 = 112.
  } else if (mantissa == 0) {
    out = sign;  // +-0.
  } else {
    // Subnormal half: normalize into a float.
    int e = -1;
    do {
      ++e;
      mantissa <<= 1;
    } while ((mantissa & 0x400) == 0);
    out = sign | static_cast<uint32_t>(112 - e) << 23 | ((mantissa & 0x3ff) << 13);
  }
  return std::bit_cast<float>(out);
}

float Bfloat16ToFloat(uint16_t bits) {
  return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16);
}

}  // namespace ortserve
