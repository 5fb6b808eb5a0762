// SPDX-License-Identifier: Apache-2.0
#include "fakes/fake_session.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace ortserve::testing {

std::span<std::byte> FakeSession::Outputs::Add(const std::string& name, DataType type, const Shape& shape,
                                               size_t bytes) {
  Tensor& tensor = outputs_->emplace_back();
  tensor.name.assign(name);
  tensor.type = type;
  tensor.shape = shape;
  std::span<std::byte> memory = session_->AcquireBuffer(bytes, &tensor.holder);
  tensor.data = memory;
  return memory;
}

FakeSession::FakeSession(backend::ModelSignature signature, Compute compute)
    : signature_(std::move(signature)), compute_(compute ? std::move(compute) : Compute(&CopyInputs)) {}

absl::Status FakeSession::CopyInputs(std::span<const Tensor> inputs, std::span<const std::string> output_names,
                                     Outputs& outputs) {
  if (inputs.empty()) return absl::InvalidArgumentError("FakeSession::CopyInputs needs an input");
  for (size_t j = 0; j < output_names.size(); ++j) {
    const Tensor& input = inputs[j % inputs.size()];
    std::span<std::byte> out = outputs.Add(output_names[j], input.type, input.shape, input.data.size());
    if (!out.empty()) std::memcpy(out.data(), input.data.data(), out.size());
  }
  return absl::OkStatus();
}

absl::Status FakeSession::Run(std::span<const Tensor> inputs, std::span<const std::string> output_names,
                              std::vector<Tensor>* outputs) {
  return RunImpl(inputs, output_names, outputs, nullptr);
}

absl::Status FakeSession::RunTraced(std::span<const Tensor> inputs, std::span<const std::string> output_names,
                                   std::vector<Tensor>* outputs, const RequestTrace& parent) {
  {
    absl::MutexLock lock(&mu_);
    trace_parents_.push_back(parent);
  }
  return RunImpl(inputs, output_names, outputs, nullptr);
}

std::vector<RequestTrace> FakeSession::trace_parents() const {
  absl::MutexLock lock(&mu_);
  return trace_parents_;
}

absl::Status FakeSession::RunCancellable(std::span<const Tensor> inputs, std::span<const std::string> output_names,
                                         std::vector<Tensor>* outputs, backend::CancelToken& cancel) {
  if (absl::Status cancelled = cancel.status(); !cancelled.ok()) return cancelled;
  bool stopped = false;  // Guarded by mu_.
  absl::Status status;
  {
    backend::CancelToken::Registration registration = cancel.Register([this, &stopped] {
      absl::MutexLock lock(&mu_);
      stopped = true;
    });
    status = RunImpl(inputs, output_names, outputs, &stopped);
  }
  if (absl::Status cancelled = cancel.status(); !cancelled.ok()) return cancelled;
  return status;
}

absl::Status FakeSession::RunImpl(std::span<const Tensor> inputs, std::span<const std::string> output_names,
                                  std::vector<Tensor>* outputs, const bool* stopped) {
  absl::Status failure;
  {
    absl::MutexLock lock(&mu_);
    ++started_;
    ++running_;
    max_running_ = std::max(max_running_, running_);
    if (InHostBuffers(inputs)) ++runs_on_host_;
    if (record_shapes_) {
      auto& shapes = shapes_.emplace_back();
      for (const auto& input : inputs) shapes.push_back(input.shape);
    }
    auto go = [this, stopped]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return !held_ || (stopped != nullptr && *stopped);
    };
    mu_.Await(absl::Condition(&go));
    failure = failure_;
    if (held_) {  // Stopped while parked: no compute.
      --running_;
      ++finished_;
      return absl::CancelledError("run stopped");
    }
  }
  absl::Status status = failure;
  if (status.ok()) {
    Outputs writer(this, outputs);
    status = compute_(inputs, output_names, writer);
  }
  absl::MutexLock lock(&mu_);
  --running_;
  ++finished_;
  return status;
}

