// SPDX-License-Identifier: Apache-2.0
// The KServe v2 gRPC front end against the real `ortserve` binary serving the
// demo models (models/), through a generated C++ stub.
#include <arpa/inet.h>
#include <grpcpp/generic/generic_stub.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <thread>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "integration/grpc_test_util.h"
#include "integration/server_harness.h"
#include "frontend/http/kserve_json_codec.h"

namespace ortserve::testing {
namespace {

using inference::GRPCInferenceService;
using inference::ModelInferRequest;
using inference::ModelInferResponse;

class GrpcServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto server = ServerProcess::Start({"--model-repository", SourceDir() + "/models", "--grpc-port", "0"});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();
    ASSERT_NE(server_->grpc_port(), 0) << server_->Output();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    stub_ = GRPCInferenceService::NewStub(GrpcChannel(server_->grpc_port()));
  }

  grpc::Status Infer(const ModelInferRequest& request, ModelInferResponse* response) {
    return stub_->ModelInfer(Context().get(), request, response);
  }

  static ModelInferRequest IrisRequest(std::vector<float> rows) {
    ModelInferRequest request;
    request.set_model_name("iris_classifier");
    AddRawInput(&request, "input", "FP32", {static_cast<int64_t>(rows.size() / 4), 4}, rows);
    return request;
  }

  static ServerProcess* server_;
  std::unique_ptr<GRPCInferenceService::Stub> stub_;
};

ServerProcess* GrpcServiceTest::server_ = nullptr;

TEST_F(GrpcServiceTest, ServerLiveAndReadyAnswerTrue) {
  inference::ServerLiveResponse live;
  ASSERT_TRUE(stub_->ServerLive(Context().get(), {}, &live).ok());
  EXPECT_TRUE(live.live());
  inference::ServerReadyResponse ready;
  ASSERT_TRUE(stub_->ServerReady(Context().get(), {}, &ready).ok());
  EXPECT_TRUE(ready.ready());
}

TEST_F(GrpcServiceTest, HealthCheckReportsServing) {
  // grpc.health.v1.Health/Check with an empty HealthCheckRequest (service ""),
  // sent as raw bytes so the test needs no health.proto.
  grpc::GenericStub generic(GrpcChannel(server_->grpc_port()));
  for (const std::string& service : {std::string(), std::string("inference.GRPCInferenceService")}) {
    std::string request_bytes;
    if (!service.empty()) {
      request_bytes.push_back(0x0a);  // Field 1, length-delimited.
      request_bytes.push_back(static_cast<char>(service.size()));
      request_bytes += service;
    }
    grpc::Slice slice(request_bytes);
    grpc::ByteBuffer request(&slice, 1);
    grpc::ByteBuffer response;
    grpc::Status status;
    absl::Notification done;
    auto context = Context();
    generic.UnaryCall(context.get(), "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                      [&](grpc::Status s) {
                        status = std::move(s);
                        done.Notify();
                      });
    done.WaitForNotification();
    ASSERT_TRUE(status.ok()) << status.error_message();
    std::vector<grpc::Slice> slices;
    ASSERT_TRUE(response.Dump(&slices).ok());
    std::string bytes;
    for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
    // HealthCheckResponse{status = SERVING (1)}.
    EXPECT_EQ(bytes, std::string("\x08\x01", 2)) << "service '" << service << "'";
  }
}

TEST_F(GrpcServiceTest, ServerMetadataNamesServerAndExtensions) {
  inference::ServerMetadataResponse metadata;
  ASSERT_TRUE(stub_->ServerMetadata(Context().get(), {}, &metadata).ok());
  EXPECT_EQ(metadata.name(), "ortserve");
  EXPECT_FALSE(metadata.version().empty());
  EXPECT_NE(std::find(metadata.extensions().begin(), metadata.extensions().end(), "statistics"),
            metadata.extensions().end());
}

TEST_F(GrpcServiceTest, ModelReadyIsTrueForLoadedModelAndFalseForUnknown) {
  inference::ModelReadyRequest request;
  inference::ModelReadyResponse response;
  request.set_name("iris_classifier");
  ASSERT_TRUE(stub_->ModelReady(Context().get(), request, &response).ok());
  EXPECT_TRUE(response.ready());
  request.set_name("no_such_model");
  ASSERT_TRUE(stub_->ModelReady(Context().get(), request, &response).ok());
  EXPECT_FALSE(response.ready());
}

