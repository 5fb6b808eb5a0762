// SPDX-License-Identifier: Apache-2.0
#include "backend/session.h"

#include <utility>

namespace ortserve::backend {

HostBuffer::HostBuffer(size_t bytes)
    : data_(bytes == 0 ? nullptr : new std::byte[bytes]),
      size_(bytes),
      release_([](void*, std::byte* data) { delete[] data; }) {}

HostBuffer& HostBuffer::operator=(HostBuffer&& other) noexcept {
  if (this != &other) {
    Reset();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    pinned_ = std::exchange(other.pinned_, false);
    release_ = std::exchange(other.release_, nullptr);
    owner_ = std::exchange(other.owner_, nullptr);
  }
  return *this;
}

void HostBuffer::Reset() {
  if (data_ != nullptr && release_ != nullptr) release_(owner_, data_);
  data_ = nullptr;
  size_ = 0;
}

const TensorSpec* ModelSignature::FindInput(std::string_view name) const {
  for (const auto& spec : inputs) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

const TensorSpec* ModelSignature::FindOutput(std::string_view name) const {
  for (const auto& spec : outputs) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

}  // namespace ortserve::backend
