// SPDX-License-Identifier: Apache-2.0
// The C++ client library (ortserve::client::Client) and the ortserve-cli binary
// against the real ortserve serving the demo models, over HTTP (binary tensor
// extension and plain JSON) and gRPC.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <sys/wait.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <regex>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "client/client.h"
#include "client/http_codec.h"
#include "core/strings.h"
#include "integration/server_harness.h"

namespace ortserve::testing {
namespace {

using client::Client;
using client::ClientOptions;
using client::Protocol;

ServerProcess* server = nullptr;
uint16_t http_port = 0;
uint16_t grpc_port = 0;

// The port of a complete "<what> listening on ADDR:PORT" line of the server's
// log, or 0 when it has not appeared by `deadline`. ServerProcess can read
// such a line before its end (and so a truncated port); a complete line ends
// with a newline.
uint16_t PortFromLog(const std::string& what, absl::Time deadline) {
  const std::regex re(what + " listening on [^ ]*:([0-9]+)[^0-9]");
  while (absl::Now() < deadline) {
    const std::string output = server->Output();
    std::smatch m;
    if (std::regex_search(output, m, re)) return static_cast<uint16_t>(std::stoi(m[1]));
    std::this_thread::yield();
  }
  return 0;
}

// One server for the whole binary (gtest_discover_tests runs one test per
// process, so this is one server per test).
class ServerEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    auto started = ServerProcess::Start({"--model-repository", SourceDir() + "/models", "--grpc-port", "0"});
    ASSERT_TRUE(started.ok()) << started.status();
    server = started->release();
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    http_port = PortFromLog("HTTP", deadline);
    grpc_port = PortFromLog("gRPC", deadline);
    ASSERT_NE(http_port, 0) << server->Output();
    ASSERT_NE(grpc_port, 0) << server->Output();
    // The server prints its ports before it marks itself ready; the tests
    // start once it answers ready (each probe is a round trip).
    auto client = Client::Create({.port = http_port});
    ASSERT_TRUE(client.ok()) << client.status();
    absl::StatusOr<bool> ready = false;
    while (!(ready.ok() && *ready) && absl::Now() < deadline) ready = (*client)->ServerReady();
    ASSERT_TRUE(ready.ok() && *ready) << ready.status() << " port " << http_port << "\n" << server->Output();
  }
  void TearDown() override {
    delete server;
    server = nullptr;
  }
};
const auto* const kEnvironment = ::testing::AddGlobalTestEnvironment(new ServerEnvironment);

template <typename T>
std::vector<T> Values(const Tensor& tensor) {
  std::vector<T> out(tensor.data.size() / sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), tensor.data.data(), tensor.data.size());
  return out;
}

const Tensor* FindOutput(const InferResponse& response, std::string_view name) {
  for (const auto& output : response.outputs) {
    if (output.name == name) return &output;
  }
  return nullptr;
}

Tensor Fp32(std::string name, Shape shape, std::vector<float> values) {
  return MakeTensor<float>(std::move(name), DataType::kFp32, std::move(shape), values);
}

InferRequest IrisRequest(std::vector<float> rows) {
  InferRequest request;
  request.model_name = "iris_classifier";
  const int64_t n = static_cast<int64_t>(rows.size() / 4);
  request.inputs.push_back(Fp32("input", {n, 4}, std::move(rows)));
  return request;
}

struct Transport {
  Protocol protocol;
  bool binary_http;
  const char* name;
};

class ClientTest : public ::testing::TestWithParam<Transport> {
 protected:
  void SetUp() override {
    ASSERT_NE(server, nullptr);
    ClientOptions options;
    options.protocol = GetParam().protocol;
    options.port = GetParam().protocol == Protocol::kHttp ? http_port : grpc_port;
    options.binary_http = GetParam().binary_http;
    options.timeout = absl::Seconds(30);
    auto created = Client::Create(options);
    ASSERT_TRUE(created.ok()) << created.status();
    client_ = std::move(*created);
  }
  std::unique_ptr<Client> client_;
};