TEST_F(GrpcServiceTest, ModelMetadataShowsServedShapes) {
  inference::ModelMetadataRequest request;
  request.set_name("iris_classifier");
  inference::ModelMetadataResponse metadata;
  ASSERT_TRUE(stub_->ModelMetadata(Context().get(), request, &metadata).ok());
  EXPECT_EQ(metadata.name(), "iris_classifier");
  EXPECT_EQ(metadata.platform(), "onnxruntime_onnx");
  ASSERT_EQ(metadata.versions_size(), 1);
  EXPECT_EQ(metadata.versions(0), "1");
  ASSERT_EQ(metadata.inputs_size(), 1);
  EXPECT_EQ(metadata.inputs(0).name(), "input");
  EXPECT_EQ(metadata.inputs(0).datatype(), "FP32");
  EXPECT_EQ(std::vector<int64_t>(metadata.inputs(0).shape().begin(), metadata.inputs(0).shape().end()),
            (std::vector<int64_t>{-1, 4}));
  ASSERT_EQ(metadata.outputs_size(), 2);
}

TEST_F(GrpcServiceTest, ModelMetadataOfUnknownModelIsNotFound) {
  inference::ModelMetadataRequest request;
  request.set_name("no_such_model");
  inference::ModelMetadataResponse metadata;
  grpc::Status status = stub_->ModelMetadata(Context().get(), request, &metadata);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(status.error_message().find("no_such_model"), std::string::npos) << status.error_message();
}

