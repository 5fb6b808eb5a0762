// SPDX-License-Identifier: Apache-2.0
// GPU metrics against a fake NVML library (fake_nvml.cc, built as a shared
// library and loaded by path), and against a library that does not exist.
#include "observability/gpu_metrics.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/strings.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "observability/metrics.h"

namespace ortserve::observability {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kFakeNvml[] = FAKE_NVML_PATH;
constexpr char kFakeNvmlWithoutUuid[] = FAKE_NVML_WITHOUT_UUID_PATH;
constexpr char kMissingLibrary[] = "libortserve-test-no-such-nvml.so.1";
constexpr char kUuid0[] = "GPU-00000000-fake-0000-0000-000000000000";
constexpr char kUuid1[] = "GPU-11111111-fake-1111-1111-111111111111";
constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

// The value of the series `name{gpu="<gpu>",uuid="<uuid>"}` in a text
// exposition, or nullopt when there is no such series.
std::optional<double> Sample(const std::string& exposition, const std::string& name, int gpu,
                             const std::string& uuid) {
  const std::string prefix = StrCat(name, "{gpu=\"", gpu, "\",uuid=\"", uuid, "\"} ");
  size_t at = 0;
  while ((at = exposition.find(prefix, at)) != std::string::npos) {
    if (at == 0 || exposition[at - 1] == '\n') return std::strtod(exposition.c_str() + at + prefix.size(), nullptr);
    at += prefix.size();
  }
  return std::nullopt;
}

// The body of GET /metrics from 127.0.0.1:`port` (HTTP/1.0: the server
// closes the connection after the answer).
std::string Scrape(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string answer;
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0) {
    const std::string request = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
      char buffer[4096];
      for (ssize_t n; (n = read(fd, buffer, sizeof(buffer))) > 0;) answer.append(buffer, static_cast<size_t>(n));
    }
  }
  close(fd);
  return answer;
}

// Holds the fake library open for the test (so its state outlives each
// collector) and reaches its knobs.
class GpuMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fake_ = dlopen(kFakeNvml, RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(fake_, nullptr) << dlerror();
    Knob<void (*)()>("fake_nvml_reset")();
  }
  void TearDown() override {
    if (fake_ != nullptr) dlclose(fake_);
  }

  template <typename Function>
  Function Knob(const char* name) {
    auto function = reinterpret_cast<Function>(dlsym(fake_, name));
    EXPECT_NE(function, nullptr) << name;
    return function;
  }
  void SetInitResult(int result) { Knob<void (*)(int)>("fake_nvml_set_init_result")(result); }
  void SetUtilization(unsigned gpu, unsigned percent) {
    Knob<void (*)(unsigned, unsigned)>("fake_nvml_set_utilization")(gpu, percent);
  }
  void SetMemoryResult(unsigned gpu, int result) {
    Knob<void (*)(unsigned, int)>("fake_nvml_set_memory_result")(gpu, result);
  }
  int InitCalls() { return Knob<int (*)()>("fake_nvml_init_calls")(); }
  int ShutdownCalls() { return Knob<int (*)()>("fake_nvml_shutdown_calls")(); }
  int InitDepth() { return Knob<int (*)()>("fake_nvml_init_depth")(); }

  static std::unique_ptr<Metrics> MakeMetrics(std::string library, bool gpu_metrics = true) {
    MetricsOptions options;
    options.process_metrics = false;
    options.gpu_metrics = gpu_metrics;
    options.nvml_library = std::move(library);
    auto metrics = Metrics::Create(std::move(options));
    EXPECT_TRUE(metrics.ok()) << metrics.status();
    return metrics.ok() ? *std::move(metrics) : nullptr;
  }

  void* fake_ = nullptr;
};

TEST_F(GpuMetricsTest, ListsEachGpuWithItsNameAndUuid) {
  auto collector = GpuCollector::Open({kFakeNvml});
  ASSERT_TRUE(collector.ok()) << collector.status();
  const auto& devices = (*collector)->devices();
  ASSERT_EQ(devices.size(), 2u);
  EXPECT_EQ(devices[0].index, 0u);
  EXPECT_EQ(devices[0].name, "Fake GPU Alpha");
  EXPECT_EQ(devices[0].uuid, kUuid0);
  EXPECT_EQ(devices[1].index, 1u);
  EXPECT_EQ(devices[1].name, "Fake GPU Beta");
  EXPECT_EQ(devices[1].uuid, kUuid1);
  const std::string description = (*collector)->Describe();
  EXPECT_THAT(description, HasSubstr("2 GPUs via NVML"));
  EXPECT_THAT(description, HasSubstr(StrCat("0 Fake GPU Alpha ", kUuid0)));
  EXPECT_THAT(description, HasSubstr(StrCat("1 Fake GPU Beta ", kUuid1)));
}