TEST_P(ClientTest, ReportsHealthAndServerMetadata) {
  EXPECT_EQ(client_->ServerLive().value_or(false), true);
  EXPECT_EQ(client_->ServerReady().value_or(false), true);
  EXPECT_EQ(client_->ModelReady("iris_classifier").value_or(false), true);
  EXPECT_EQ(client_->ModelReady("iris_classifier", "1").value_or(false), true);
  auto unknown = client_->ModelReady("no_such_model");
  ASSERT_TRUE(unknown.ok()) << unknown.status();
  EXPECT_FALSE(*unknown);

  auto metadata = client_->GetServerMetadata();
  ASSERT_TRUE(metadata.ok()) << metadata.status();
  EXPECT_EQ(metadata->name, "ortserve");
  EXPECT_FALSE(metadata->version.empty());
  EXPECT_FALSE(metadata->extensions.empty());
}

TEST_P(ClientTest, DescribesModelMetadata) {
  auto metadata = client_->GetModelMetadata("multi_io");
  ASSERT_TRUE(metadata.ok()) << metadata.status();
  EXPECT_EQ(metadata->name, "multi_io");
  EXPECT_EQ(metadata->versions, std::vector<std::string>{"1"});
  ASSERT_EQ(metadata->inputs.size(), 3u);
  EXPECT_EQ(metadata->inputs[0].name, "a");
  EXPECT_EQ(metadata->inputs[0].type, DataType::kFp32);
  EXPECT_EQ(metadata->inputs[0].shape, (Shape{-1, 3}));
  EXPECT_EQ(metadata->inputs[2].type, DataType::kBool);
  ASSERT_EQ(metadata->outputs.size(), 5u);
  bool saw_fp16 = false;
  for (const auto& output : metadata->outputs) saw_fp16 |= output.name == "a_fp16" && output.type == DataType::kFp16;
  EXPECT_TRUE(saw_fp16);
}

TEST_P(ClientTest, ListsTheRepositoryIndex) {
  auto index = client_->RepositoryIndex();
  ASSERT_TRUE(index.ok()) << index.status();
  for (const char* model : {"iris_classifier", "multi_io", "string_length", "no_config_model"}) {
    bool ready = false;
    for (const auto& entry : *index) ready |= entry.name == model && entry.state == "READY";
    EXPECT_TRUE(ready) << model;
  }
}

TEST_P(ClientTest, InfersIrisClassifier) {
  auto response = client_->Infer(IrisRequest({5.1f, 3.5f, 1.4f, 0.2f, 6.3f, 3.3f, 6.0f, 2.5f}));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->model_name, "iris_classifier");
  EXPECT_EQ(response->model_version, "1");
  const Tensor* label = FindOutput(*response, "label");
  ASSERT_NE(label, nullptr);
  EXPECT_EQ(label->type, DataType::kInt64);
  EXPECT_EQ(label->shape, (Shape{2}));
  EXPECT_EQ(Values<int64_t>(*label), (std::vector<int64_t>{0, 2}));
  const Tensor* probabilities = FindOutput(*response, "probabilities");
  ASSERT_NE(probabilities, nullptr);
  EXPECT_EQ(probabilities->shape, (Shape{2, 3}));
  auto p = Values<float>(*probabilities);
  ASSERT_EQ(p.size(), 6u);
  EXPECT_NEAR(p[0] + p[1] + p[2], 1.0f, 1e-5);
  EXPECT_GT(p[0], 0.99f);
  EXPECT_GT(p[5], 0.99f);
}

TEST_P(ClientTest, ReturnsOnlyRequestedOutputsAndClassification) {
  InferRequest request = IrisRequest({6.4f, 3.2f, 4.5f, 1.5f});
  request.outputs.push_back({.name = "probabilities", .classification = 1});
  request.outputs.push_back({.name = "label"});
  auto response = client_->Infer(request);
  ASSERT_TRUE(response.ok()) << response.status();
  ASSERT_EQ(response->outputs.size(), 2u);
  const Tensor& classes = response->outputs[0];
  EXPECT_EQ(classes.name, "probabilities");
  EXPECT_EQ(classes.type, DataType::kBytes);
  auto elements = SplitBytesElements(classes.data, 1, classes.name);
  ASSERT_TRUE(elements.ok()) << elements.status();
  EXPECT_TRUE((*elements)[0].ends_with(":1:versicolor")) << (*elements)[0];
  EXPECT_EQ(response->outputs[1].name, "label");
  EXPECT_EQ(Values<int64_t>(response->outputs[1]), std::vector<int64_t>{1});
}

