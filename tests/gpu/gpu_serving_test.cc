// SPDX-License-Identifier: Apache-2.0
// GPU serving on the real ortserve binary (issue #8), for the GPU machine:
// a KIND_GPU model answers as its CPU twin does, two instances on one GPU
// both serve (one's copies overlap the other's run), dynamic batching forms
// batches on the GPU, the NVML gauges are exported, and a GPU session builds
// batches in pinned memory. Label `gpu`: not in
// `make test`; without an NVIDIA device and the CUDA provider they skip.
// ORTSERVE_GPU_TEST_ON_CPU=1 runs them with KIND_CPU instead (the NVML check
// skips), to keep the tests themselves honest on a machine without a GPU.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <atomic>
#include <cstring>
#include <cstdlib>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "backend/ort/ort_session_factory.h"
#include "integration/server_harness.h"

namespace ortserve::testing {
namespace {
namespace fs = std::filesystem;

bool OnCpu() { return std::getenv("ORTSERVE_GPU_TEST_ON_CPU") != nullptr; }
std::string Kind() { return OnCpu() ? "KIND_CPU" : "KIND_GPU"; }

// Why GPU tests cannot run here, or empty when they can.
std::string MissingGpu() {
  if (OnCpu()) return "";
  if (!fs::exists("/dev/nvidiactl") && !fs::exists("/dev/nvidia0")) return "no NVIDIA device (/dev/nvidia*)";
  const std::string lib = std::getenv("ORTSERVE_ORT_LIB_DIR") != nullptr
                              ? std::getenv("ORTSERVE_ORT_LIB_DIR")
                              : SourceDir() + "/.deps/onnxruntime/lib";
  if (!fs::exists(lib + "/libonnxruntime_providers_cuda.so")) {
    return "no CUDA execution provider in " + lib + " (ORT_WITH_CUDA=1 scripts/setup.sh)";
  }
  return "";
}

// The bundled iris classifier (input [b,4] -> probabilities [b,3], label),
// served from `repo/name` with `extra` config lines.
void WriteIris(const std::string& repo, const std::string& name, const std::string& extra) {
  fs::create_directories(fs::path(repo) / name / "1");
  fs::copy_file(fs::path(SourceDir()) / "models/iris_classifier/1/model.onnx", fs::path(repo) / name / "1/model.onnx",
                fs::copy_options::overwrite_existing);
  std::ofstream(fs::path(repo) / name / "config.pbtxt")
      << "max_batch_size: 64\n"
         "input { name: \"input\" data_type: TYPE_FP32 dims: [ 4 ] }\n"
         "output { name: \"probabilities\" data_type: TYPE_FP32 dims: [ 3 ] }\n"
      << extra;
}

std::string Body(const std::vector<float>& row) {
  std::string data;
  for (float v : row) data += (data.empty() ? "" : ",") + std::to_string(v);
  return R"({"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[)" + data +
         R"(]}],"outputs":[{"name":"probabilities"}]})";
}

std::vector<float> Probabilities(const std::string& body) {
  auto doc = Json(body);
  std::vector<float> values;
  if (!doc.IsObject() || !doc.HasMember("outputs")) return values;
  for (const auto& v : doc["outputs"][0]["data"].GetArray()) values.push_back(v.GetFloat());
  return values;
}

class GpuServingTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    missing_ = new std::string(MissingGpu());
    if (!missing_->empty()) return;
    repo_ = new TempDir();
    WriteIris(repo_->path(), "cpu", "instance_group [ { kind: KIND_CPU } ]\n");
    WriteIris(repo_->path(), "gpu", "instance_group [ { kind: " + Kind() + " count: 2 gpus: [ 0 ] } ]\n");
    WriteIris(repo_->path(), "gpu_batched",
              "instance_group [ { kind: " + Kind() + " gpus: [ 0 ] } ]\n"
              "dynamic_batching { max_queue_delay_microseconds: 2000 }\n");
    auto server = ServerProcess::Start({"--model-repository", repo_->path(), "--metrics-port", "0"});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();
  }
  static void TearDownTestSuite() {
    delete server_;
    delete repo_;
    delete missing_;
  }
  void SetUp() override {
    if (!missing_->empty()) GTEST_SKIP() << *missing_;
  }

  static std::string* missing_;
  static TempDir* repo_;
  static ServerProcess* server_;
};
std::string* GpuServingTest::missing_ = nullptr;
TempDir* GpuServingTest::repo_ = nullptr;
ServerProcess* GpuServingTest::server_ = nullptr;

TEST_F(GpuServingTest, GpuModelAnswersAsItsCpuTwinDoes) {
  HttpClient client(server_->http_port());
  std::mt19937 random(7);
  std::uniform_real_distribution<float> value(0.f, 8.f);
  for (int i = 0; i < 50; ++i) {
    const std::vector<float> row = {value(random), value(random), value(random), value(random)};
    auto cpu = client.Post("/v2/models/cpu/infer", Body(row));
    auto gpu = client.Post("/v2/models/gpu/infer", Body(row));
    ASSERT_EQ(cpu.status, 200u) << cpu.body;
    ASSERT_EQ(gpu.status, 200u) << gpu.body;
    const auto expected = Probabilities(cpu.body);
    const auto actual = Probabilities(gpu.body);
    ASSERT_EQ(actual.size(), expected.size());
    for (size_t j = 0; j < expected.size(); ++j) EXPECT_NEAR(actual[j], expected[j], 1e-4) << "row " << i;
  }
}

