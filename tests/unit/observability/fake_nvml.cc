// SPDX-License-Identifier: Apache-2.0
// A stand-in for the NVIDIA driver's NVML library, built as a shared library
// that GpuCollector loads by path: two GPUs with fixed readings, plus knobs
// (fake_nvml_*) that the test reaches with dlsym on the same library.
// Built twice: with FAKE_NVML_WITHOUT_UUID it lacks nvmlDeviceGetUUID, as a
// library too old or too broken to use.
//
// Like NVML, every device call fails with NVML_ERROR_UNINITIALIZED (1) unless
// nvmlInit_v2 was called more often than nvmlShutdown.
#include <atomic>
#include <cstring>

namespace {

constexpr int kSuccess = 0;
constexpr int kUninitialized = 1;
constexpr int kInvalidArgument = 2;
constexpr int kNotSupported = 3;
constexpr int kInsufficientSize = 7;

struct FakeDevice {
  const char* name;
  const char* uuid;
  std::atomic<unsigned> utilization_percent;
  unsigned memory_percent;
  unsigned long long total_bytes;
  unsigned long long used_bytes;
  std::atomic<int> memory_result;  // What nvmlDeviceGetMemoryInfo returns.
  unsigned power_milliwatts;       // 0: nvmlDeviceGetPowerUsage is not supported.
};

FakeDevice devices[2] = {
    {"Fake GPU Alpha", "GPU-00000000-fake-0000-0000-000000000000", 37, 12, 16ull << 30, 4ull << 30, kSuccess, 72500},
    {"Fake GPU Beta", "GPU-11111111-fake-1111-1111-111111111111", 60, 45, 80ull << 30, 48ull << 30, kSuccess, 0},
};
std::atomic<int> init_result{kSuccess};
std::atomic<int> init_depth{0};
std::atomic<int> init_calls{0};
std::atomic<int> shutdown_calls{0};

bool Initialized() { return init_depth.load() > 0; }

int CopyString(const char* text, char* out, unsigned length) {
  if (std::strlen(text) + 1 > length) return kInsufficientSize;
  std::memcpy(out, text, std::strlen(text) + 1);
  return kSuccess;
}

// A device handle is a pointer to its FakeDevice.
FakeDevice* Device(void* handle) {
  for (FakeDevice& device : devices) {
    if (handle == &device) return &device;
  }
  return nullptr;
}

}  // namespace

extern "C" {

struct FakeUtilization {
  unsigned int gpu;
  unsigned int memory;
};
struct FakeMemory {
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
};

// --- The NVML functions GpuCollector uses. ---

int nvmlInit_v2() {
  init_calls.fetch_add(1);
  if (init_result.load() != kSuccess) return init_result.load();
  init_depth.fetch_add(1);
  return kSuccess;
}

int nvmlShutdown() {
  if (!Initialized()) return kUninitialized;
  shutdown_calls.fetch_add(1);
  init_depth.fetch_sub(1);
  return kSuccess;
}

const char* nvmlErrorString(int result) {
  switch (result) {
    case kSuccess: return "Success";
    case kUninitialized: return "Uninitialized";
    case kInvalidArgument: return "Invalid Argument";
    case 9: return "Driver Not Loaded";
    case 15: return "GPU is lost";
    default: return "Unknown Error";
  }
}

int nvmlDeviceGetCount_v2(unsigned int* count) {
  if (!Initialized()) return kUninitialized;
  if (count == nullptr) return kInvalidArgument;
  *count = 2;
  return kSuccess;
}

int nvmlDeviceGetHandleByIndex_v2(unsigned int index, void** device) {
  if (!Initialized()) return kUninitialized;
  if (index >= 2 || device == nullptr) return kInvalidArgument;
  *device = &devices[index];
  return kSuccess;
}

int nvmlDeviceGetUtilizationRates(void* handle, FakeUtilization* utilization) {
  if (!Initialized()) return kUninitialized;
  FakeDevice* device = Device(handle);
  if (device == nullptr || utilization == nullptr) return kInvalidArgument;
  utilization->gpu = device->utilization_percent.load();
  utilization->memory = device->memory_percent;
  return kSuccess;
}

int nvmlDeviceGetMemoryInfo(void* handle, FakeMemory* memory) {
  if (!Initialized()) return kUninitialized;
  FakeDevice* device = Device(handle);
  if (device == nullptr || memory == nullptr) return kInvalidArgument;
  if (device->memory_result.load() != kSuccess) return device->memory_result.load();
  memory->total = device->total_bytes;
  memory->used = device->used_bytes;
  memory->free = device->total_bytes - device->used_bytes;
  return kSuccess;
}

int nvmlDeviceGetPowerUsage(void* handle, unsigned int* milliwatts) {
  if (!Initialized()) return kUninitialized;
  FakeDevice* device = Device(handle);
  if (device == nullptr || milliwatts == nullptr) return kInvalidArgument;
  if (device->power_milliwatts == 0) return kNotSupported;
  *milliwatts = device->power_milliwatts;
  return kSuccess;
}

int nvmlDeviceGetName(void* handle, char* name, unsigned int length) {
  if (!Initialized()) return kUninitialized;
  FakeDevice* device = Device(handle);
  if (device == nullptr || name == nullptr) return kInvalidArgument;
  return CopyString(device->name, name, length);
}

#ifndef FAKE_NVML_WITHOUT_UUID
int nvmlDeviceGetUUID(void* handle, char* uuid, unsigned int length) {
  if (!Initialized()) return kUninitialized;
  FakeDevice* device = Device(handle);
  if (device == nullptr || uuid == nullptr) return kInvalidArgument;
  return CopyString(device->uuid, uuid, length);
}
#endif

// --- Knobs for the test. ---

// Restores the fixed readings and clears the counters.
void fake_nvml_reset() {
  devices[0].utilization_percent = 37;
  devices[1].utilization_percent = 60;
  devices[0].memory_result = kSuccess;
  devices[1].memory_result = kSuccess;
  init_result = kSuccess;
  init_calls = 0;
  shutdown_calls = 0;
}
// nvmlInit_v2 returns `result` from now on (0: succeeds).
void fake_nvml_set_init_result(int result) { init_result = result; }
void fake_nvml_set_utilization(unsigned index, unsigned percent) { devices[index].utilization_percent = percent; }
// nvmlDeviceGetMemoryInfo of GPU `index` returns `result` (0: succeeds).
void fake_nvml_set_memory_result(unsigned index, int result) { devices[index].memory_result = result; }
int fake_nvml_init_calls() { return init_calls.load(); }
int fake_nvml_shutdown_calls() { return shutdown_calls.load(); }
// nvmlInit_v2 calls not yet balanced by nvmlShutdown.
int fake_nvml_init_depth() { return init_depth.load(); }

}  // extern "C"