TEST_P(ClientTest, InfersMultiIoIncludingFp16AndFp64Outputs) {
  InferRequest request;
  request.model_name = "multi_io";
  request.id = "req-7";
  request.inputs.push_back(Fp32("a", {2, 3}, {1.5f, -2.25f, 3.0f, 0.5f, 2.5f, -1.0f}));
  std::vector<int32_t> b = {1, 2, 3, 4, 5, 6};
  request.inputs.push_back(MakeTensor<int32_t>("b", DataType::kInt32, {2, 3}, b));
  std::vector<uint8_t> flag = {0, 1};
  request.inputs.push_back(MakeTensor<uint8_t>("flag", DataType::kBool, {2, 1}, flag));
  auto response = client_->Infer(request);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->id, "req-7");
  ASSERT_EQ(response->outputs.size(), 5u);
  EXPECT_EQ(Values<float>(*FindOutput(*response, "sum")), (std::vector<float>{2.5f, -0.25f, 6, 4.5f, 7.5f, 5}));
  // round_half_even(a) * b: 2*1, -2*2, 3*3, 0*4, 2*5, -1*6.
  EXPECT_EQ(Values<int64_t>(*FindOutput(*response, "prod_i64")), (std::vector<int64_t>{2, -4, 9, 0, 10, -6}));
  EXPECT_EQ(Values<float>(*FindOutput(*response, "masked")), (std::vector<float>{0, 0, 0, 0.5f, 2.5f, -1}));
  const Tensor* half = FindOutput(*response, "a_fp16");
  EXPECT_EQ(half->type, DataType::kFp16);
  EXPECT_EQ(half->shape, (Shape{2, 3}));
  // IEEE half bits of 1.5, -2.25, 3, 0.5, 2.5, -1.
  EXPECT_EQ(Values<uint16_t>(*half), (std::vector<uint16_t>{0x3e00, 0xc080, 0x4200, 0x3800, 0x4100, 0xbc00}));
  EXPECT_EQ(Values<double>(*FindOutput(*response, "a_f64")), (std::vector<double>{1.5, -2.25, 3, 0.5, 2.5, -1}));
}

TEST_P(ClientTest, InfersStringLengthWithBytesTensors) {
  InferRequest request;
  request.model_name = "string_length";
  std::vector<std::string> text = {"Yes", "no", "\xc3\xa9t\xc3\xa9", "MAYBE"};
  request.inputs.push_back(MakeBytesTensor("text", {4}, text));
  auto response = client_->Infer(request);
  ASSERT_TRUE(response.ok()) << response.status();
  const Tensor* upper = FindOutput(*response, "upper");
  ASSERT_NE(upper, nullptr);
  EXPECT_EQ(upper->type, DataType::kBytes);
  auto elements = SplitBytesElements(upper->data, 4, "upper");
  ASSERT_TRUE(elements.ok()) << elements.status();
  EXPECT_EQ(*elements, (std::vector<std::string_view>{"YES", "NO", "\xc3\x89T\xc3\x89", "MAYBE"}));
  EXPECT_EQ(Values<int64_t>(*FindOutput(*response, "answer_id")), (std::vector<int64_t>{1, 0, -1, 2}));
  EXPECT_EQ(Values<uint8_t>(*FindOutput(*response, "is_yes")), (std::vector<uint8_t>{1, 0, 0, 0}));
}

TEST_P(ClientTest, InfersNoConfigModel) {
  InferRequest request;
  request.model_name = "no_config_model";
  request.inputs.push_back(Fp32("x", {2, 2}, {0, 1, -0.5f, 1000000}));
  auto response = client_->Infer(request);
  ASSERT_TRUE(response.ok()) << response.status();
  ASSERT_EQ(response->outputs.size(), 1u);
  EXPECT_EQ(response->outputs[0].name, "y");
  EXPECT_EQ(Values<float>(response->outputs[0]), (std::vector<float>{1, 3, 0, 2000001}));
}