TEST_F(GrpcServiceTest, ModelConfigReturnsCompletedConfig) {
  inference::ModelConfigRequest request;
  request.set_name("iris_classifier");
  inference::ModelConfigResponse response;
  ASSERT_TRUE(stub_->ModelConfig(Context().get(), request, &response).ok());
  const auto& config = response.config();
  EXPECT_EQ(config.name(), "iris_classifier");
  EXPECT_EQ(config.max_batch_size(), 64);
  ASSERT_EQ(config.input_size(), 1);
  EXPECT_EQ(config.input(0).data_type(), ortserve::config::TYPE_FP32);
  ASSERT_EQ(config.input(0).dims_size(), 1);
  EXPECT_EQ(config.input(0).dims(0), 4);
  EXPECT_EQ(config.dynamic_batching().max_queue_delay_microseconds(), 500u);

  // A model without config.pbtxt gets the auto-completed one.
  request.set_name("no_config_model");
  ASSERT_TRUE(stub_->ModelConfig(Context().get(), request, &response).ok());
  EXPECT_EQ(response.config().name(), "no_config_model");
  EXPECT_GT(response.config().input_size(), 0);

  request.set_name("no_such_model");
  EXPECT_EQ(stub_->ModelConfig(Context().get(), request, &response).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(GrpcServiceTest, RepositoryIndexListsModelsAndFiltersReady) {
  inference::RepositoryIndexRequest request;
  inference::RepositoryIndexResponse response;
  ASSERT_TRUE(stub_->RepositoryIndex(Context().get(), request, &response).ok());
  bool found = false;
  for (const auto& model : response.models()) {
    if (model.name() == "iris_classifier") {
      found = true;
      EXPECT_EQ(model.version(), "1");
      EXPECT_EQ(model.state(), "READY");
    }
  }
  EXPECT_TRUE(found);
  request.set_ready(true);
  ASSERT_TRUE(stub_->RepositoryIndex(Context().get(), request, &response).ok());
  for (const auto& model : response.models()) EXPECT_EQ(model.state(), "READY") << model.name();
}

TEST_F(GrpcServiceTest, RepositoryModelLoadIsRefusedOutsideExplicitMode) {
  // This server runs in the default control mode (none); explicit load and
  // unload are refused with a message naming the mode (lifecycle_test covers
  // explicit mode over REST, which shares the facade).
  inference::RepositoryModelLoadRequest request;
  request.set_model_name("iris_classifier");
  inference::RepositoryModelLoadResponse response;
  grpc::Status status = stub_->RepositoryModelLoad(Context().get(), request, &response);
  EXPECT_NE(status.error_code(), grpc::StatusCode::OK);
  EXPECT_NE(status.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_NE(status.error_message().find("explicit"), std::string::npos) << status.error_message();
  inference::RepositoryModelUnloadRequest unload;
  unload.set_model_name("iris_classifier");
  inference::RepositoryModelUnloadResponse unloaded;
  EXPECT_NE(stub_->RepositoryModelUnload(Context().get(), unload, &unloaded).error_code(), grpc::StatusCode::OK);
}

TEST_F(GrpcServiceTest, ModelStatisticsCountsInferences) {
  ModelInferResponse infer;
  ASSERT_TRUE(Infer(IrisRequest({5.1f, 3.5f, 1.4f, 0.2f, 6.3f, 3.3f, 6.0f, 2.5f}), &infer).ok());
  inference::ModelStatisticsRequest request;
  request.set_name("iris_classifier");
  inference::ModelStatisticsResponse response;
  ASSERT_TRUE(stub_->ModelStatistics(Context().get(), request, &response).ok());
  ASSERT_EQ(response.model_stats_size(), 1);
  const auto& stats = response.model_stats(0);
  EXPECT_EQ(stats.name(), "iris_classifier");
  EXPECT_EQ(stats.version(), "1");
  EXPECT_GE(stats.inference_stats().success().count(), 1u);
  EXPECT_GT(stats.inference_stats().success().ns(), 0u);
  EXPECT_GE(stats.inference_count(), 2u);
  EXPECT_GE(stats.execution_count(), 1u);
  EXPECT_GT(stats.last_inference(), 0u);
  // Per-batch-size rows appear once the scheduler records them.
  for (const auto& batch : stats.batch_stats()) EXPECT_GT(batch.batch_size(), 0u);

  // Every model when no name is given.
  ASSERT_TRUE(stub_->ModelStatistics(Context().get(), {}, &response).ok());
  EXPECT_GE(response.model_stats_size(), 3);

  request.set_name("no_such_model");
  EXPECT_EQ(stub_->ModelStatistics(Context().get(), request, &response).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(GrpcServiceTest, ModelInferWithRawInputsReturnsRawOutputs) {
  ModelInferRequest request = IrisRequest({5.1f, 3.5f, 1.4f, 0.2f, 6.3f, 3.3f, 6.0f, 2.5f});
  request.set_id("req-7");
  ModelInferResponse response;
  grpc::Status status = Infer(request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.model_name(), "iris_classifier");
  EXPECT_EQ(response.model_version(), "1");
  EXPECT_EQ(response.id(), "req-7");
  ASSERT_EQ(response.outputs_size(), 2);
  ASSERT_EQ(response.raw_output_contents_size(), 2);
  const auto* label = FindOutput(response, "label");
  ASSERT_NE(label, nullptr);
  EXPECT_EQ(label->datatype(), "INT64");
  EXPECT_EQ(std::vector<int64_t>(label->shape().begin(), label->shape().end()), (std::vector<int64_t>{2}));
  EXPECT_EQ(RawAs<int64_t>(RawOutput(response, "label")), (std::vector<int64_t>{0, 2}));
  auto probabilities = RawAs<float>(RawOutput(response, "probabilities"));
  ASSERT_EQ(probabilities.size(), 6u);
  EXPECT_NEAR(probabilities[0] + probabilities[1] + probabilities[2], 1.0f, 1e-5);
  EXPECT_GT(probabilities[0], 0.99f);
  EXPECT_GT(probabilities[5], 0.99f);
}

TEST_F(GrpcServiceTest, ModelInferWithContentsMatchesRaw) {
  // multi_io: every numeric contents field kind in one request.
  ModelInferRequest contents;
  contents.set_model_name("multi_io");
  auto* a = contents.add_inputs();
  a->set_name("a");
  a->set_datatype("FP32");
  a->add_shape(2);
  a->add_shape(3);
  for (float v : {1.5f, -2.0f, 3.25f, 0.0f, 10.0f, -7.5f}) a->mutable_contents()->add_fp32_contents(v);
  auto* b = contents.add_inputs();
  b->set_name("b");
  b->set_datatype("INT32");
  b->add_shape(2);
  b->add_shape(3);
  for (int v : {1, 2, 3, -4, 5, 6}) b->mutable_contents()->add_int_contents(v);
  auto* flag = contents.add_inputs();
  flag->set_name("flag");
  flag->set_datatype("BOOL");
  flag->add_shape(2);
  flag->add_shape(1);
  flag->mutable_contents()->add_bool_contents(true);
  flag->mutable_contents()->add_bool_contents(false);

  ModelInferRequest raw;
  raw.set_model_name("multi_io");
  AddRawInput(&raw, "a", "FP32", {2, 3}, std::vector<float>{1.5f, -2.0f, 3.25f, 0.0f, 10.0f, -7.5f});
  AddRawInput(&raw, "b", "INT32", {2, 3}, std::vector<int32_t>{1, 2, 3, -4, 5, 6});
  AddRawInput(&raw, "flag", "BOOL", {2, 1}, std::vector<uint8_t>{1, 0});

  ModelInferResponse from_contents, from_raw;
  grpc::Status status = Infer(contents, &from_contents);
  ASSERT_TRUE(status.ok()) << status.error_message();
  status = Infer(raw, &from_raw);
  ASSERT_TRUE(status.ok()) << status.error_message();

  EXPECT_EQ(RawAs<float>(RawOutput(from_contents, "sum")),
            (std::vector<float>{2.5f, 0.0f, 6.25f, -4.0f, 15.0f, -1.5f}));
  EXPECT_EQ(RawAs<float>(RawOutput(from_contents, "masked")),
            (std::vector<float>{1.5f, -2.0f, 3.25f, 0.0f, 0.0f, 0.0f}));
  EXPECT_EQ(RawAs<double>(RawOutput(from_contents, "a_f64")),
            (std::vector<double>{1.5, -2.0, 3.25, 0.0, 10.0, -7.5}));
  auto half = RawAs<uint16_t>(RawOutput(from_contents, "a_fp16"));
  ASSERT_EQ(half.size(), 6u);
  EXPECT_EQ(frontend::HalfToFloat(half[2]), 3.25f);
  EXPECT_EQ(FindOutput(from_contents, "a_fp16")->datatype(), "FP16");
  ASSERT_EQ(from_contents.outputs_size(), from_raw.outputs_size());
  for (int i = 0; i < from_raw.outputs_size(); ++i) {
    EXPECT_EQ(from_contents.outputs(i).name(), from_raw.outputs(i).name());
    EXPECT_EQ(from_contents.raw_output_contents(i), from_raw.raw_output_contents(i))
        << from_raw.outputs(i).name();
  }
}

TEST_F(GrpcServiceTest, TextPipelineModelClassifiesRawText) {
  // The demo SAE classifier takes raw text over gRPC like over REST: the server
  // tokenizes, batches and post-processes. Expected probabilities come from
  // models/sae_classifier/metrics.json (the exported model run in torch).
  const std::vector<std::string> text = {"I can't breathe and my chest hurts",
                                         "no chest pain, no shortness of breath, just a mild headache",
                                         "I passed out in the bathroom this morning"};
  ModelInferRequest request;
  request.set_model_name("sae_classifier");
  auto* input = request.add_inputs();
  input->set_name("text");
  input->set_datatype("BYTES");
  input->add_shape(static_cast<int64_t>(text.size()));
  request.add_raw_input_contents(RawBytes(text));
  ModelInferResponse response;
  grpc::Status status = Infer(request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(SplitRawBytes(RawOutput(response, "label")),
            (std::vector<std::string>{"serious", "not_serious", "serious"}));
  auto positive = RawAs<float>(RawOutput(response, "positive_probability"));
  ASSERT_EQ(positive.size(), 3u);
  std::ifstream metrics_file(SourceDir() + "/models/sae_classifier/metrics.json");
  std::stringstream metrics_text;
  metrics_text << metrics_file.rdbuf();
  const auto metrics = Json(metrics_text.str());
  std::map<std::string, double> expected;
  for (const auto& e : metrics["examples"].GetArray()) expected[e["text"].GetString()] = e["p_serious"].GetDouble();
  for (size_t i = 0; i < text.size(); ++i) {
    ASSERT_EQ(expected.count(text[i]), 1u) << text[i];
    EXPECT_NEAR(positive[i], expected[text[i]], 1e-3) << text[i];
  }
  EXPECT_EQ(RawOutput(response, "is_positive"), std::string("\x01\x00\x01", 3));
}

TEST_F(GrpcServiceTest, BytesTensorsTravelAsContentsAndRaw) {
  const std::vector<std::string> text = {"yes", "No", "hello w\xc3\xb6rld", ""};
  ModelInferRequest contents;
  contents.set_model_name("string_length");
  auto* input = contents.add_inputs();
  input->set_name("text");
  input->set_datatype("BYTES");
  input->add_shape(static_cast<int64_t>(text.size()));
  for (const auto& t : text) input->mutable_contents()->add_bytes_contents(t);

  ModelInferRequest raw;
  raw.set_model_name("string_length");
  auto* raw_input = raw.add_inputs();
  raw_input->set_name("text");
  raw_input->set_datatype("BYTES");
  raw_input->add_shape(static_cast<int64_t>(text.size()));
  raw.add_raw_input_contents(RawBytes(text));

  for (const auto* request : {&contents, &raw}) {
    ModelInferResponse response;
    grpc::Status status = Infer(*request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    const auto* upper = FindOutput(response, "upper");
    ASSERT_NE(upper, nullptr);
    EXPECT_EQ(upper->datatype(), "BYTES");
    auto words = SplitRawBytes(RawOutput(response, "upper"));
    ASSERT_EQ(words.size(), 4u);
    EXPECT_EQ(words[0], "YES");
    EXPECT_EQ(words[1], "NO");
    EXPECT_EQ(words[3], "");
    EXPECT_EQ(RawAs<int64_t>(RawOutput(response, "answer_id")), (std::vector<int64_t>{1, 0, -1, -1}));
    EXPECT_EQ(RawOutput(response, "is_yes"), std::string("\x01\x00\x00\x00", 4));
  }
}

TEST_F(GrpcServiceTest, RequestedOutputsAndClassificationAreHonoured) {
  ModelInferRequest request = IrisRequest({6.4f, 3.2f, 4.5f, 1.5f});
  auto* output = request.add_outputs();
  output->set_name("probabilities");
  (*output->mutable_parameters())["classification"].set_int64_param(1);
  ModelInferResponse response;
  grpc::Status status = Infer(request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(response.outputs_size(), 1);
  EXPECT_EQ(response.outputs(0).name(), "probabilities");
  EXPECT_EQ(response.outputs(0).datatype(), "BYTES");
  EXPECT_EQ(std::vector<int64_t>(response.outputs(0).shape().begin(), response.outputs(0).shape().end()),
            (std::vector<int64_t>{1, 1}));
  auto classes = SplitRawBytes(response.raw_output_contents(0));
  ASSERT_EQ(classes.size(), 1u);
  EXPECT_NE(classes[0].find(":1:versicolor"), std::string::npos) << classes[0];
}

// ModelInfer's messages are recycled (frontend/grpc/infer_messages.h): a call
// after one with an id, a classification output and two rows sees none of it.
TEST_F(GrpcServiceTest, ACallAnsweredAfterAnotherCarriesNothingOfIt) {
  for (int round = 0; round < 3; ++round) {
    ModelInferRequest first = IrisRequest({6.4f, 3.2f, 4.5f, 1.5f, 5.1f, 3.5f, 1.4f, 0.2f});
    first.set_id("first-call");
    auto* output = first.add_outputs();
    output->set_name("probabilities");
    (*output->mutable_parameters())["classification"].set_int64_param(2);
    ModelInferResponse answer;
    grpc::Status status = Infer(first, &answer);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_EQ(answer.outputs_size(), 1);

    ModelInferResponse second;
    status = Infer(IrisRequest({5.1f, 3.5f, 1.4f, 0.2f}), &second);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(second.id(), "");
    EXPECT_TRUE(second.parameters().empty());
    ASSERT_EQ(second.outputs_size(), 2);
    ASSERT_EQ(second.raw_output_contents_size(), 2);
    EXPECT_EQ(RawAs<int64_t>(RawOutput(second, "label")), (std::vector<int64_t>{0}));
    const auto* probabilities = FindOutput(second, "probabilities");
    ASSERT_NE(probabilities, nullptr);
    EXPECT_EQ(probabilities->datatype(), "FP32");
    EXPECT_TRUE(probabilities->parameters().empty());
    EXPECT_EQ(RawAs<float>(RawOutput(second, "probabilities")).size(), 3u);
  }
}

TEST_F(GrpcServiceTest, UnknownModelIsNotFound) {
  ModelInferRequest request = IrisRequest({1, 2, 3, 4});
  request.set_model_name("no_such_model");
  ModelInferResponse response;
  grpc::Status status = Infer(request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(status.error_message().find("no_such_model"), std::string::npos) << status.error_message();
}

// Each bad request must fail with INVALID_ARGUMENT and a message naming the
// tensor or field at fault.
struct BadRequestCase {
  std::string name;
  std::function<void(ModelInferRequest*)> spoil;
  std::string must_mention;
};

class GrpcBadRequestTest : public GrpcServiceTest, public ::testing::WithParamInterface<BadRequestCase> {};

TEST_P(GrpcBadRequestTest, IsInvalidArgumentNamingTheCulprit) {
  ModelInferRequest request = IrisRequest({5.1f, 3.5f, 1.4f, 0.2f});
  GetParam().spoil(&request);
  ModelInferResponse response;
  grpc::Status status = Infer(request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_NE(status.error_message().find(GetParam().must_mention), std::string::npos) << status.error_message();
}

INSTANTIATE_TEST_SUITE_P(
    Cases, GrpcBadRequestTest,
    ::testing::Values(
        BadRequestCase{"WrongShape",
                       [](ModelInferRequest* r) {
                         r->mutable_inputs(0)->set_shape(1, 5);
                         r->set_raw_input_contents(0, std::string(20, '\0'));
                       },
                       "input 'input' has shape [1,5]"},
        BadRequestCase{"WrongDatatype",
                       [](ModelInferRequest* r) {
                         r->mutable_inputs(0)->set_datatype("FP64");
                         r->set_raw_input_contents(0, std::string(32, '\0'));
                       },
                       "input 'input' has datatype FP64"},
        BadRequestCase{"UnknownDatatype", [](ModelInferRequest* r) { r->mutable_inputs(0)->set_datatype("FP8"); },
                       "unknown datatype 'FP8'"},
        BadRequestCase{"RawSizeDiffersFromShape",
                       [](ModelInferRequest* r) { r->set_raw_input_contents(0, std::string(12, '\0')); },
                       "'input'"},
        BadRequestCase{"UnknownInput", [](ModelInferRequest* r) { r->mutable_inputs(0)->set_name("bogus"); },
                       "'bogus'"},
        BadRequestCase{"ContentsAndRawTogether",
                       [](ModelInferRequest* r) {
                         for (int i = 0; i < 4; ++i) r->mutable_inputs(0)->mutable_contents()->add_fp32_contents(1);
                       },
                       "input 'input' sets contents while the request uses raw_input_contents"},
        BadRequestCase{"ContentsCountDiffersFromShape",
                       [](ModelInferRequest* r) {
                         r->clear_raw_input_contents();
                         for (int i = 0; i < 3; ++i) r->mutable_inputs(0)->mutable_contents()->add_fp32_contents(1);
                       },
                       "needs 4 values in contents.fp32_contents, got 3"},
        BadRequestCase{"ContentsInWrongField",
                       [](ModelInferRequest* r) {
                         r->clear_raw_input_contents();
                         for (int i = 0; i < 4; ++i) r->mutable_inputs(0)->mutable_contents()->add_int_contents(1);
                       },
                       "sets contents.int_contents"},
        BadRequestCase{"NoData", [](ModelInferRequest* r) { r->clear_raw_input_contents(); },
                       "input 'input' has no data"},
        BadRequestCase{"RawCountDiffersFromInputs",
                       [](ModelInferRequest* r) { r->add_raw_input_contents("extra"); },
                       "raw_input_contents has 2 entries"},
        BadRequestCase{"UnknownRequestedOutput",
                       [](ModelInferRequest* r) { r->add_outputs()->set_name("nope"); }, "'nope'"},
        BadRequestCase{"BadPriorityParameter",
                       [](ModelInferRequest* r) { (*r->mutable_parameters())["priority"].set_string_param("x"); },
                       "parameter 'priority'"},
        BadRequestCase{"UnsetParameterValue",
                       [](ModelInferRequest* r) { (*r->mutable_parameters())["empty"]; }, "parameter 'empty'"},
        BadRequestCase{"BatchAboveMaximum",
                       [](ModelInferRequest* r) {
                         r->mutable_inputs(0)->set_shape(0, 65);
                         r->set_raw_input_contents(0, std::string(65 * 16, '\0'));
                       },
                       "batch size 65"}),
    [](const ::testing::TestParamInfo<BadRequestCase>& info) { return info.param.name; });

TEST_F(GrpcServiceTest, Fp16ContentsAreRejectedAsRawOnly) {
  ModelInferRequest request;
  request.set_model_name("multi_io");
  auto* a = request.add_inputs();
  a->set_name("a");
  a->set_datatype("FP16");
  a->add_shape(1);
  a->add_shape(3);
  for (int i = 0; i < 3; ++i) a->mutable_contents()->add_fp32_contents(1);
  ModelInferResponse response;
  grpc::Status status = Infer(request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("raw_input_contents"), std::string::npos) << status.error_message();
}

TEST_F(GrpcServiceTest, ExpiredDeadlineIsDeadlineExceededAndServerGoesOn) {
  ModelInferResponse response;
  auto context = Context(std::chrono::milliseconds(0));
  grpc::Status status = stub_->ModelInfer(context.get(), IrisRequest({1, 2, 3, 4}), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  // A request whose server-side "timeout" parameter is 1 µs cannot be served
  // in time either; the server says so instead of running it.
  ModelInferRequest request = IrisRequest({1, 2, 3, 4});
  (*request.mutable_parameters())["timeout"].set_int64_param(1);
  status = Infer(request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << status.error_message();
  status = Infer(IrisRequest({1, 2, 3, 4}), &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
}

TEST_F(GrpcServiceTest, StreamAnswersEachRequestInOrderAndSurvivesErrors) {
  auto context = Context();
  auto stream = stub_->ModelStreamInfer(context.get());
  std::vector<ModelInferRequest> requests;
  for (int i = 0; i < 6; ++i) {
    ModelInferRequest request = IrisRequest({5.1f, 3.5f, 1.4f, 0.2f});
    if (i == 1) request.set_model_name("no_such_model");
    if (i == 3) request.mutable_inputs(0)->set_datatype("INT32");
    if (i == 4) request.clear_raw_input_contents();
    request.set_id("s" + std::to_string(i));
    requests.push_back(request);
  }
  // Interleave: write all, then read all (the server pipelines them).
  for (const auto& request : requests) ASSERT_TRUE(stream->Write(request));
  ASSERT_TRUE(stream->WritesDone());
  std::vector<inference::ModelStreamInferResponse> responses;
  inference::ModelStreamInferResponse response;
  while (stream->Read(&response)) responses.push_back(response);
  grpc::Status status = stream->Finish();
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(responses.size(), 6u);
  for (int i = 0; i < 6; ++i) {
    const auto& r = responses[i];
    EXPECT_EQ(r.infer_response().id(), "s" + std::to_string(i));
    const bool bad = i == 1 || i == 3 || i == 4;
    if (bad) {
      EXPECT_FALSE(r.error_message().empty()) << i;
    } else {
      EXPECT_TRUE(r.error_message().empty()) << r.error_message();
      EXPECT_EQ(RawAs<int64_t>(RawOutput(r.infer_response(), "label")), (std::vector<int64_t>{0}));
    }
  }
  EXPECT_NE(responses[1].error_message().find("no_such_model"), std::string::npos);
  EXPECT_NE(responses[3].error_message().find("input 'input'"), std::string::npos);
}

TEST_F(GrpcServiceTest, StreamCancelledByClientEndsCleanly) {
  auto context = Context();
  auto stream = stub_->ModelStreamInfer(context.get());
  ASSERT_TRUE(stream->Write(IrisRequest({5.1f, 3.5f, 1.4f, 0.2f})));
  inference::ModelStreamInferResponse response;
  ASSERT_TRUE(stream->Read(&response));
  context->TryCancel();
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
  ModelInferResponse after;
  EXPECT_TRUE(Infer(IrisRequest({1, 2, 3, 4}), &after).ok());
}

TEST_F(GrpcServiceTest, ConcurrentStreamsAndCallsAllSucceed) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 25;
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto stub = GRPCInferenceService::NewStub(GrpcChannel(server_->grpc_port()));
      auto context = Context();
      auto stream = stub->ModelStreamInfer(context.get());
      for (int i = 0; i < kPerThread; ++i) {
        ModelInferRequest request = IrisRequest({6.3f, 3.3f, 6.0f, 2.5f});
        request.set_id(std::to_string(t * 1000 + i));
        if (!stream->Write(request)) return;
        ModelInferResponse unary;
        if (stub->ModelInfer(Context().get(), request, &unary).ok() &&
            RawAs<int64_t>(RawOutput(unary, "label")) == std::vector<int64_t>{2}) {
          ++ok;
        }
      }
      stream->WritesDone();
      inference::ModelStreamInferResponse response;
      int i = 0;
      while (stream->Read(&response)) {
        if (response.error_message().empty() && response.infer_response().id() == std::to_string(t * 1000 + i)) ++ok;
        ++i;
      }
      stream->Finish();
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(ok.load(), 2 * kThreads * kPerThread);
}

// Routing reads gRPC metadata as HTTP reads headers: x-model-version wins
// over the split, and a sticky metadata key keeps a caller on one version.
TEST(GrpcRoutingTest, MetadataOverridesAndStickyKeysRouteVersions) {
  TempDir repo;
  ASSERT_TRUE(WriteAddModels({{repo.path() + "/ab/1/model.onnx", 1}, {repo.path() + "/ab/2/model.onnx", 2}}).ok());
  std::ofstream(repo.path() + "/ab/config.pbtxt")
      << "max_batch_size: 8\nversion_policy { all {} }\n"
         "routing { split { version: 1 weight: 50 } split { version: 2 weight: 50 } sticky_header: \"x-user\" }\n";
  auto server = ServerProcess::Start({"--model-repository", repo.path(), "--grpc-port", "0"});
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = GRPCInferenceService::NewStub(GrpcChannel((*server)->grpc_port()));
  auto infer = [&](const std::map<std::string, std::string>& metadata) {
    ModelInferRequest request;
    request.set_model_name("ab");
    AddRawInput(&request, "x", "FP32", {1, 2}, std::vector<float>{1, 2});
    auto context = Context();
    for (const auto& [key, value] : metadata) context->AddMetadata(key, value);
    ModelInferResponse response;
    grpc::Status status = stub->ModelInfer(context.get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.model_version();
  };
  for (int i = 0; i < 10; ++i) EXPECT_EQ(infer({{"x-model-version", "2"}}), "2");
  std::set<std::string> seen;
  for (int user = 0; user < 16; ++user) {
    const std::string first = infer({{"x-user", "user-" + std::to_string(user)}});
    for (int i = 0; i < 3; ++i) EXPECT_EQ(infer({{"x-user", "user-" + std::to_string(user)}}), first);
    seen.insert(first);
  }
  EXPECT_EQ(seen.size(), 2u);  // 16 users over a 50/50 split reach both versions.
}

TEST(GrpcLimitsTest, OversizedMessageIsResourceExhausted) {
  auto server = ServerProcess::Start(
      {"--model-repository", SourceDir() + "/models", "--grpc-port", "0", "--grpc-max-message-size", "4096"});
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = GRPCInferenceService::NewStub(GrpcChannel((*server)->grpc_port()));
  ModelInferRequest request;
  request.set_model_name("iris_classifier");
  AddRawInput(&request, "input", "FP32", {64, 4}, std::vector<float>(256, 1.0f));  // ~1 KiB: fits.
  ModelInferResponse response;
  grpc::Status status = stub->ModelInfer(Context().get(), request, &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  request.set_id(std::string(8192, 'x'));  // Over the 4 KiB limit.
  status = stub->ModelInfer(Context().get(), request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
}

TEST(GrpcLimitsTest, GrpcPortMinusOneDisablesGrpc) {
  auto off = ServerProcess::Start({"--model-repository", SourceDir() + "/models", "--grpc-port", "-1"});
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_EQ((*off)->grpc_port(), 0);
  EXPECT_EQ((*off)->Output().find("gRPC listening"), std::string::npos);
}

TEST(GrpcLimitsTest, TakenPortFailsStartup) {
  // Hold a port with a plain listening socket; ortserve must refuse to share it.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  socklen_t length = sizeof(address);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length), 0);
  const int port = ntohs(address.sin_port);
  auto server = ServerProcess::Start(
      {"--model-repository", SourceDir() + "/models", "--grpc-port", std::to_string(port)});
  close(fd);
  ASSERT_FALSE(server.ok());
  EXPECT_NE(std::string(server.status().message()).find("cannot listen for gRPC"), std::string::npos)
      << server.status();
}

}  // namespace
}  // namespace ortserve::testing
