// SPDX-License-Identifier: Apache-2.0
#include "backend/ort/ort_session_factory.h"

#include <onnxruntime_cxx_api.h>

#include <cstring>
#include <filesystem>
#include <optional>
#include <unordered_map>

#include "absl/synchronization/mutex.h"
#include "core/strings.h"
#include "core/status.h"

namespace ortserve::backend {
namespace {

std::optional<DataType> FromOrt(ONNXTensorElementDataType type) {
  switch (type) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL: return DataType::kBool;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8: return DataType::kUint8;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT16: return DataType::kUint16;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT32: return DataType::kUint32;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT64: return DataType::kUint64;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8: return DataType::kInt8;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16: return DataType::kInt16;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32: return DataType::kInt32;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64: return DataType::kInt64;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16: return DataType::kFp16;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16: return DataType::kBf16;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT: return DataType::kFp32;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE: return DataType::kFp64;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING: return DataType::kBytes;
    default: return std::nullopt;
  }
}

ONNXTensorElementDataType ToOrt(DataType type) {
  switch (type) {
    case DataType::kBool: return ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL;
    case DataType::kUint8: return ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8;
    case DataType::kUint16: return ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT16;
    case DataType::kUint32: return ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT32;
    case DataType::kUint64: return ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT64;
    case DataType::kInt8: return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8;
    case DataType::kInt16: return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16;
    case DataType::kInt32: return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32;
    case DataType::kInt64: return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64;
    case DataType::kFp16: return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16;
    case DataType::kBf16: return ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16;
    case DataType::kFp32: return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
    case DataType::kFp64: return ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE;
    case DataType::kBytes: return ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING;
    case DataType::kInvalid: break;
  }
  return ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
}

// ORT's messages end with a newline now and then.
std::string_view Trimmed(const char* message) {
  std::string_view m(message);
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.remove_suffix(1);
  return m;
}

absl::Status FromOrtException(const Ort::Exception& e, std::string_view context) {
  std::string message = StrCat(context, ": ", Trimmed(e.what()));
  switch (e.GetOrtErrorCode()) {
    case ORT_INVALID_ARGUMENT:
    case ORT_INVALID_PROTOBUF:
    case ORT_INVALID_GRAPH:
      return absl::InvalidArgumentError(message);
    case ORT_NO_SUCHFILE:
      return absl::NotFoundError(message);
    case ORT_NOT_IMPLEMENTED:
      return absl::UnimplementedError(message);
    case ORT_EP_FAIL:
      return absl::FailedPreconditionError(message);
    default:
      return absl::InternalError(message);
  }
}

absl::StatusOr<TensorSpec> SpecFrom(std::string name, const Ort::TypeInfo& info) {
  if (info.GetONNXType() != ONNX_TYPE_TENSOR) {
    return absl::UnimplementedError(StrCat(
        "'", name, "' is not a tensor (ONNX type ", static_cast<int>(info.GetONNXType()),
        "); only tensors can be served"));
  }
  auto tensor_info = info.GetTensorTypeAndShapeInfo();
  auto type = FromOrt(tensor_info.GetElementType());
  if (!type) {
    return absl::UnimplementedError(StrCat("'", name, "' has ONNX element type ",
                                                 static_cast<int>(tensor_info.GetElementType()),
                                                 ", which KServe v2 cannot carry"));
  }
  TensorSpec spec;
  spec.name = std::move(name);
  spec.type = *type;
  for (int64_t dim : tensor_info.GetShape()) spec.dims.push_back(dim < 0 ? -1 : dim);
  return spec;
}

GraphOptimizationLevel ToOrt(GraphOptimization level) {
  switch (level) {
    case GraphOptimization::kDisabled: return ORT_DISABLE_ALL;
    case GraphOptimization::kBasic: return ORT_ENABLE_BASIC;
    case GraphOptimization::kExtended: return ORT_ENABLE_EXTENDED;
    case GraphOptimization::kAll: return ORT_ENABLE_ALL;
  }
  return ORT_ENABLE_ALL;
}

// Adds the CUDA execution provider. Every failure (no provider library, no
// driver, no device) is FailedPrecondition with ORT's reason, so a GPU model on
// a machine without a GPU fails to load clearly and touches nothing else.
absl::Status AppendCuda(const SessionOptions& options, Ort::SessionOptions& so) {
  try {
    Ort::CUDAProviderOptions cuda;
    std::unordered_map<std::string, std::string> values{
        {"device_id", std::to_string(options.gpu_device_id)}};
    for (const auto& [key, value] : options.gpu_provider_options) values[key] = value;
    cuda.Update(values);
    so.AppendExecutionProvider_CUDA_V2(*cuda);
    return absl::OkStatus();
  } catch (const Ort::Exception& e) {
    return absl::FailedPreconditionError(StrCat(
        "the model asks for a GPU (KIND_GPU) but the CUDA execution provider is not usable here: ",
        Trimmed(e.what()), " (install it with ORT_WITH_CUDA=1 scripts/setup.sh on a machine with CUDA 13)"));
  }
}

// Converts an ORT string tensor to the length-prefixed BYTES layout (a copy
// the layouts force).
Tensor StringOutput(const std::string& name, Ort::Value& value) {
  auto info = value.GetTensorTypeAndShapeInfo();
  const size_t count = info.GetElementCount();
  const size_t total = count == 0 ? 0 : value.GetStringTensorDataLength();
  std::string content(total, '\0');
  std::vector<size_t> offsets(count);
  if (count > 0) value.GetStringTensorContent(content.data(), total, offsets.data(), count);
  std::vector<std::byte> bytes;
  bytes.reserve(total + 4 * count);
  for (size_t i = 0; i < count; ++i) {
    const size_t end = i + 1 < count ? offsets[i + 1] : total;
    AppendBytesElement(std::string_view(content).substr(offsets[i], end - offsets[i]), &bytes);
  }
  Shape shape;
  for (int64_t dim : info.GetShape()) shape.push_back(dim);
  return MakeOwnedTensor(name, DataType::kBytes, std::move(shape), std::move(bytes));
}

class OrtSession final : public Session {
 public:
  // `gpu_device_id` < 0: a CPU session.
  OrtSession(Ort::Session session, ModelSignature signature, bool io_binding, int gpu_device_id)
      : session_(std::move(session)),
        signature_(std::move(signature)),
        io_binding_(io_binding),
        device_name_(gpu_device_id >= 0 ? StrCat("gpu", gpu_device_id) : "cpu"),
        // GPU results land in pinned host memory so the copy back is one DMA.
        output_memory_(gpu_device_id >= 0 ? PinnedMemory(gpu_device_id)
                                          : Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault)) {
    if (gpu_device_id < 0) return;
    // The CUDA provider registers a pinned-memory allocator with the session;
    // without one (an older provider) batches fall back to heap memory, which
    // is correct, only slower to copy.
    try {
      pinned_allocator_.emplace(session_, PinnedMemory(gpu_device_id));
    } catch (const Ort::Exception&) {
      pinned_allocator_.reset();
    }
  }

