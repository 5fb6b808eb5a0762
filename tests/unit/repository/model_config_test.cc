// SPDX-License-Identifier: Apache-2.0
#include "repository/model_config.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

namespace ortserve::repository {
namespace {

backend::ModelSignature BatchedSignature() {
  backend::ModelSignature s;
  s.inputs.push_back({"x", DataType::kFp32, Shape{-1, 4}});
  s.outputs.push_back({"y", DataType::kFp32, Shape{-1, 3}});
  return s;
}

ModelConfig Parse(const std::string& text, std::vector<std::string>* warnings = nullptr) {
  auto config = ParseModelConfig(text, "config.pbtxt", warnings);
  EXPECT_TRUE(config.ok()) << config.status();
  return config.ok() ? *config : ModelConfig();
}

TEST(ModelConfigTest, ParsesATritonOnnxConfigUnchanged) {
  std::vector<std::string> warnings;
  ModelConfig config = Parse(R"(
    name: "m"
    platform: "onnxruntime_onnx"
    max_batch_size: 8
    input [ { name: "x" data_type: TYPE_FP32 dims: [ 4 ] } ]
    output [ { name: "y" data_type: TYPE_FP32 dims: [ 3 ] } ]
    instance_group [ { count: 2 kind: KIND_CPU } ]
    dynamic_batching { preferred_batch_size: [ 4, 8 ] max_queue_delay_microseconds: 100 }
    version_policy: { latest: { num_versions: 2 } }
    parameters { key: "intra_op_thread_count" value: { string_value: "2" } }
  )", &warnings);
  EXPECT_TRUE(warnings.empty());
  EXPECT_EQ(config.max_batch_size(), 8);
  EXPECT_EQ(config.instance_group(0).count(), 2);
  EXPECT_EQ(config.dynamic_batching().preferred_batch_size_size(), 2);
  EXPECT_EQ(config.version_policy().latest().num_versions(), 2u);
}

TEST(ModelConfigTest, SyntaxErrorsGiveLineAndColumn) {
  auto config = ParseModelConfig("max_batch_size: 4\ninput { name: }", "m/config.pbtxt", nullptr);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(config.status().message()).find("m/config.pbtxt:2:"), std::string::npos)
      << config.status();
}

TEST(ModelConfigTest, UnknownAndUnsupportedFieldsAreReportedByName) {
  std::vector<std::string> warnings;
  ModelConfig config = Parse("name: \"m\"\nfuture_knob: 7\nsequence_batching { max_sequence_idle_microseconds: 5 }\n",
                             &warnings);
  ASSERT_TRUE(CompleteModelConfig("m", BatchedSignature(), &config, &warnings).ok());
  std::string all;
  for (const auto& w : warnings) all += w + "\n";
  EXPECT_NE(all.find("future_knob"), std::string::npos) << all;
  EXPECT_NE(all.find("sequence_batching"), std::string::npos) << all;
}

TEST(ModelConfigTest, EmptyConfigIsCompletedFromTheModelWithBatching) {
  ModelConfig config;
  ASSERT_TRUE(CompleteModelConfig("m", BatchedSignature(), &config, nullptr).ok());
  EXPECT_EQ(config.name(), "m");
  EXPECT_EQ(config.platform(), "onnxruntime_onnx");
  EXPECT_EQ(config.max_batch_size(), 4);
  EXPECT_TRUE(config.has_dynamic_batching());
  ASSERT_EQ(config.input_size(), 1);
  EXPECT_EQ(config.input(0).data_type(), config::TYPE_FP32);
  ASSERT_EQ(config.input(0).dims_size(), 1);  // The batch dimension is implied.
  EXPECT_EQ(config.input(0).dims(0), 4);
  EXPECT_EQ(config.output(0).dims(0), 3);
  EXPECT_EQ(config.instance_group_size(), 1);
  EXPECT_EQ(config.version_policy().latest().num_versions(), 1u);
}

TEST(ModelConfigTest, RemotePlatformKeepsItsNameAndARemoteBlockNeedsIt) {
  ModelConfig remote = Parse(R"(
    platform: "remote"
    max_batch_size: 8
    input { name: "x" data_type: TYPE_FP32 dims: [4] }
    output { name: "y" data_type: TYPE_FP32 dims: [3] }
    remote { endpoints: ["10.0.0.1:8000", "10.0.0.2:8000"] protocol: KSERVE_GRPC load_balancing: LEAST_OUTSTANDING }
  )");
  ASSERT_TRUE(CompleteModelConfig("m", BatchedSignature(), &remote, nullptr).ok());
  EXPECT_EQ(remote.platform(), "remote");
  EXPECT_EQ(remote.backend(), "remote");
  EXPECT_EQ(remote.remote().endpoints_size(), 2);

  ModelConfig stray = Parse(R"(remote { endpoints: "10.0.0.1:8000" })");
  absl::Status status = CompleteModelConfig("m", BatchedSignature(), &stray, nullptr);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(status.message()).find("platform \"remote\""), std::string::npos) << status;

