// SPDX-License-Identifier: Apache-2.0
#include "frontend/kserve/classification.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <numeric>

#include "core/data_type.h"
#include "core/strings.h"

namespace ortserve::frontend {
namespace {

template <typename T>
T Load(const std::byte* p) {
  T value;
  std::memcpy(&value, p, sizeof(T));
  return value;
}

double ElementAsDouble(DataType type, const std::byte* data, size_t i) {
  switch (type) {
    case DataType::kBool: return Load<uint8_t>(data + i) != 0 ? 1.0 : 0.0;
    case DataType::kUint8: return Load<uint8_t>(data + i);
    case DataType::kUint16: return Load<uint16_t>(data + 2 * i);
    case DataType::kUint32: return Load<uint32_t>(data + 4 * i);
    case DataType::kUint64: return static_cast<double>(Load<uint64_t>(data + 8 * i));
    case DataType::kInt8: return Load<int8_t>(data + i);
    case DataType::kInt16: return Load<int16_t>(data + 2 * i);
    case DataType::kInt32: return Load<int32_t>(data + 4 * i);
    case DataType::kInt64: return static_cast<double>(Load<int64_t>(data + 8 * i));
    case DataType::kFp16: return HalfToFloat(Load<uint16_t>(data + 2 * i));
    case DataType::kBf16: return Bfloat16ToFloat(Load<uint16_t>(data + 2 * i));
    case DataType::kFp32: return Load<float>(data + 4 * i);
    case DataType::kFp64: return Load<double>(data + 8 * i);
    default: return 0;
  }
}

// The class score as text, in the shortest form of the tensor's own type.
void AppendScore(DataType type, const std::byte* data, size_t i, std::string* out) {
  char buf[64];
  char* end = buf;
  switch (type) {
    case DataType::kUint64: end = std::to_chars(buf, buf + 64, Load<uint64_t>(data + 8 * i)).ptr; break;
    case DataType::kInt64: end = std::to_chars(buf, buf + 64, Load<int64_t>(data + 8 * i)).ptr; break;
    case DataType::kFp64: end = std::to_chars(buf, buf + 64, Load<double>(data + 8 * i)).ptr; break;
    case DataType::kFp16:
    case DataType::kBf16:
    case DataType::kFp32:
      end = std::to_chars(buf, buf + 64, static_cast<float>(ElementAsDouble(type, data, i))).ptr;
      break;
    default:
      end = std::to_chars(buf, buf + 64, static_cast<int64_t>(ElementAsDouble(type, data, i))).ptr;
  }
  out->append(buf, end);
}

}  // namespace

absl::Status Classify(const Tensor& tensor, uint32_t k, std::span<const std::string> labels,
                      std::vector<std::byte>* bytes, Shape* shape) {
  if (tensor.type == DataType::kBytes) {
    return absl::InvalidArgumentError(
        StrCat("output '", tensor.name, "': classification needs a numeric output, not BYTES"));
  }
  if (absl::Status valid = ValidateTensorBytes(tensor); !valid.ok()) {
    return absl::InternalError(StrCat("output '", tensor.name, "' is malformed: ", ToStd(valid.message())));
  }
  const size_t total = tensor.data.size() / DataTypeSize(tensor.type);
  size_t rows = 1;
  if (tensor.shape.size() >= 2) rows = static_cast<size_t>(tensor.shape[0]);
  const size_t classes = rows == 0 ? 0 : total / rows;
  const size_t top = std::min<size_t>(k, classes);
  shape->clear();
  if (tensor.shape.size() >= 2) shape->push_back(static_cast<int64_t>(rows));
  shape->push_back(static_cast<int64_t>(top));
  bytes->clear();
  std::vector<size_t> order(classes);
  std::vector<double> scores(classes);
  std::string text;
  for (size_t row = 0; row < rows; ++row) {
    for (size_t c = 0; c < classes; ++c) {
      scores[c] = ElementAsDouble(tensor.type, tensor.data.data(), row * classes + c);
    }
    std::iota(order.begin(), order.end(), size_t{0});
    // Highest first, ties by lower index, NaN last.
    std::partial_sort(order.begin(), order.begin() + top, order.end(), [&scores](size_t a, size_t b) {
      const double x = scores[a], y = scores[b];
      const bool xn = std::isnan(x), yn = std::isnan(y);
      if (xn != yn) return yn;
      if (!xn && x != y) return x > y;
      return a < b;
    });
    for (size_t j = 0; j < top; ++j) {
      const size_t c = order[j];
      text.clear();
      AppendScore(tensor.type, tensor.data.data(), row * classes + c, &text);
      text.push_back(':');
      char buf[24];
      text.append(buf, std::to_chars(buf, buf + sizeof(buf), c).ptr);
      if (c < labels.size()) {
        text.push_back(':');
        text.append(labels[c]);
      }
      AppendBytesElement(text, bytes);
    }
  }
  return absl::OkStatus();
}

}  // namespace ortserve::frontend