TEST_P(ClientTest, MapsUnknownModelToNotFound) {
  InferRequest request = IrisRequest({1, 2, 3, 4});
  request.model_name = "no_such_model";
  auto response = client_->Infer(request);
  EXPECT_EQ(response.status().code(), absl::StatusCode::kNotFound) << response.status();
  EXPECT_NE(response.status().message().find("no_such_model"), absl::string_view::npos) << response.status();
  auto metadata = client_->GetModelMetadata("no_such_model");
  EXPECT_EQ(metadata.status().code(), absl::StatusCode::kNotFound) << metadata.status();
}

TEST_P(ClientTest, MapsBadShapeToInvalidArgumentNamingTheTensor) {
  InferRequest request;
  request.model_name = "iris_classifier";
  request.inputs.push_back(Fp32("input", {1, 3}, {1, 2, 3}));
  auto response = client_->Infer(request);
  EXPECT_EQ(response.status().code(), absl::StatusCode::kInvalidArgument) << response.status();
  EXPECT_NE(response.status().message().find("'input'"), absl::string_view::npos) << response.status();
}

TEST_P(ClientTest, RejectsAMalformedTensorBeforeSending) {
  InferRequest request;
  request.model_name = "iris_classifier";
  request.inputs.push_back(Fp32("input", {1, 4}, {1, 2, 3}));  // 3 values for [1,4].
  auto response = client_->Infer(request);
  EXPECT_EQ(response.status().code(), absl::StatusCode::kInvalidArgument) << response.status();
  EXPECT_NE(response.status().message().find("input"), absl::string_view::npos) << response.status();
}

TEST_P(ClientTest, AsyncInferDeliversEveryResponseOnce) {
  // Row i is setosa (label 0) for even i, virginica (label 2) for odd i.
  constexpr int kCalls = 24;
  absl::BlockingCounter pending(kCalls + 1);
  absl::Mutex mu;
  std::vector<int> labels(kCalls, -1);
  std::vector<int> calls(kCalls, 0);
  for (int i = 0; i < kCalls; ++i) {
    InferRequest request = i % 2 == 0 ? IrisRequest({5.1f, 3.5f, 1.4f, 0.2f}) : IrisRequest({6.3f, 3.3f, 6.0f, 2.5f});
    request.outputs.push_back({.name = "label"});
    client_->InferAsync(request, [&, i](absl::StatusOr<InferResponse> response) {
      absl::MutexLock lock(&mu);
      ++calls[i];
      if (response.ok() && response->outputs.size() == 1) labels[i] = static_cast<int>(Values<int64_t>(response->outputs[0])[0]);
      pending.DecrementCount();
    });
  }
  absl::Status async_error;
  InferRequest unknown = IrisRequest({1, 2, 3, 4});
  unknown.model_name = "no_such_model";
  client_->InferAsync(unknown, [&](absl::StatusOr<InferResponse> response) {
    absl::MutexLock lock(&mu);
    async_error = response.status();
    pending.DecrementCount();
  });
  pending.Wait();
  absl::MutexLock lock(&mu);
  for (int i = 0; i < kCalls; ++i) {
    EXPECT_EQ(calls[i], 1) << i;
    EXPECT_EQ(labels[i], i % 2 == 0 ? 0 : 2) << i;
  }
  EXPECT_EQ(async_error.code(), absl::StatusCode::kNotFound) << async_error;
}