  ModelConfig other = Parse(R"(platform: "tensorflow_savedmodel")");
  EXPECT_EQ(CompleteModelConfig("m", BatchedSignature(), &other, nullptr).code(), absl::StatusCode::kInvalidArgument);
}

TEST(ModelConfigTest, FixedShapeModelGetsNoBatching) {
  backend::ModelSignature s;
  s.inputs.push_back({"x", DataType::kInt64, Shape{2, 2}});
  s.outputs.push_back({"y", DataType::kInt64, Shape{2, 2}});
  ModelConfig config;
  ASSERT_TRUE(CompleteModelConfig("m", s, &config, nullptr).ok());
  EXPECT_EQ(config.max_batch_size(), 0);
  EXPECT_EQ(config.input(0).dims_size(), 2);
  EXPECT_EQ(ServedShape(config, config.input(0).dims()), (Shape{2, 2}));
}

TEST(ModelConfigTest, PartialConfigKeepsWhatItSaysAndFillsTheRest) {
  ModelConfig config = Parse("max_batch_size: 16\ninput { name: \"x\" }");
  ASSERT_TRUE(CompleteModelConfig("m", BatchedSignature(), &config, nullptr).ok());
  EXPECT_EQ(config.max_batch_size(), 16);
  EXPECT_EQ(config.input(0).data_type(), config::TYPE_FP32);
  EXPECT_EQ(config.input(0).dims(0), 4);
  EXPECT_EQ(config.output_size(), 1);
  EXPECT_EQ(ServedShape(config, config.input(0).dims()), (Shape{-1, 4}));
}

struct Mismatch {
  const char* name;
  const char* config;
  const char* message_part;
};
class ModelConfigMismatchTest : public ::testing::TestWithParam<Mismatch> {};

TEST_P(ModelConfigMismatchTest, IsRejectedNamingTheField) {
  ModelConfig config = Parse(GetParam().config);
  absl::Status status = CompleteModelConfig("m", BatchedSignature(), &config, nullptr);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(status.message()).find(GetParam().message_part), std::string::npos) << status;
}