  const ModelSignature& signature() const override { return signature_; }
  std::string device_name() const override { return device_name_; }

  HostBuffer AllocateHostBuffer(size_t bytes) override {
    if (!pinned_allocator_ || bytes == 0) return HostBuffer(bytes);
    try {
      auto* data = static_cast<std::byte*>(pinned_allocator_->Alloc(bytes));
      return HostBuffer(data, bytes, /*pinned=*/true, &FreePinned, &*pinned_allocator_);
    } catch (const Ort::Exception&) {
      return HostBuffer(bytes);  // Page-locked memory is a limited resource.
    }
  }

  absl::Status Run(std::span<const Tensor> inputs, std::span<const std::string> output_names,
                   std::vector<Tensor>* outputs) override {
    return RunWith(run_options_, inputs, output_names, outputs);
  }

  // A run of its own options, whose terminate flag the token sets: ORT stops
  // between operators and throws, which becomes the token's Cancelled.
  absl::Status RunCancellable(std::span<const Tensor> inputs, std::span<const std::string> output_names,
                              std::vector<Tensor>* outputs, CancelToken& cancel) override {
    RETURN_IF_ERROR(cancel.status());
    std::optional<Ort::RunOptions> options;
    try {
      options.emplace();
    } catch (const Ort::Exception& e) {
      return FromOrtException(e, "model run failed");
    }
    absl::Status status;
    {
      CancelToken::Registration registration = cancel.Register([&options] {
        try {
          options->SetTerminate();
        } catch (const Ort::Exception&) {
          // Only a null handle throws; the run then goes to its end.
        }
      });
      status = RunWith(*options, inputs, output_names, outputs);
    }
    if (absl::Status cancelled = cancel.status(); !cancelled.ok()) return cancelled;
    return status;
  }

