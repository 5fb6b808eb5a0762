// SPDX-License-Identifier: Apache-2.0
// REST and gRPC answer the same request with identical tensors: for every demo
// model, inputs are generated from the model's metadata, sent as JSON over
// REST (outputs asked back in binary) and as raw tensors over gRPC, and the
// outputs' names, datatypes, shapes and bytes are compared.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <memory>
#include <string>
#include <vector>

#include "core/strings.h"
#include "integration/grpc_test_util.h"
#include "integration/server_harness.h"

namespace ortserve::testing {
namespace {

using inference::GRPCInferenceService;

struct Output {
  std::string name;
  std::string datatype;
  std::vector<int64_t> shape;
  std::string bytes;
};

// One input's values, in both encodings.
struct Generated {
  std::string json_data;  // A JSON array.
  std::string raw;        // Little-endian bytes (BYTES: the length-prefixed layout).
};

template <typename T>
void Append(std::string* raw, T value) {
  raw->append(reinterpret_cast<const char*>(&value), sizeof(T));
}

// Deterministic values for `count` elements of `datatype`; false when the
// datatype cannot be sent as JSON.
bool Generate(const std::string& datatype, int64_t count, int seed, Generated* out) {
  static const std::vector<std::string> kWords = {"yes", "No", "maybe", "hello", "", "Grüße"};
  std::vector<std::string> items;
  for (int64_t i = 0; i < count; ++i) {
    const int64_t k = i + seed;
    if (datatype == "FP32") {
      const float v = static_cast<float>(k % 7) * 0.75f - 2.0f;
      Append(&out->raw, v);
      items.push_back(StrCat(v));
    } else if (datatype == "FP64") {
      const double v = static_cast<double>(k % 5) * 1.25 - 1.0;
      Append(&out->raw, v);
      items.push_back(StrCat(v));
    } else if (datatype == "INT32") {
      const auto v = static_cast<int32_t>(k % 9 - 4);
      Append(&out->raw, v);
      items.push_back(StrCat(v));
    } else if (datatype == "INT64") {
      const auto v = static_cast<int64_t>(k % 11 - 5);
      Append(&out->raw, v);
      items.push_back(StrCat(v));
    } else if (datatype == "BOOL") {
      const bool v = k % 2 == 0;
      Append(&out->raw, static_cast<uint8_t>(v));
      items.push_back(v ? "true" : "false");
    } else if (datatype == "BYTES") {
      const std::string& w = kWords[static_cast<size_t>(k) % kWords.size()];
      out->raw += RawBytes({w});
      items.push_back(StrCat("\"", w, "\""));
    } else {
      return false;
    }
  }
  out->json_data = StrCat("[", StrJoin(items, ","), "]");
  return true;
}

class GrpcRestParityTest : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() {
    auto server = ServerProcess::Start({"--model-repository", SourceDir() + "/models", "--grpc-port", "0"});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static ServerProcess* server_;
};

ServerProcess* GrpcRestParityTest::server_ = nullptr;

// Parses a binary-extension REST response into its outputs.
std::vector<Output> ParseRest(const HttpResponse& response) {
  std::vector<Output> outputs;
  const std::string length_header = response.Header("inference-header-content-length");
  EXPECT_FALSE(length_header.empty()) << response.body;
  const size_t json_length = length_header.empty() ? response.body.size() : std::stoul(length_header);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  EXPECT_EQ(parser.parse(response.body.data(), json_length).get(doc), simdjson::SUCCESS);
  size_t at = json_length;
  for (simdjson::dom::element o : doc["outputs"].get_array()) {
    Output out;
    out.name = std::string(std::string_view(o["name"].get_string()));
    out.datatype = std::string(std::string_view(o["datatype"].get_string()));
    for (simdjson::dom::element d : o["shape"].get_array()) out.shape.push_back(int64_t(d));
    const auto size = static_cast<size_t>(uint64_t(o["parameters"]["binary_data_size"]));
    out.bytes = response.body.substr(at, size);
    at += size;
    outputs.push_back(std::move(out));
  }
  EXPECT_EQ(at, response.body.size());
  return outputs;
}

TEST_P(GrpcRestParityTest, RestAndGrpcReturnIdenticalTensors) {
  const std::string model = GetParam();
  auto stub = GRPCInferenceService::NewStub(GrpcChannel(server_->grpc_port()));
  inference::ModelMetadataRequest metadata_request;
  metadata_request.set_name(model);
  inference::ModelMetadataResponse metadata;
  grpc::Status status = stub->ModelMetadata(Context().get(), metadata_request, &metadata);
  ASSERT_TRUE(status.ok()) << status.error_message();

  inference::ModelInferRequest grpc_request;
  grpc_request.set_model_name(model);
  std::vector<std::string> json_inputs;
  int seed = 0;
  for (const auto& input : metadata.inputs()) {
    std::vector<int64_t> shape;
    int64_t count = 1;
    for (int64_t d : input.shape()) {
      shape.push_back(d < 0 ? 2 : d);  // Variable dimensions (batch included) get 2.
      count *= shape.back();
    }
    Generated values;
    ASSERT_TRUE(Generate(input.datatype(), count, seed++, &values)) << input.datatype();
    auto* wire = grpc_request.add_inputs();
    wire->set_name(input.name());
    wire->set_datatype(input.datatype());
    for (int64_t d : shape) wire->add_shape(d);
    grpc_request.add_raw_input_contents(values.raw);
    json_inputs.push_back(StrCat("{\"name\":\"", input.name(), "\",\"datatype\":\"", input.datatype(),
                                 "\",\"shape\":[", StrJoin(shape, ","), "],\"data\":", values.json_data, "}"));
  }
  const std::string body = StrCat("{\"inputs\":[", StrJoin(json_inputs, ","),
                                  "],\"parameters\":{\"binary_data_output\":true}}");

  inference::ModelInferResponse grpc_response;
  status = stub->ModelInfer(Context().get(), grpc_request, &grpc_response);
  ASSERT_TRUE(status.ok()) << status.error_message();

  HttpClient http(server_->http_port());
  HttpResponse rest = http.Post(StrCat("/v2/models/", model, "/infer"), body,
                                {{"Content-Type", "application/json"}});
  ASSERT_EQ(rest.status, 200u) << rest.body;
  std::vector<Output> rest_outputs = ParseRest(rest);

  ASSERT_EQ(static_cast<size_t>(grpc_response.outputs_size()), rest_outputs.size());
  ASSERT_EQ(grpc_response.raw_output_contents_size(), grpc_response.outputs_size());
  ASSERT_GT(rest_outputs.size(), 0u);
  for (int i = 0; i < grpc_response.outputs_size(); ++i) {
    const auto& g = grpc_response.outputs(i);
    const Output& r = rest_outputs[i];
    EXPECT_EQ(g.name(), r.name);
    EXPECT_EQ(g.datatype(), r.datatype) << r.name;
    EXPECT_EQ(std::vector<int64_t>(g.shape().begin(), g.shape().end()), r.shape) << r.name;
    EXPECT_EQ(grpc_response.raw_output_contents(i), r.bytes) << r.name;
  }
}

INSTANTIATE_TEST_SUITE_P(DemoModels, GrpcRestParityTest,
                         ::testing::Values("iris_classifier", "multi_io", "string_length", "no_config_model"));

}  // namespace
}  // namespace ortserve::testing