TEST_P(ClientTest, IsSafeToShareAcrossThreads) {
  constexpr int kThreads = 4;
  constexpr int kCallsPerThread = 10;
  std::vector<int> failures(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCallsPerThread; ++i) {
        InferRequest request;
        request.model_name = "no_config_model";
        const float x = static_cast<float>(t * 100 + i);
        request.inputs.push_back(Fp32("x", {1, 2}, {x, -x}));
        auto response = client_->Infer(request);
        if (!response.ok() || Values<float>(response->outputs[0]) != std::vector<float>{2 * x + 1, -2 * x + 1}) {
          ++failures[t];
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures, std::vector<int>(kThreads, 0));
}

TEST_P(ClientTest, ReportsAnUnreachableServerAsUnavailable) {
  // The harness's server was started with metrics disabled; port 1 is
  // privileged and nothing listens there.
  ClientOptions options;
  options.protocol = GetParam().protocol;
  options.port = 1;
  options.timeout = absl::Seconds(10);
  auto created = Client::Create(options);
  ASSERT_TRUE(created.ok());
  auto live = (*created)->ServerLive();
  EXPECT_EQ(live.status().code(), absl::StatusCode::kUnavailable) << live.status();
}

INSTANTIATE_TEST_SUITE_P(Transports, ClientTest,
                         ::testing::Values(Transport{Protocol::kHttp, true, "HttpBinary"},
                                           Transport{Protocol::kHttp, false, "HttpJson"},
                                           Transport{Protocol::kGrpc, false, "Grpc"}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(ClientOptionsTest, CreateRejectsPortZero) {
  ClientOptions options;
  options.port = 0;
  EXPECT_EQ(Client::Create(options).status().code(), absl::StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------
// The CLI binary.

struct CliResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

CliResult RunCli(const std::vector<std::string>& args) {
  TempDir dir;
  std::string command = Quote(BinaryDir() + "/tools/cli/ortserve-cli");
  for (const auto& arg : args) command += " " + Quote(arg);
  const std::string err_path = dir.path() + "/stderr";
  command += " 2>" + Quote(err_path);
  CliResult result;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) result.out.append(buffer.data(), n);
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream err(err_path);
  result.err.assign(std::istreambuf_iterator<char>(err), std::istreambuf_iterator<char>());
  return result;
}

class CliTest : public ::testing::TestWithParam<Protocol> {
 protected:
  std::vector<std::string> Args(std::vector<std::string> rest) {
    const bool http = GetParam() == Protocol::kHttp;
    std::vector<std::string> args = {
        "--url", StrCat("127.0.0.1:", http ? http_port : grpc_port), "--protocol",
        http ? "http" : "grpc"};
    args.insert(args.end(), rest.begin(), rest.end());
    return args;
  }
};

TEST_P(CliTest, HealthExitsZeroWhenReady) {
  CliResult r = RunCli(Args({"health"}));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("ready  true"), std::string::npos) << r.out;
}

TEST_P(CliTest, ModelsListsTheDemoModels) {
  CliResult r = RunCli(Args({"models"}));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("iris_classifier"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("READY"), std::string::npos) << r.out;
  CliResult json = RunCli(Args({"--format", "json", "models"}));
  EXPECT_EQ(json.exit_code, 0) << json.err;
  auto doc = Json(json.out);
  ASSERT_TRUE(doc.IsArray());
  EXPECT_GE(doc.Size(), 4u);
}

TEST_P(CliTest, MetadataPrintsTensors) {
  CliResult r = RunCli(Args({"--format", "json", "metadata", "iris_classifier"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto doc = Json(r.out);
  ASSERT_TRUE(doc.IsObject());
  EXPECT_STREQ(doc["name"].GetString(), "iris_classifier");
  EXPECT_STREQ(doc["inputs"][0]["name"].GetString(), "input");
  EXPECT_STREQ(doc["inputs"][0]["datatype"].GetString(), "FP32");
  EXPECT_EQ(doc["inputs"][0]["shape"][0].GetInt(), -1);
  EXPECT_EQ(doc["inputs"][0]["shape"][1].GetInt(), 4);
  CliResult table = RunCli(Args({"metadata", "string_length"}));
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("text"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("BYTES"), std::string::npos) << table.out;
}

TEST_P(CliTest, InferWithInlineJsonPrintsKServeJson) {
  CliResult r = RunCli(Args({"--format", "json", "infer", "iris_classifier", "--input",
                             "input=2,4:FP32:[[5.1,3.5,1.4,0.2],[6.3,3.3,6.0,2.5]]"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto doc = Json(r.out);
  ASSERT_TRUE(doc.IsObject()) << r.out;
  EXPECT_STREQ(doc["model_name"].GetString(), "iris_classifier");
  bool saw_label = false;
  for (const auto& output : doc["outputs"].GetArray()) {
    if (std::string_view(output["name"].GetString()) != "label") continue;
    saw_label = true;
    EXPECT_STREQ(output["datatype"].GetString(), "INT64");
    ASSERT_EQ(output["data"].Size(), 2u);
    EXPECT_EQ(output["data"][0].GetInt(), 0);
    EXPECT_EQ(output["data"][1].GetInt(), 2);
  }
  EXPECT_TRUE(saw_label) << r.out;
}

TEST_P(CliTest, InferReadsJsonAndRawFiles) {
  TempDir dir;
  const std::string json_path = dir.path() + "/a.json";
  std::ofstream(json_path) << "[[1.5, -2.25, 3]]";
  const std::string raw_path = dir.path() + "/b.bin";
  {
    std::ofstream raw(raw_path, std::ios::binary);
    const int32_t b[] = {1, 2, 3};
    raw.write(reinterpret_cast<const char*>(b), sizeof(b));
  }
  CliResult r = RunCli(Args({"infer", "multi_io", "--input", "a=1,3:FP32:@" + json_path, "--input",
                             "b=1,3:INT32:@" + raw_path, "--input", "flag=1,1:BOOL:[true]", "--output", "prod_i64",
                             "--output", "a_fp16"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("prod_i64  INT64     [1,3]  [2, -4, 9]"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("a_fp16    FP16      [1,3]  [1.5, -2.25, 3]"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("sum"), std::string::npos) << r.out;  // Only the requested outputs.
}

TEST_P(CliTest, InferTableShowsStringsAndTruncatesValues) {
  CliResult r = RunCli(Args({"infer", "string_length", "--input", "text=3:BYTES:[\"Yes\",\"no\",\"maybe\"]",
                             "--max-values", "2"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("[\"YES\", \"NO\", ... (3 values)]"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[1, 0, ... (3 values)]"), std::string::npos) << r.out;
}

TEST_P(CliTest, ServerErrorsExitOneWithTheMessage) {
  CliResult r = RunCli(Args({"infer", "no_such_model", "--input", "x=1:FP32:[1]"}));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("NOT_FOUND"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("no_such_model"), std::string::npos) << r.err;
  CliResult shape = RunCli(Args({"infer", "iris_classifier", "--input", "input=1,3:FP32:[1,2,3]"}));
  EXPECT_EQ(shape.exit_code, 1);
  EXPECT_NE(shape.err.find("INVALID_ARGUMENT"), std::string::npos) << shape.err;
  EXPECT_NE(shape.err.find("'input'"), std::string::npos) << shape.err;
}

TEST_P(CliTest, UsageErrorsExitTwo) {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"infer", "iris_classifier", "--input", "input=1,4:FP33:[1,2,3,4]"},    // Unknown datatype.
           {"infer", "iris_classifier", "--input", "input=1,4:FP32:[1,2,3]"},      // Count vs shape.
           {"infer", "iris_classifier", "--input", "input=1,4:FP32:@/no/such/file"},
           {"infer", "iris_classifier", "--input", "no-equals-sign"},
           {"infer", "iris_classifier"},                                            // --input is required.
           {"frobnicate"},
       }) {
    CliResult r = RunCli(Args(args));
    EXPECT_EQ(r.exit_code, 2) << args.back() << ": " << r.err;
    EXPECT_FALSE(r.err.empty()) << args.back();
  }
  EXPECT_EQ(RunCli({"--protocol", "carrier-pigeon", "health"}).exit_code, 2);
}

INSTANTIATE_TEST_SUITE_P(Protocols, CliTest, ::testing::Values(Protocol::kHttp, Protocol::kGrpc),
                         [](const auto& info) { return info.param == Protocol::kHttp ? "Http" : "Grpc"; });

}  // namespace
}  // namespace ortserve::testing