 private:
  absl::Status RunWith(Ort::RunOptions& run_options, std::span<const Tensor> inputs,
                       std::span<const std::string> output_names, std::vector<Tensor>* outputs) {
    try {
      // Input values are views over the caller's buffers; ORT reads them in place.
      std::vector<Ort::Value> values;
      std::vector<const char*> names;
      values.reserve(inputs.size());
      names.reserve(inputs.size());
      for (const Tensor& input : inputs) {
        names.push_back(input.name.c_str());
        if (input.type == DataType::kBytes) {
          ASSIGN_OR_RETURN(Ort::Value value, MakeStringValue(input));
          values.push_back(std::move(value));
          continue;
        }
        values.push_back(Ort::Value::CreateTensor(
            cpu_memory_, const_cast<std::byte*>(input.data.data()), input.data.size(),
            input.shape.data(), input.shape.size(), ToOrt(input.type)));
      }
      std::vector<const char*> out_names;
      out_names.reserve(output_names.size());
      for (const auto& name : output_names) out_names.push_back(name.c_str());

      std::vector<Ort::Value> results;
      if (io_binding_) {
        results = RunBound(run_options, names, values, out_names);
      } else {
        results = session_.Run(run_options, names.data(), values.data(), values.size(), out_names.data(),
                               out_names.size());
      }
      for (size_t i = 0; i < results.size(); ++i) {
        outputs->push_back(ToTensor(output_names[i], std::move(results[i])));
      }
      return absl::OkStatus();
    } catch (const Ort::Exception& e) {
      return FromOrtException(e, "model run failed");
    }
  }

  absl::StatusOr<Ort::Value> MakeStringValue(const Tensor& input) {
    ASSIGN_OR_RETURN(int64_t count, ElementCount(input.shape));
    ASSIGN_OR_RETURN(auto elements, SplitBytesElements(input.data, count, input.name));
    // Each element is written into ORT's own string buffer at its exact length,
    // so embedded NULs survive (FillStringTensor would stop at the first).
    Ort::AllocatorWithDefaultOptions allocator;
    Ort::Value value = Ort::Value::CreateTensor(allocator, input.shape.data(), input.shape.size(),
                                                ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING);
    for (size_t i = 0; i < elements.size(); ++i) {
      char* buffer = value.GetResizedStringTensorElementBuffer(i, elements[i].size());
      if (!elements[i].empty()) std::memcpy(buffer, elements[i].data(), elements[i].size());
    }
    return value;
  }

  // IoBinding objects are not thread-safe; runs may be concurrent, so each
  // takes one from a small free list and gives it back.
  std::vector<Ort::Value> RunBound(Ort::RunOptions& run_options, const std::vector<const char*>& names, const std::vector<Ort::Value>& values,
                                   const std::vector<const char*>& out_names) {
    std::unique_ptr<Ort::IoBinding> binding;
    {
      absl::MutexLock lock(&bindings_mu_);
      if (!free_bindings_.empty()) {
        binding = std::move(free_bindings_.back());
        free_bindings_.pop_back();
      }
    }
    if (!binding) binding = std::make_unique<Ort::IoBinding>(session_);
    binding->ClearBoundInputs();
    binding->ClearBoundOutputs();
    for (size_t i = 0; i < values.size(); ++i) binding->BindInput(names[i], values[i]);
    for (const char* name : out_names) binding->BindOutput(name, output_memory_);
    session_.Run(run_options, *binding);
    std::vector<Ort::Value> results = binding->GetOutputValues();
    binding->ClearBoundInputs();
    binding->ClearBoundOutputs();
    absl::MutexLock lock(&bindings_mu_);
    free_bindings_.push_back(std::move(binding));
    return results;
  }

  static Ort::MemoryInfo PinnedMemory(int gpu_device_id) {
    return Ort::MemoryInfo("CudaPinned", OrtDeviceAllocator, gpu_device_id, OrtMemTypeCPUOutput);
  }

  static void FreePinned(void* allocator, std::byte* data) {
    try {
      static_cast<Ort::Allocator*>(allocator)->Free(data);
    } catch (const Ort::Exception&) {
      // Nothing to do: the session's allocator goes away with the session.
    }
  }

  static Tensor ToTensor(const std::string& name, Ort::Value value) {
    auto info = value.GetTensorTypeAndShapeInfo();
    auto type = FromOrt(info.GetElementType());
    if (type == DataType::kBytes) return StringOutput(name, value);
    Tensor tensor;
    tensor.name = name;
    tensor.type = type.value_or(DataType::kInvalid);
    for (int64_t dim : info.GetShape()) tensor.shape.push_back(dim);
    const size_t bytes = info.GetElementCount() * DataTypeSize(tensor.type);
    auto holder = std::make_shared<Ort::Value>(std::move(value));
    tensor.data = std::span<const std::byte>(
        static_cast<const std::byte*>(holder->GetTensorRawData()), bytes);
    tensor.holder = std::move(holder);
    return tensor;
  }