TEST_F(GpuMetricsTest, ExportsUtilizationAndMemoryOfEachGpuLabelledByIndexAndUuid) {
  auto metrics = MakeMetrics(kFakeNvml);
  ASSERT_NE(metrics, nullptr);
  const std::string text = metrics->Serialize();
  EXPECT_THAT(text, HasSubstr("# TYPE ortserve_gpu_utilization_ratio gauge"));
  EXPECT_THAT(text, HasSubstr("# TYPE ortserve_gpu_memory_used_bytes gauge"));
  EXPECT_THAT(text, HasSubstr("# TYPE ortserve_gpu_memory_total_bytes gauge"));
  EXPECT_EQ(Sample(text, "ortserve_gpu_utilization_ratio", 0, kUuid0), 0.37);
  EXPECT_EQ(Sample(text, "ortserve_gpu_utilization_ratio", 1, kUuid1), 0.60);
  EXPECT_EQ(Sample(text, "ortserve_gpu_memory_used_bytes", 0, kUuid0), 4 * kGiB);
  EXPECT_EQ(Sample(text, "ortserve_gpu_memory_total_bytes", 0, kUuid0), 16 * kGiB);
  EXPECT_EQ(Sample(text, "ortserve_gpu_memory_used_bytes", 1, kUuid1), 48 * kGiB);
  EXPECT_EQ(Sample(text, "ortserve_gpu_memory_total_bytes", 1, kUuid1), 80 * kGiB);
  // No series pairs one GPU's index with the other's UUID.
  EXPECT_EQ(Sample(text, "ortserve_gpu_utilization_ratio", 0, kUuid1), std::nullopt);
  EXPECT_EQ(Sample(text, "ortserve_gpu_utilization_ratio", 1, kUuid0), std::nullopt);
}

TEST_F(GpuMetricsTest, TritonNamesAreAddedOnlyWithTheOptionLabelledByUuid) {
  EXPECT_THAT(MakeMetrics(kFakeNvml)->Serialize(), Not(HasSubstr("nv_gpu_")));
  MetricsOptions options;
  options.process_metrics = false;
  options.gpu_metrics = true;
  options.triton_metrics = true;
  options.nvml_library = kFakeNvml;
  auto metrics = Metrics::Create(std::move(options));
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  const std::string text = (*metrics)->Serialize();
  auto nv = [&](const std::string& name, const char* uuid) -> std::optional<double> {
    const std::string prefix = StrCat("\n", name, "{gpu_uuid=\"", uuid, "\"} ");
    const size_t at = text.find(prefix);
    if (at == std::string::npos) return std::nullopt;
    return std::strtod(text.c_str() + at + prefix.size(), nullptr);
  };
  EXPECT_THAT(text, HasSubstr("# TYPE nv_gpu_utilization gauge"));
  EXPECT_EQ(nv("nv_gpu_utilization", kUuid0), 0.37);
  EXPECT_EQ(nv("nv_gpu_utilization", kUuid1), 0.60);
  EXPECT_EQ(nv("nv_gpu_memory_used_bytes", kUuid0), 4 * kGiB);
  EXPECT_EQ(nv("nv_gpu_memory_total_bytes", kUuid1), 80 * kGiB);
  EXPECT_EQ(nv("nv_gpu_power_usage", kUuid0), 72.5);  // Watts, from milliwatts.
  // A GPU whose power NVML cannot read has no power series, not a 0.
  EXPECT_EQ(nv("nv_gpu_power_usage", kUuid1), std::nullopt);
  // ortserve's own names stay.
  EXPECT_EQ(Sample(text, "ortserve_gpu_utilization_ratio", 0, kUuid0), 0.37);
}

TEST_F(GpuMetricsTest, ReadsFreshValuesAtEachScrape) {
  auto metrics = MakeMetrics(kFakeNvml);
  ASSERT_NE(metrics, nullptr);
  EXPECT_EQ(Sample(metrics->Serialize(), "ortserve_gpu_utilization_ratio", 1, kUuid1), 0.60);
  SetUtilization(1, 100);
  SetUtilization(0, 0);
  const std::string text = metrics->Serialize();
  EXPECT_EQ(Sample(text, "ortserve_gpu_utilization_ratio", 1, kUuid1), 1.0);
  EXPECT_EQ(Sample(text, "ortserve_gpu_utilization_ratio", 0, kUuid0), 0.0);
}

TEST_F(GpuMetricsTest, LeavesOutOnlyTheReadingNvmlRefuses) {
  auto metrics = MakeMetrics(kFakeNvml);
  ASSERT_NE(metrics, nullptr);
  SetMemoryResult(1, 15);  // NVML_ERROR_GPU_IS_LOST.
  std::string text = metrics->Serialize();
  EXPECT_EQ(Sample(text, "ortserve_gpu_memory_used_bytes", 1, kUuid1), std::nullopt);
  EXPECT_EQ(Sample(text, "ortserve_gpu_memory_total_bytes", 1, kUuid1), std::nullopt);
  EXPECT_EQ(Sample(text, "ortserve_gpu_utilization_ratio", 1, kUuid1), 0.60);
  EXPECT_EQ(Sample(text, "ortserve_gpu_memory_used_bytes", 0, kUuid0), 4 * kGiB);
  // The reading comes back when NVML answers again.
  SetMemoryResult(1, 0);
  text = metrics->Serialize();
  EXPECT_EQ(Sample(text, "ortserve_gpu_memory_used_bytes", 1, kUuid1), 48 * kGiB);
}