std::span<std::byte> FakeSession::AcquireBuffer(size_t bytes, std::shared_ptr<const void>* holder) {
  absl::MutexLock lock(&pool_mu_);
  // A buffer only the pool refers to is free: no tensor can start sharing it
  // again without going through here.
  // Prefer a free buffer that is big enough, so that a warm pool never grows.
  std::shared_ptr<std::vector<std::byte>>* fallback = nullptr;
  for (auto& buffer : pool_) {
    if (buffer.use_count() != 1) continue;
    if (buffer->capacity() >= bytes) {
      buffer->resize(bytes);
      *holder = buffer;
      return {buffer->data(), buffer->size()};
    }
    if (fallback == nullptr) fallback = &buffer;
  }
  if (fallback != nullptr) {
    (*fallback)->resize(bytes);
    *holder = *fallback;
    return {(*fallback)->data(), (*fallback)->size()};
  }
  auto& buffer = pool_.emplace_back(std::make_shared<std::vector<std::byte>>(bytes));
  *holder = buffer;
  return {buffer->data(), buffer->size()};
}

backend::HostBuffer FakeSession::AllocateHostBuffer(size_t bytes) {
  auto* data = new std::byte[std::max<size_t>(bytes, 1)];
  absl::MutexLock lock(&mu_);
  ++host_allocated_;
  host_buffers_.emplace_back(data, bytes);
  return backend::HostBuffer(data, bytes, pinned_, &ReleaseHostBuffer, this);
}

void FakeSession::set_pinned_host_memory(bool pinned) {
  absl::MutexLock lock(&mu_);
  pinned_ = pinned;
}

void FakeSession::ReleaseHostBuffer(void* session, std::byte* data) {
  auto* self = static_cast<FakeSession*>(session);
  {
    absl::MutexLock lock(&self->mu_);
    std::erase_if(self->host_buffers_, [data](std::span<const std::byte> b) { return b.data() == data; });
  }
  delete[] data;
}

bool FakeSession::InHostBuffers(std::span<const Tensor> inputs) const {
  if (inputs.empty()) return false;
  for (const Tensor& input : inputs) {
    const bool inside = std::any_of(host_buffers_.begin(), host_buffers_.end(), [&](std::span<const std::byte> b) {
      const auto begin = reinterpret_cast<uintptr_t>(input.data.data());
      const auto buffer = reinterpret_cast<uintptr_t>(b.data());
      return begin >= buffer && begin + input.data.size() <= buffer + b.size();
    });
    if (!inside) return false;
  }
  return true;
}

int FakeSession::host_buffers_allocated() const {
  absl::MutexLock lock(&mu_);
  return host_allocated_;
}

int FakeSession::host_buffers_alive() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(host_buffers_.size());
}

int FakeSession::runs_on_host_buffers() const {
  absl::MutexLock lock(&mu_);
  return runs_on_host_;
}

std::string FakeSession::device_name() const {
  absl::MutexLock lock(&mu_);
  return device_name_;
}

void FakeSession::set_device_name(std::string name) {
  absl::MutexLock lock(&mu_);
  device_name_ = std::move(name);
}

void FakeSession::Hold() {
  absl::MutexLock lock(&mu_);
  held_ = true;
}

void FakeSession::Release() {
  absl::MutexLock lock(&mu_);
  held_ = false;
}

void FakeSession::SetFailure(absl::Status status) {
  absl::MutexLock lock(&mu_);
  failure_ = std::move(status);
}

void FakeSession::set_record_shapes(bool record) {
  absl::MutexLock lock(&mu_);
  record_shapes_ = record;
}

bool FakeSession::WaitForRunsStarted(int n, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto reached = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return started_ >= n; };
  return mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
}

bool FakeSession::WaitForRunsFinished(int n, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto reached = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return finished_ >= n; };
  return mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
}

int FakeSession::runs_started() const {
  absl::MutexLock lock(&mu_);
  return started_;
}

int FakeSession::runs_finished() const {
  absl::MutexLock lock(&mu_);
  return finished_;
}

int FakeSession::max_concurrent_runs() const {
  absl::MutexLock lock(&mu_);
  return max_running_;
}

std::vector<std::vector<Shape>> FakeSession::batch_shapes() const {
  absl::MutexLock lock(&mu_);
  return shapes_;
}

std::vector<int64_t> FakeSession::batch_sizes() const {
  absl::MutexLock lock(&mu_);
  std::vector<int64_t> sizes;
  for (const auto& run : shapes_) sizes.push_back(run.empty() || run[0].empty() ? 0 : run[0][0]);
  return sizes;
}

backend::ModelSignature MakeSignature(std::vector<backend::TensorSpec> inputs,
                                      std::vector<backend::TensorSpec> outputs) {
  backend::ModelSignature signature;
  signature.inputs = std::move(inputs);
  signature.outputs = std::move(outputs);
  return signature;
}

}  // namespace ortserve::testing
