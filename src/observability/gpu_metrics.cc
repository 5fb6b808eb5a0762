// SPDX-License-Identifier: Apache-2.0
#include "observability/gpu_metrics.h"

#include <dlfcn.h>

#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "core/strings.h"

namespace ortserve::observability {
namespace {

// The NVML C API, declared here from its public documentation so that the
// build needs neither CUDA nor the driver. nvmlReturn_t is a C enum (int
// sized); 0 is NVML_SUCCESS. Devices are opaque pointers.
using NvmlReturn = int;
using NvmlDevice = void*;
constexpr NvmlReturn kNvmlSuccess = 0;
// NVML_DEVICE_NAME_V2_BUFFER_SIZE and NVML_DEVICE_UUID_V2_BUFFER_SIZE.
constexpr unsigned kNameBufferSize = 96;
constexpr unsigned kUuidBufferSize = 96;

struct NvmlUtilization {  // nvmlUtilization_t
  unsigned int gpu;     // Percent of the sample period a kernel ran.
  unsigned int memory;  // Percent of it device memory was read or written.
};
struct NvmlMemory {  // nvmlMemory_t (version 1)
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
};

}  // namespace

struct GpuCollector::Api {
  NvmlReturn (*init)();
  NvmlReturn (*shutdown)();
  NvmlReturn (*device_count)(unsigned int* count);
  NvmlReturn (*device_by_index)(unsigned int index, NvmlDevice* device);
  NvmlReturn (*utilization)(NvmlDevice device, NvmlUtilization* utilization);
  NvmlReturn (*memory)(NvmlDevice device, NvmlMemory* memory);
  NvmlReturn (*name)(NvmlDevice device, char* name, unsigned int length);
  NvmlReturn (*uuid)(NvmlDevice device, char* uuid, unsigned int length);
  const char* (*error_string)(NvmlReturn result);  // Optional: may be null.
  NvmlReturn (*power)(NvmlDevice device, unsigned int* milliwatts);  // Optional: may be null.

