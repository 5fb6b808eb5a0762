// SPDX-License-Identifier: Apache-2.0
#include "router/shadow.h"

#include <sys/prctl.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/data_type.h"

namespace ortserve::router {
namespace {

bool IsFloating(DataType type) {
  return type == DataType::kFp32 || type == DataType::kFp64 || type == DataType::kFp16 || type == DataType::kBf16;
}

bool IsNumeric(DataType type) { return type != DataType::kBytes && type != DataType::kInvalid; }

// Element `i` of a numeric tensor as a double.
double ElementAt(const Tensor& t, size_t i) {
  switch (t.type) {
    case DataType::kFp32: return t.values<float>()[i];
    case DataType::kFp64: return t.values<double>()[i];
    case DataType::kFp16: return HalfToFloat(t.values<uint16_t>()[i]);
    case DataType::kBf16: return Bfloat16ToFloat(t.values<uint16_t>()[i]);
    case DataType::kInt8: return t.values<int8_t>()[i];
    case DataType::kInt16: return t.values<int16_t>()[i];
    case DataType::kInt32: return t.values<int32_t>()[i];
    case DataType::kInt64: return static_cast<double>(t.values<int64_t>()[i]);
    case DataType::kUint8: return t.values<uint8_t>()[i];
    case DataType::kUint16: return t.values<uint16_t>()[i];
    case DataType::kUint32: return t.values<uint32_t>()[i];
    case DataType::kUint64: return static_cast<double>(t.values<uint64_t>()[i]);
    case DataType::kBool: return t.values<uint8_t>()[i] != 0 ? 1 : 0;
    default: return 0;
  }
}

size_t ElementsOf(const Tensor& t) {
  const size_t width = DataTypeSize(t.type);
  return width == 0 ? 0 : t.data.size() / width;
}

// BYTES elements (4-byte little-endian length, then the bytes).
std::vector<std::string_view> BytesElements(const Tensor& t) {
  std::vector<std::string_view> out;
  size_t at = 0;
  while (at + 4 <= t.data.size()) {
    uint32_t length = 0;
    std::memcpy(&length, t.data.data() + at, 4);
    at += 4;
    if (at + length > t.data.size()) break;
    out.emplace_back(reinterpret_cast<const char*>(t.data.data() + at), length);
    at += length;
  }
  return out;
}

void CompareBytes(const Tensor& p, const Tensor& s, OutputComparison* out) {
  const auto a = BytesElements(p);
  const auto b = BytesElements(s);
  const size_t n = std::min(a.size(), b.size());
  out->label_rows += static_cast<int64_t>(std::max(a.size(), b.size()));
  for (size_t i = 0; i < n; ++i) out->label_agreements += a[i] == b[i] ? 1 : 0;
}

void CompareNumeric(const Tensor& p, const Tensor& s, OutputComparison* out) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  const size_t n = ElementsOf(p);
  if (p.type != s.type || p.shape != s.shape || n != ElementsOf(s)) {
    out->max_abs_difference = kInf;
    return;
  }
  for (size_t i = 0; i < n; ++i) {
    const double a = ElementAt(p, i);
    const double b = ElementAt(s, i);
    if (std::isnan(a) || std::isnan(b)) {
      if (std::isnan(a) != std::isnan(b)) out->max_abs_difference = kInf;
      continue;
    }
    out->max_abs_difference = std::max(out->max_abs_difference, std::fabs(a - b));
  }
  if (!IsFloating(p.type) || p.shape.size() < 2 || p.shape.back() <= 0) return;
  const size_t width = static_cast<size_t>(p.shape.back());
  for (size_t row = 0; row + width <= n; row += width) {
    size_t best_p = row, best_s = row;
    for (size_t i = row + 1; i < row + width; ++i) {
      if (ElementAt(p, i) > ElementAt(p, best_p)) best_p = i;
      if (ElementAt(s, i) > ElementAt(s, best_s)) best_s = i;
    }
    ++out->label_rows;
    out->label_agreements += best_p - row == best_s - row ? 1 : 0;
  }
}

}  // namespace

OutputComparison CompareOutputs(std::span<const Tensor> primary, std::span<const Tensor> shadow) {
  OutputComparison out;
  for (const Tensor& p : primary) {
    const Tensor* s = nullptr;
    for (const Tensor& candidate : shadow) {
      if (candidate.name == p.name) s = &candidate;
    }
    if (s == nullptr) continue;
    ++out.compared_outputs;
    if (p.type == DataType::kBytes || s->type == DataType::kBytes) {
      if (p.type != s->type) {
        out.max_abs_difference = std::numeric_limits<double>::infinity();
        continue;
      }
      CompareBytes(p, *s, &out);
    } else if (IsNumeric(p.type)) {
      CompareNumeric(p, *s, &out);
    }
  }
  return out;
}

std::unique_ptr<InferRequest> CopyForShadow(const InferRequest& request) {
  auto copy = std::make_unique<InferRequest>(request.Clone());
  // Nothing of the client's connection or deadline: the shadow runs on its own.
  copy->id.clear();
  copy->deadline = absl::InfiniteFuture();
  copy->cancellation = nullptr;
  copy->headers = nullptr;
  copy->trace = RequestTrace();
  // The inputs in one owned buffer: the primary's body may be gone first.
  size_t total = 0;
  for (const Tensor& input : request.inputs) total += input.data.size();
  auto bytes = std::make_shared<std::vector<std::byte>>(total);
  size_t at = 0;
  for (Tensor& input : copy->inputs) {
    if (!input.data.empty()) std::memcpy(bytes->data() + at, input.data.data(), input.data.size());
    input.data = std::span<const std::byte>(bytes->data() + at, input.data.size());
    input.holder = bytes;
    at += input.data.size();
  }
  copy->payload = std::move(bytes);
  return copy;
}

ComparisonWorker::ComparisonWorker() : thread_([this] { Run(); }) {}

ComparisonWorker::~ComparisonWorker() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

void ComparisonWorker::Submit(absl::AnyInvocable<void() &&> task) {
  absl::MutexLock lock(&mu_);
  queue_.push_back(std::move(task));
}

void ComparisonWorker::Run() {
  prctl(PR_SET_NAME, "shadow-compare");
  for (;;) {
    absl::AnyInvocable<void() &&> task;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &ComparisonWorker::HasWork));
      if (queue_.empty()) return;  // Stopping, and nothing left.
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    std::move(task)();
  }
}

}  // namespace ortserve::router