TEST_F(GpuServingTest, BothInstancesOnOneGpuServeUnderConcurrency) {
  constexpr int kClients = 8;
  constexpr int kEach = 100;
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      HttpClient client(server_->http_port());
      for (int i = 0; i < kEach; ++i) {
        ok += client.Post("/v2/models/gpu/infer", Body({1.f * c, 2.f, 3.f, 0.5f * i})).status == 200u;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), kClients * kEach);
  HttpClient client(server_->metrics_port());
  std::string m;
  EXPECT_TRUE(WaitUntil([&] {
    m = client.Get("/metrics").body;
    return MetricValue(m, "ortserve_instance_execution_total", {R"(model="gpu")", R"(instance="0")"}) > 0 &&
           MetricValue(m, "ortserve_instance_execution_total", {R"(model="gpu")", R"(instance="1")"}) > 0;
  }, 10)) << m;
  // The runs were on GPU 0, and it counted the time it was busy with them.
  const std::string device = OnCpu() ? R"(device="cpu")" : R"(device="gpu0")";
  EXPECT_GT(MetricValue(m, "ortserve_instance_execution_total", {R"(model="gpu")", device}), 0) << m;
  EXPECT_GT(MetricValue(m, "ortserve_device_busy_seconds_total", {device}), 0) << m;
}

TEST_F(GpuServingTest, DynamicBatchingFormsBatchesOnTheGpu) {
  constexpr int kClients = 16;
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      HttpClient client(server_->http_port());
      for (int i = 0; i < 20; ++i) ok += client.Post("/v2/models/gpu_batched/infer", Body({1, 2, 3, 1.f * c})).status == 200u;
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), kClients * 20);
  HttpClient client(server_->http_port());
  auto stats = Json(client.Get("/v2/models/gpu_batched/stats").body);
  const auto& s = stats["model_stats"][0];
  EXPECT_EQ(s["inference_count"].GetUint64(), static_cast<uint64_t>(kClients * 20));
  EXPECT_LT(s["execution_count"].GetUint64(), static_cast<uint64_t>(kClients * 20)) << "no batch was formed";
}

TEST_F(GpuServingTest, GpuUtilizationAndMemoryAreExported) {
  if (OnCpu()) GTEST_SKIP() << "NVML gauges need the GPU machine";
  HttpClient client(server_->metrics_port());
  const std::string m = client.Get("/metrics").body;
  EXPECT_GE(MetricValue(m, "ortserve_gpu_utilization_ratio", {R"(gpu="0")"}), 0) << m;
  EXPECT_GT(MetricValue(m, "ortserve_gpu_memory_total_bytes", {R"(gpu="0")"}), 0) << m;
  EXPECT_GT(MetricValue(m, "ortserve_gpu_memory_used_bytes", {R"(gpu="0")"}), 0) << m;
}

// The backend alone: a GPU session hands out pinned memory for batches, and a
// batch built there, bound with IoBinding, gives the CPU session's answers.
TEST(GpuSessionTest, BatchBuffersArePinnedAndGiveTheCpuAnswers) {
  if (const std::string missing = MissingGpu(); !missing.empty()) GTEST_SKIP() << missing;
  auto factory = backend::OrtSessionFactory::Create(backend::OrtSessionFactory::Options{});
  ASSERT_TRUE(factory.ok()) << factory.status();
  backend::SessionOptions options;
  options.model_path = SourceDir() + "/models/iris_classifier/1/model.onnx";
  auto cpu = (*factory)->Create(options);
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  options.device = OnCpu() ? backend::DeviceKind::kCpu : backend::DeviceKind::kGpu;
  options.io_binding = true;
  auto gpu = (*factory)->Create(options);
  ASSERT_TRUE(gpu.ok()) << gpu.status();

  constexpr int kRows = 32;
  std::vector<float> values(kRows * 4);
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i % 9) * 0.75f;
  backend::HostBuffer buffer = (*gpu)->AllocateHostBuffer(values.size() * sizeof(float));
  EXPECT_EQ(buffer.pinned(), !OnCpu());
  ASSERT_EQ(buffer.size(), values.size() * sizeof(float));
  std::memcpy(buffer.data(), values.data(), buffer.size());
  Tensor input;
  input.name = "input";
  input.type = DataType::kFp32;
  input.shape = {kRows, 4};
  input.data = std::span<const std::byte>(buffer.data(), buffer.size());
  const std::vector<std::string> names = {"probabilities"};
  for (int repeat = 0; repeat < 3; ++repeat) {
    std::vector<Tensor> expected, actual;
    ASSERT_TRUE((*cpu)->Run({&input, 1}, names, &expected).ok());
    ASSERT_TRUE((*gpu)->Run({&input, 1}, names, &actual).ok());
    ASSERT_EQ(actual[0].shape, expected[0].shape);
    const auto e = expected[0].values<float>();
    const auto a = actual[0].values<float>();
    ASSERT_EQ(a.size(), e.size());
    for (size_t j = 0; j < e.size(); ++j) EXPECT_NEAR(a[j], e[j], 1e-4) << "element " << j;
  }
}

}  // namespace
}  // namespace ortserve::testing