TEST_F(GpuMetricsTest, MetricsServerServesTheGpuSeries) {
  auto metrics = MakeMetrics(kFakeNvml);
  ASSERT_NE(metrics, nullptr);
  auto server = MetricsServer::Start("127.0.0.1", 0, metrics.get());
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string answer = Scrape((*server)->port());
  ASSERT_THAT(answer, HasSubstr("200 OK"));
  EXPECT_EQ(Sample(answer, "ortserve_gpu_utilization_ratio", 0, kUuid0), 0.37);
  EXPECT_EQ(Sample(answer, "ortserve_gpu_memory_total_bytes", 1, kUuid1), 80 * kGiB);
}

TEST_F(GpuMetricsTest, ConcurrentScrapesReadEveryGpu) {
  auto collector = GpuCollector::Open({kFakeNvml});
  ASSERT_TRUE(collector.ok()) << collector.status();
  std::vector<std::thread> scrapers;
  std::atomic<int> incomplete{0};
  for (int t = 0; t < 4; ++t) {
    scrapers.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        auto families = (*collector)->Collect();
        if (families.size() != 3) ++incomplete;
        for (const auto& family : families) {
          if (family.metric.size() != 2) ++incomplete;
        }
      }
    });
  }
  for (auto& scraper : scrapers) scraper.join();
  EXPECT_EQ(incomplete.load(), 0);
}

TEST_F(GpuMetricsTest, ShutsNvmlDownOnceWhenDestroyed) {
  {
    auto metrics = MakeMetrics(kFakeNvml);
    ASSERT_NE(metrics, nullptr);
    EXPECT_EQ(InitCalls(), 1);
    EXPECT_EQ(InitDepth(), 1);
    EXPECT_EQ(ShutdownCalls(), 0);
  }
  EXPECT_EQ(InitDepth(), 0);
  EXPECT_EQ(ShutdownCalls(), 1);
}

TEST_F(GpuMetricsTest, MissingLibraryGivesNoGpuSeriesAndNamesTheLibrary) {
  auto collector = GpuCollector::Open({kMissingLibrary});
  ASSERT_FALSE(collector.ok());
  EXPECT_EQ(collector.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(ToStd(collector.status().message()), HasSubstr(kMissingLibrary));

  auto metrics = MakeMetrics(kMissingLibrary);
  ASSERT_NE(metrics, nullptr);
  VersionMetrics* version = metrics->ForVersion("m", "1");
  version->RecordExecution(1, 1, absl::ZeroDuration(), absl::ZeroDuration(), absl::ZeroDuration());
  const std::string text = metrics->Serialize();
  EXPECT_THAT(text, HasSubstr("ortserve_execution_total"));  // The rest is served as usual.
  EXPECT_THAT(text, Not(HasSubstr("ortserve_gpu_")));
}

TEST_F(GpuMetricsTest, InitFailureGivesNoGpuSeriesAndNeverShutsDown) {
  SetInitResult(9);  // NVML_ERROR_DRIVER_NOT_LOADED.
  auto collector = GpuCollector::Open({kFakeNvml});
  ASSERT_FALSE(collector.ok());
  EXPECT_EQ(collector.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(ToStd(collector.status().message()), HasSubstr("nvmlInit_v2 failed: Driver Not Loaded (NVML error 9)"));

  auto metrics = MakeMetrics(kFakeNvml);
  ASSERT_NE(metrics, nullptr);
  EXPECT_THAT(metrics->Serialize(), Not(HasSubstr("ortserve_gpu_")));
  metrics.reset();
  EXPECT_EQ(InitCalls(), 2);
  EXPECT_EQ(ShutdownCalls(), 0);
}

TEST_F(GpuMetricsTest, LibraryWithoutANeededFunctionIsRefusedNamingIt) {
  auto collector = GpuCollector::Open({kFakeNvmlWithoutUuid});
  ASSERT_FALSE(collector.ok());
  EXPECT_EQ(collector.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(ToStd(collector.status().message()), HasSubstr("nvmlDeviceGetUUID"));
  EXPECT_THAT(MakeMetrics(kFakeNvmlWithoutUuid)->Serialize(), Not(HasSubstr("ortserve_gpu_")));
}

TEST_F(GpuMetricsTest, GpuMetricsOffNeverLoadsTheLibrary) {
  auto metrics = MakeMetrics(kFakeNvml, /*gpu_metrics=*/false);
  ASSERT_NE(metrics, nullptr);
  EXPECT_EQ(InitCalls(), 0);
  EXPECT_THAT(metrics->Serialize(), Not(HasSubstr("ortserve_gpu_")));
}

}  // namespace
}  // namespace ortserve::observability