INSTANTIATE_TEST_SUITE_P(
    All, ModelConfigMismatchTest,
    ::testing::Values(
        Mismatch{"WrongType", "max_batch_size: 4 input { name: \"x\" data_type: TYPE_INT32 }", "TYPE_INT32"},
        Mismatch{"WrongDims", "max_batch_size: 4 input { name: \"x\" dims: [ 5 ] }", "[5]"},
        Mismatch{"UnknownInput", "input { name: \"z\" }", "'z'"},
        Mismatch{"UnknownOutput", "output { name: \"q\" }", "'q'"},
        Mismatch{"OtherName", "name: \"other\"", "other"},
        Mismatch{"OtherPlatform", "platform: \"tensorflow_savedmodel\"", "tensorflow_savedmodel"},
        Mismatch{"PreferredAboveMax", "max_batch_size: 4 dynamic_batching { preferred_batch_size: 8 }", "8"},
        Mismatch{"NegativeMaxBatch", "max_batch_size: -2", "max_batch_size"},
        Mismatch{"DelayPastInt64",
                 "max_batch_size: 4 dynamic_batching { max_queue_delay_microseconds: 18446744073709551615 }",
                 "max_queue_delay_microseconds 18446744073709551615 is more than an hour"},
        Mismatch{"TimeoutOverAnHour",
                 "max_batch_size: 4 dynamic_batching { default_queue_policy { default_timeout_microseconds: "
                 "3600000001 } }",
                 "default_timeout_microseconds 3600000001"},
        Mismatch{"LatencyTargetOverAnHour",
                 "max_batch_size: 4 dynamic_batching { latency_target_microseconds: 9223372036854775808 }",
                 "latency_target_microseconds 9223372036854775808"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(ModelConfigTest, BatchingNeedsAVariableFirstDimension) {
  backend::ModelSignature s;
  s.inputs.push_back({"x", DataType::kFp32, Shape{2, 4}});
  s.outputs.push_back({"y", DataType::kFp32, Shape{2, 3}});
  ModelConfig config = Parse("max_batch_size: 8");
  absl::Status status = CompleteModelConfig("m", s, &config, nullptr);
  EXPECT_FALSE(status.ok());
  EXPECT_NE(std::string(status.message()).find("batch dimension"), std::string::npos) << status;
}

TEST(ModelConfigTest, StringsThatAreNotUtf8AreRefusedNamingTheField) {
  // Found by tests/fuzz/model_config_fuzz: text format escapes can put any
  // bytes in a string, which proto3 (and the JSON config endpoint) cannot carry.
  std::vector<std::string> warnings;
  auto bad = ParseModelConfig(R"(parameters { key: "a\xff" value: { string_value: "1" } })", "m/config.pbtxt",
                              &warnings);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "m/config.pbtxt: field parameters.key is not valid UTF-8");
  auto nested = ParseModelConfig(R"(output { name: "y" label_filename: "\xc0\x80" })", "m/config.pbtxt", &warnings);
  ASSERT_FALSE(nested.ok());
  EXPECT_EQ(nested.status().message(), "m/config.pbtxt: field output.label_filename is not valid UTF-8");
  EXPECT_TRUE(ParseModelConfig("name: \"caf\xc3\xa9\"", "m/config.pbtxt", &warnings).ok());
}

TEST(ModelConfigTest, CudaGraphsAreRefusedClearlyAndOffIsAccepted) {
  auto with = [](const std::string& value) {
    return Parse(R"(
      instance_group [ { kind: KIND_GPU } ]
      parameters { key: "cuda.enable_cuda_graph" value: { string_value: ")" + value + R"(" } }
    )");
  };
  auto on = SessionOptionsFromConfig(with("1"), "/m/1/model.onnx", nullptr);
  ASSERT_FALSE(on.ok());
  EXPECT_EQ(on.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(on.status().message()).find("cuda.enable_cuda_graph is not supported"), std::string::npos)
      << on.status();
  auto off = SessionOptionsFromConfig(with("false"), "/m/1/model.onnx", nullptr);
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_TRUE(off->gpu_provider_options.empty());
  EXPECT_FALSE(SessionOptionsFromConfig(with("maybe"), "/m/1/model.onnx", nullptr).ok());
}

TEST(ModelConfigTest, SessionOptionsFollowTritonOnnxRuntimeParameters) {
  ModelConfig config = Parse(R"(
    optimization { graph { level: 1 } }
    instance_group [ { kind: KIND_GPU gpus: [ 3 ] } ]
    parameters { key: "intra_op_thread_count" value: { string_value: "3" } }
    parameters { key: "execution_mode" value: { string_value: "1" } }
    parameters { key: "enable_mem_arena" value: { string_value: "false" } }
    parameters { key: "session.intra_op.allow_spinning" value: { string_value: "0" } }
    parameters { key: "cuda.cudnn_conv_algo_search" value: { string_value: "HEURISTIC" } }
    parameters { key: "mystery" value: { string_value: "1" } }
  )");
  std::vector<std::string> warnings;
  auto options = SessionOptionsFromConfig(config, "/m/1/model.onnx", &warnings);
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->intra_op_threads, 3);
  EXPECT_EQ(options->execution_mode, backend::ExecutionMode::kParallel);
  EXPECT_FALSE(options->enable_cpu_mem_arena);
  EXPECT_EQ(options->graph_optimization, backend::GraphOptimization::kExtended);
  auto instances = InstanceSessionOptions(config, *options);
  ASSERT_TRUE(instances.ok()) << instances.status();
  ASSERT_EQ(instances->size(), 1u);
  EXPECT_EQ((*instances)[0].device, backend::DeviceKind::kGpu);
  EXPECT_EQ((*instances)[0].gpu_device_id, 3);
  EXPECT_EQ((*instances)[0].intra_op_threads, 3);
  ASSERT_EQ(options->config_entries.size(), 1u);
  EXPECT_EQ(options->config_entries[0].first, "session.intra_op.allow_spinning");
  ASSERT_EQ(options->gpu_provider_options.size(), 1u);
  EXPECT_EQ(options->gpu_provider_options[0].first, "cudnn_conv_algo_search");
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("mystery"), std::string::npos);
}

