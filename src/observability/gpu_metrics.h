// SPDX-License-Identifier: Apache-2.0
// GpuCollector: per-GPU utilization and memory gauges, read from the NVIDIA
// driver's NVML library at scrape time.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace ortserve::observability {

struct GpuMetricsOptions {
  // The NVML library to load at run time: a file name the dynamic loader
  // searches for (the driver installs libnvidia-ml.so.1), or a path. There is
  // no build-time dependency on CUDA or the driver.
  std::string library = "libnvidia-ml.so.1";
  // Also export Triton's names (--triton-metrics), labelled gpu_uuid:
  // nv_gpu_utilization (0..1), nv_gpu_power_usage (watts; left out where
  // NVML cannot read power), nv_gpu_memory_used_bytes and
  // nv_gpu_memory_total_bytes.
  bool triton_names = false;
};

// One GPU as NVML numbers it at start.
struct GpuDevice {
  unsigned index = 0;
  std::string uuid;  // "GPU-8a7f..."
  std::string name;  // "NVIDIA H100 80GB HBM3"
};

// Exports, per GPU found at start, labelled gpu (NVML index) and uuid:
//   ortserve_gpu_utilization_ratio      share of the last sample period in
//                                       which a kernel ran, 0..1
//   ortserve_gpu_memory_used_bytes      device memory in use (all processes)
//   ortserve_gpu_memory_total_bytes     device memory installed
// Each Collect() (one per scrape, never on the request path) asks NVML for
// fresh readings; a reading NVML refuses (a lost GPU, utilization on a MIG
// instance) is left out of that scrape, never shown as 0.
//
// Lifetime: Open loads the library and calls nvmlInit; the destructor calls
// nvmlShutdown and unloads it.
//
// Thread-safe: after Open the object is immutable, and NVML's calls are
// thread-safe, so concurrent scrapes may Collect at once.
class GpuCollector final : public prometheus::Collectable {
 public:
  // Loads `options.library`, initializes NVML and lists the GPUs with their
  // names and UUIDs. Errors (none is fatal to a server: it just has no GPU
  // metrics): NotFound when the library cannot be loaded (no NVIDIA driver),
  // naming the library and the loader's reason; Unimplemented when it lacks
  // one of the NVML functions used, naming it; Unavailable when nvmlInit,
  // the device count or a device's handle, name or UUID fails, naming the
  // call, the GPU index and NVML's error.
  static absl::StatusOr<std::shared_ptr<GpuCollector>> Open(GpuMetricsOptions options);
  ~GpuCollector() override;

  GpuCollector(const GpuCollector&) = delete;
  GpuCollector& operator=(const GpuCollector&) = delete;

  // The GPUs found at Open (possibly none).
  const std::vector<GpuDevice>& devices() const { return devices_; }
  // One line for the start-up log: "2 GPUs via NVML (libnvidia-ml.so.1): 0 <name> <uuid>, 1 ...".
  std::string Describe() const;

  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  struct Api;
  GpuCollector(std::string library, void* handle, std::unique_ptr<Api> api);

  const std::string library_;
  void* const handle_;  // From dlopen.
  const std::unique_ptr<Api> api_;
  std::vector<GpuDevice> devices_;
  std::vector<void*> device_handles_;  // nvmlDevice_t, by position in devices_.
  bool triton_names_ = false;
};

}  // namespace ortserve::observability