  std::string Error(NvmlReturn result) const {
    const char* text = error_string != nullptr ? error_string(result) : nullptr;
    return text != nullptr ? StrCat(text, " (NVML error ", result, ")") : StrCat("NVML error ", result);
  }
};

namespace {

// Resolves `symbol` into `*function`; false when the library lacks it.
template <typename Function>
bool Resolve(void* handle, const char* symbol, Function* function) {
  *function = reinterpret_cast<Function>(dlsym(handle, symbol));
  return *function != nullptr;
}

// A fixed-size C string from NVML, cut at its terminator (or the buffer end).
std::string FromBuffer(const char* buffer, size_t size) { return std::string(buffer, strnlen(buffer, size)); }

}  // namespace

GpuCollector::GpuCollector(std::string library, void* handle, std::unique_ptr<Api> api)
    : library_(std::move(library)), handle_(handle), api_(std::move(api)) {}

GpuCollector::~GpuCollector() {
  // Only a collector whose nvmlInit succeeded exists, so each one balances it.
  api_->shutdown();
  dlclose(handle_);
}

absl::StatusOr<std::shared_ptr<GpuCollector>> GpuCollector::Open(GpuMetricsOptions options) {
  void* handle = dlopen(options.library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* reason = dlerror();
    return absl::NotFoundError(StrCat("cannot load the NVML library '", options.library,
                                      "': ", reason != nullptr ? reason : "unknown reason"));
  }
  auto api = std::make_unique<Api>();
  // The _v2 entry points are the ones current drivers document; every driver
  // since 2012 has them.
  const char* missing = nullptr;  // The first function the library lacks.
  auto need = [&](const char* symbol, auto* function) {
    if (missing == nullptr && !Resolve(handle, symbol, function)) missing = symbol;
  };
  need("nvmlInit_v2", &api->init);
  need("nvmlShutdown", &api->shutdown);
  need("nvmlDeviceGetCount_v2", &api->device_count);
  need("nvmlDeviceGetHandleByIndex_v2", &api->device_by_index);
  need("nvmlDeviceGetUtilizationRates", &api->utilization);
  need("nvmlDeviceGetMemoryInfo", &api->memory);
  need("nvmlDeviceGetName", &api->name);
  need("nvmlDeviceGetUUID", &api->uuid);
  if (missing != nullptr) {
    dlclose(handle);
    return absl::UnimplementedError(
        StrCat("the NVML library '", options.library, "' has no function ", missing));
  }
  Resolve(handle, "nvmlErrorString", &api->error_string);
  Resolve(handle, "nvmlDeviceGetPowerUsage", &api->power);
  if (const NvmlReturn result = api->init(); result != kNvmlSuccess) {
    const std::string error = api->Error(result);
    dlclose(handle);
    return absl::UnavailableError(StrCat("nvmlInit_v2 failed: ", error));
  }
  // From here the collector owns the initialized library: an early return
  // below shuts NVML down and unloads it through the destructor.
  std::shared_ptr<GpuCollector> collector(new GpuCollector(options.library, handle, std::move(api)));
  collector->triton_names_ = options.triton_names;
  const Api& nvml = *collector->api_;
  unsigned int count = 0;
  if (const NvmlReturn result = nvml.device_count(&count); result != kNvmlSuccess) {
    return absl::UnavailableError(StrCat("nvmlDeviceGetCount_v2 failed: ", nvml.Error(result)));
  }
  for (unsigned int i = 0; i < count; ++i) {
    NvmlDevice device = nullptr;
    if (const NvmlReturn result = nvml.device_by_index(i, &device); result != kNvmlSuccess) {
      return absl::UnavailableError(
          StrCat("nvmlDeviceGetHandleByIndex_v2 failed for GPU ", i, ": ", nvml.Error(result)));
    }
    char name[kNameBufferSize] = {};
    if (const NvmlReturn result = nvml.name(device, name, kNameBufferSize); result != kNvmlSuccess) {
      return absl::UnavailableError(StrCat("nvmlDeviceGetName failed for GPU ", i, ": ", nvml.Error(result)));
    }
    char uuid[kUuidBufferSize] = {};
    if (const NvmlReturn result = nvml.uuid(device, uuid, kUuidBufferSize); result != kNvmlSuccess) {
      return absl::UnavailableError(StrCat("nvmlDeviceGetUUID failed for GPU ", i, ": ", nvml.Error(result)));
    }
    collector->devices_.push_back(GpuDevice{i, FromBuffer(uuid, kUuidBufferSize), FromBuffer(name, kNameBufferSize)});
    collector->device_handles_.push_back(device);
  }
  return collector;
}

std::string GpuCollector::Describe() const {
  std::string text = StrCat(devices_.size(), devices_.size() == 1 ? " GPU" : " GPUs", " via NVML (", library_, ")");
  for (size_t i = 0; i < devices_.size(); ++i) {
    text += StrCat(i == 0 ? ": " : ", ", devices_[i].index, " ", devices_[i].name, " ", devices_[i].uuid);
  }
  return text;
}

namespace {

prometheus::MetricFamily GaugeFamily(std::string name, std::string help) {
  prometheus::MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = prometheus::MetricType::Gauge;
  return family;
}

void AddGauge(prometheus::MetricFamily& family, std::vector<prometheus::ClientMetric::Label> labels, double value) {
  prometheus::ClientMetric metric;
  metric.label = std::move(labels);
  metric.gauge.value = value;
  family.metric.push_back(std::move(metric));
}

}  // namespace

std::vector<prometheus::MetricFamily> GpuCollector::Collect() const {
  prometheus::MetricFamily utilization = GaugeFamily(
      "ortserve_gpu_utilization_ratio", "Share of the last sample period in which a kernel ran on the GPU, 0..1 (NVML).");
  prometheus::MetricFamily used =
      GaugeFamily("ortserve_gpu_memory_used_bytes", "GPU memory in use by all processes, in bytes (NVML).");
  prometheus::MetricFamily total = GaugeFamily("ortserve_gpu_memory_total_bytes", "GPU memory installed, in bytes (NVML).");
  // Triton's names (triton_names_), labelled gpu_uuid only.
  prometheus::MetricFamily nv_utilization = GaugeFamily("nv_gpu_utilization", "GPU utilization rate, 0.0 - 1.0.");
  prometheus::MetricFamily nv_power = GaugeFamily("nv_gpu_power_usage", "GPU instantaneous power, in watts.");
  prometheus::MetricFamily nv_used = GaugeFamily("nv_gpu_memory_used_bytes", "Used GPU memory, in bytes.");
  prometheus::MetricFamily nv_total = GaugeFamily("nv_gpu_memory_total_bytes", "Total GPU memory, in bytes.");

  for (size_t i = 0; i < devices_.size(); ++i) {
    const GpuDevice& gpu = devices_[i];
    const std::vector<prometheus::ClientMetric::Label> labels = {{"gpu", StrCat(gpu.index)}, {"uuid", gpu.uuid}};
    const std::vector<prometheus::ClientMetric::Label> nv_labels = {{"gpu_uuid", gpu.uuid}};
    // A reading NVML refuses (a lost GPU; utilization is not supported on
    // MIG instances) is left out of this scrape rather than shown as 0.
    NvmlUtilization rates{};
    if (api_->utilization(device_handles_[i], &rates) == kNvmlSuccess) {
      const double ratio = static_cast<double>(rates.gpu) / 100.0;
      AddGauge(utilization, labels, ratio);
      if (triton_names_) AddGauge(nv_utilization, nv_labels, ratio);
    }
    NvmlMemory memory{};
    if (api_->memory(device_handles_[i], &memory) == kNvmlSuccess) {
      AddGauge(used, labels, static_cast<double>(memory.used));
      AddGauge(total, labels, static_cast<double>(memory.total));
      if (triton_names_) {
        AddGauge(nv_used, nv_labels, static_cast<double>(memory.used));
        AddGauge(nv_total, nv_labels, static_cast<double>(memory.total));
      }
    }
    unsigned int milliwatts = 0;
    if (triton_names_ && api_->power != nullptr && api_->power(device_handles_[i], &milliwatts) == kNvmlSuccess) {
      AddGauge(nv_power, nv_labels, static_cast<double>(milliwatts) / 1000.0);
    }
  }
  std::vector<prometheus::MetricFamily> families;
  for (auto* family : {&utilization, &used, &total, &nv_utilization, &nv_power, &nv_used, &nv_total}) {
    if (!family->metric.empty()) families.push_back(std::move(*family));
  }
  return families;
}

}  // namespace ortserve::observability