  Ort::Session session_;
  ModelSignature signature_;
  const bool io_binding_;
  const std::string device_name_;
  Ort::MemoryInfo output_memory_;
  absl::Mutex bindings_mu_;
  std::vector<std::unique_ptr<Ort::IoBinding>> free_bindings_ ABSL_GUARDED_BY(bindings_mu_);
  Ort::RunOptions run_options_;
  std::optional<Ort::Allocator> pinned_allocator_;  // GPU sessions only.
  Ort::MemoryInfo cpu_memory_ = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
};

}  // namespace

struct OrtSessionFactory::Impl {
  Ort::Env env;
};

OrtSessionFactory::OrtSessionFactory(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
OrtSessionFactory::~OrtSessionFactory() = default;

std::string OrtSessionFactory::RuntimeVersion() { return OrtGetApiBase()->GetVersionString(); }

absl::StatusOr<std::unique_ptr<OrtSessionFactory>> OrtSessionFactory::Create(const Options& options) {
  // The C++ wrapper would fetch the API lazily and crash on a null pointer if the
  // library is older than the headers; check first and say so.
  const OrtApi* api = OrtGetApiBase()->GetApi(ORT_API_VERSION);
  if (api == nullptr) {
    return absl::FailedPreconditionError(StrCat(
        "the ONNX Runtime library in use (version ", RuntimeVersion(),
        ") does not support API version ", ORT_API_VERSION,
        " that ortserve was built against; install ONNX Runtime 1.", ORT_API_VERSION,
        " or newer, or rebuild with -DONNXRUNTIME_ROOT pointing at the release you run"));
  }
  try {
    Ort::ThreadingOptions threading;
    threading.SetGlobalIntraOpNumThreads(options.shared_intra_op_threads);
    threading.SetGlobalInterOpNumThreads(options.shared_inter_op_threads);
    threading.SetGlobalSpinControl(options.allow_spinning ? 1 : 0);
    auto impl = std::make_unique<Impl>(Impl{Ort::Env(threading, static_cast<OrtLoggingLevel>(options.log_severity),
                                                     options.log_id.c_str())});
    return std::unique_ptr<OrtSessionFactory>(new OrtSessionFactory(std::move(impl)));
  } catch (const Ort::Exception& e) {
    return FromOrtException(e, "creating the ONNX Runtime environment");
  }
}

absl::StatusOr<std::unique_ptr<Session>> OrtSessionFactory::Create(const SessionOptions& options) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(options.model_path, ec)) {
    return absl::NotFoundError(StrCat("model file ", options.model_path, " does not exist"));
  }
  try {
    Ort::SessionOptions so;
    if (options.intra_op_threads == 0 && options.inter_op_threads == 0) {
      so.DisablePerSessionThreads();  // Use the Env's shared pools.
    } else {
      so.SetIntraOpNumThreads(options.intra_op_threads);
      so.SetInterOpNumThreads(options.inter_op_threads);
    }
    so.SetGraphOptimizationLevel(ToOrt(options.graph_optimization));
    so.SetExecutionMode(options.execution_mode == ExecutionMode::kParallel ? ORT_PARALLEL
                                                                            : ORT_SEQUENTIAL);
    if (!options.enable_cpu_mem_arena) so.DisableCpuMemArena();
    if (!options.enable_mem_pattern) so.DisableMemPattern();
    for (const auto& [key, value] : options.config_entries) {
      so.AddConfigEntry(key.c_str(), value.c_str());
    }
    if (options.device == DeviceKind::kGpu) {
      RETURN_IF_ERROR(AppendCuda(options, so));
    }
    Ort::Session session(impl_->env, options.model_path.c_str(), so);

    ModelSignature signature;
    Ort::AllocatorWithDefaultOptions allocator;
    for (size_t i = 0; i < session.GetInputCount(); ++i) {
      std::string name = session.GetInputNameAllocated(i, allocator).get();
      ASSIGN_OR_RETURN(TensorSpec spec, SpecFrom(std::move(name), session.GetInputTypeInfo(i)));
      signature.inputs.push_back(std::move(spec));
    }
    for (size_t i = 0; i < session.GetOutputCount(); ++i) {
      std::string name = session.GetOutputNameAllocated(i, allocator).get();
      ASSIGN_OR_RETURN(TensorSpec spec, SpecFrom(std::move(name), session.GetOutputTypeInfo(i)));
      signature.outputs.push_back(std::move(spec));
    }
    return std::unique_ptr<Session>(new OrtSession(std::move(session), std::move(signature), options.io_binding,
                                                   options.device == DeviceKind::kGpu ? options.gpu_device_id : -1));
  } catch (const Ort::Exception& e) {
    return FromOrtException(e, StrCat("loading ", options.model_path));
  }
}

}  // namespace ortserve::backend