TEST(ModelConfigTest, GpuGroupsPlaceCountInstancesOnEachListedGpuAsTritonDoes) {
  ModelConfig config = Parse(R"(
    name: "m"
    instance_group [ { kind: KIND_GPU count: 2 gpus: [ 0, 1 ] }, { kind: KIND_CPU count: 1 }, { kind: KIND_GPU } ]
  )");
  auto base = SessionOptionsFromConfig(config, "m.onnx", nullptr);
  ASSERT_TRUE(base.ok()) << base.status();
  auto instances = InstanceSessionOptions(config, *base);
  ASSERT_TRUE(instances.ok()) << instances.status();
  ASSERT_EQ(instances->size(), 6u);
  const std::vector<std::pair<backend::DeviceKind, int>> expected = {
      {backend::DeviceKind::kGpu, 0}, {backend::DeviceKind::kGpu, 0}, {backend::DeviceKind::kGpu, 1},
      {backend::DeviceKind::kGpu, 1}, {backend::DeviceKind::kCpu, 0}, {backend::DeviceKind::kGpu, 0}};
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ((*instances)[i].device, expected[i].first) << "instance " << i;
    EXPECT_EQ((*instances)[i].gpu_device_id, expected[i].second) << "instance " << i;
    // GPU instances bind their I/O (one copy each way); CPU ones need not.
    EXPECT_EQ((*instances)[i].io_binding, expected[i].first == backend::DeviceKind::kGpu) << "instance " << i;
    EXPECT_EQ((*instances)[i].model_path, "m.onnx");
  }
}

TEST(ModelConfigTest, InstancePlacementKeepsAnExplicitIoBindingAndDefaultsToOneCpuInstance) {
  ModelConfig config = Parse(R"(
    instance_group [ { kind: KIND_GPU count: 1 gpus: [ 2 ] }, { kind: KIND_CPU count: 1 } ]
    parameters { key: "io_binding" value: { string_value: "false" } }
  )");
  auto base = SessionOptionsFromConfig(config, "m.onnx", nullptr);
  ASSERT_TRUE(base.ok()) << base.status();
  auto instances = InstanceSessionOptions(config, *base);
  ASSERT_TRUE(instances.ok()) << instances.status();
  ASSERT_EQ(instances->size(), 2u);
  EXPECT_EQ((*instances)[0].gpu_device_id, 2);
  EXPECT_FALSE((*instances)[0].io_binding);
  EXPECT_FALSE((*instances)[1].io_binding);

  ModelConfig none = Parse("name: \"m\"");
  auto single = InstanceSessionOptions(none, *SessionOptionsFromConfig(none, "m.onnx", nullptr));
  ASSERT_TRUE(single.ok());
  ASSERT_EQ(single->size(), 1u);
  EXPECT_EQ((*single)[0].device, backend::DeviceKind::kCpu);
}

