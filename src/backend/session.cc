// SPDX-License-Identifier: Apache-2.0
#include "backend/session.h"

#include <utility>

#include "core/status.h"

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

CancelToken::Registration::~Registration() {
  if (token_ == nullptr) return;
  absl::MutexLock lock(&token_->mu_);
  token_->stops_.erase(id_);
}

void CancelToken::Cancel(std::string why) {
  absl::MutexLock lock(&mu_);
  if (cancelled_) return;
  cancelled_ = true;
  why_ = std::move(why);
  // Under the lock: a registration ending meanwhile waits, so a callback never
  // runs after its run's state is gone.
  for (auto& [id, stop] : stops_) stop();
}

bool CancelToken::cancelled() const {
  absl::MutexLock lock(&mu_);
  return cancelled_;
}

absl::Status CancelToken::status() const {
  absl::MutexLock lock(&mu_);
  return cancelled_ ? absl::CancelledError(why_) : absl::OkStatus();
}

CancelToken::Registration CancelToken::Register(std::function<void()> stop) {
  absl::MutexLock lock(&mu_);
  if (cancelled_) stop();
  const uint64_t id = ++next_id_;
  stops_.emplace(id, std::move(stop));
  return Registration(this, id);
}

absl::Status Session::RunCancellable(std::span<const Tensor> inputs, std::span<const std::string> output_names,
                                     std::vector<Tensor>* outputs, CancelToken& cancel) {
  RETURN_IF_ERROR(cancel.status());
  return Run(inputs, output_names, outputs);
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