TEST(ModelConfigTest, NegativeGpuIdsAndKindModelAreRejectedByName) {
  ModelConfig negative = Parse(R"(name: "m" instance_group [ { kind: KIND_GPU gpus: [ 0, -1 ] } ])");
  auto instances = InstanceSessionOptions(negative, *SessionOptionsFromConfig(negative, "m.onnx", nullptr));
  ASSERT_FALSE(instances.ok());
  EXPECT_EQ(instances.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(instances.status().message()).find("-1"), std::string::npos) << instances.status();
  ModelConfig model_kind = Parse(R"(name: "m" instance_group [ { kind: KIND_MODEL } ])");
  auto rejected = InstanceSessionOptions(model_kind, *SessionOptionsFromConfig(model_kind, "m.onnx", nullptr));
  ASSERT_FALSE(rejected.ok());
  EXPECT_NE(std::string(rejected.status().message()).find("KIND_MODEL"), std::string::npos);
}

TEST(ModelConfigTest, BadParameterValuesAreRejected) {
  ModelConfig config = Parse(R"(parameters { key: "intra_op_thread_count" value: { string_value: "four" } })");
  auto options = SessionOptionsFromConfig(config, "m.onnx", nullptr);
  ASSERT_FALSE(options.ok());
  EXPECT_NE(std::string(options.status().message()).find("four"), std::string::npos);
}

TEST(ModelConfigTest, JsonHasNumericDimsLikeTriton) {
  ModelConfig config = Parse("name: \"m\" max_batch_size: 2 input { name: \"x\" data_type: TYPE_FP32 dims: [ -1, 4 ] }"
                             " dynamic_batching { max_queue_delay_microseconds: 250 }");
  rapidjson::Document doc;
  std::string json = ModelConfigToJson(config);
  doc.Parse(json.c_str());
  ASSERT_FALSE(doc.HasParseError()) << json;
  EXPECT_TRUE(doc["input"][0]["dims"][0].IsInt64()) << json;
  EXPECT_EQ(doc["input"][0]["dims"][0].GetInt64(), -1);
  EXPECT_EQ(doc["dynamic_batching"]["max_queue_delay_microseconds"].GetInt64(), 250);
  EXPECT_STREQ(doc["input"][0]["data_type"].GetString(), "TYPE_FP32");
  EXPECT_EQ(doc["max_batch_size"].GetInt(), 2);
}

}  // namespace
}  // namespace ortserve::repository

namespace ortserve::repository {
namespace {

TEST(ModelConfigBreakerTest, CircuitBreakerFieldsAreBoundedAndNamedWhenWrong) {
  ModelConfig good = Parse(
      "routing { circuit_breaker { enable: true window_ms: 30000 min_requests: 50 error_rate: 0.25 "
      "slow_call_ms: 200 slow_call_rate: 1 open_ms: 10000 half_open_requests: 5 } }");
  ASSERT_TRUE(CompleteModelConfig("m", BatchedSignature(), &good, nullptr).ok());
  EXPECT_TRUE(good.routing().circuit_breaker().enable());
  EXPECT_EQ(good.routing().circuit_breaker().half_open_requests(), 5u);
  for (const auto& [text, field] : std::vector<std::pair<std::string, std::string>>{
           {"error_rate: 1.5", "error_rate"},
           {"error_rate: -0.1", "error_rate"},
           {"error_rate: nan", "error_rate"},
           {"slow_call_rate: 2", "slow_call_rate"},
           {"window_ms: 3600001", "window_ms"},
           {"open_ms: 99999999999", "open_ms"},
           {"slow_call_ms: 4000000", "slow_call_ms"},
           {"min_requests: 1000001", "min_requests"},
           {"half_open_requests: 1001", "half_open_requests"}}) {
    ModelConfig config = Parse("routing { circuit_breaker { enable: true " + text + " } }");
    absl::Status status = CompleteModelConfig("m", BatchedSignature(), &config, nullptr);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_NE(std::string(status.message()).find("routing.circuit_breaker." + field), std::string::npos)
        << status.message();
  }
}

}  // namespace
}  // namespace ortserve::repository
