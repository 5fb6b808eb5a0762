// SPDX-License-Identifier: Apache-2.0
// The gRPC codec alone (no server): zero-copy raw inputs, contents
// conversion, parameters, output encoding.
#include "frontend/grpc/grpc_codec.h"

#include <gtest/gtest.h>

#include <cstring>

#include "frontend/http/kserve_json_codec.h"

namespace ortserve::frontend {
namespace {

using inference::ModelInferRequest;

std::shared_ptr<ModelInferRequest> RawRequest() {
  auto message = std::make_shared<ModelInferRequest>();
  message->set_model_name("m");
  auto* input = message->add_inputs();
  input->set_name("x");
  input->set_datatype("FP32");
  input->add_shape(1);
  input->add_shape(2);
  const float values[2] = {1.5f, -2.0f};
  message->add_raw_input_contents(std::string(reinterpret_cast<const char*>(values), sizeof(values)));
  return message;
}

TEST(GrpcCodecTest, RawInputsAreViewsIntoTheMessageWhichTheRequestKeepsAlive) {
  auto message = RawRequest();
  const char* raw = message->raw_input_contents(0).data();
  std::weak_ptr<ModelInferRequest> weak = message;
  auto decoded = DecodeModelInferRequest(std::move(message), absl::Now());
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ASSERT_EQ(decoded->inputs.size(), 1u);
  EXPECT_EQ(reinterpret_cast<const char*>(decoded->inputs[0].data.data()), raw);
  EXPECT_FALSE(weak.expired());
  {
    Tensor keep = decoded->inputs[0];
    decoded = absl::UnknownError("dropped");
    EXPECT_FALSE(weak.expired());  // The tensor's holder still owns the message.
    EXPECT_EQ(keep.values<float>()[1], -2.0f);
  }
  EXPECT_TRUE(weak.expired());
}

TEST(GrpcCodecTest, ContentsOfNarrowTypesAreRangeChecked) {
  auto message = std::make_shared<ModelInferRequest>();
  auto* input = message->add_inputs();
  input->set_name("small");
  input->set_datatype("INT8");
  input->add_shape(2);
  input->mutable_contents()->add_int_contents(-128);
  input->mutable_contents()->add_int_contents(127);
  auto decoded = DecodeModelInferRequest(message, absl::Now());
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->inputs[0].values<int8_t>()[0], -128);
  EXPECT_EQ(decoded->inputs[0].data.size(), 2u);
  input->mutable_contents()->set_int_contents(1, 128);
  decoded = DecodeModelInferRequest(message, absl::Now());
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(decoded.status().message()).find("input 'small': contents value 128"), std::string::npos)
      << decoded.status();
}

TEST(GrpcCodecTest, BytesContentsUseTheLengthPrefixedLayout) {
  auto message = std::make_shared<ModelInferRequest>();
  auto* input = message->add_inputs();
  input->set_name("s");
  input->set_datatype("BYTES");
  input->add_shape(2);
  input->mutable_contents()->add_bytes_contents("ab");
  input->mutable_contents()->add_bytes_contents(std::string("\0z", 2));
  auto decoded = DecodeModelInferRequest(message, absl::Now());
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  const auto& data = decoded->inputs[0].data;
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(data.data()), data.size()),
            std::string("\x02\0\0\0ab\x02\0\0\0\0z", 12));
}

TEST(GrpcCodecTest, ParametersDecodeSortedAndReservedOnesApply) {
  auto message = RawRequest();
  auto& params = *message->mutable_parameters();
  params["zeta"].set_string_param("z");
  params["alpha"].set_double_param(0.5);
  params["priority"].set_uint64_param(2);
  params["timeout"].set_int64_param(1500);
  params["flag"].set_bool_param(true);
  const absl::Time now = absl::FromUnixSeconds(1000);
  auto decoded = DecodeModelInferRequest(message, now);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  std::vector<std::string> keys;
  for (const auto& [k, v] : decoded->parameters) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"alpha", "flag", "priority", "timeout", "zeta"}));
  EXPECT_EQ(decoded->priority, 2u);
  EXPECT_EQ(decoded->deadline, now + absl::Microseconds(1500));
  EXPECT_EQ(decoded->arrival, now);

  inference::ModelInferResponse out;
  InferResponse response;
  response.parameters = decoded->parameters;
  ASSERT_TRUE(EncodeModelInferResponse(response, InferRequest{}, {}, &out).ok());
  EXPECT_EQ(out.parameters().at("alpha").double_param(), 0.5);
  EXPECT_EQ(out.parameters().at("priority").uint64_param(), 2u);
  EXPECT_TRUE(out.parameters().at("flag").bool_param());
  EXPECT_EQ(out.parameters().at("zeta").string_param(), "z");
}

TEST(GrpcCodecTest, ResponsesCarryRawOutputsForRequestedOutputsInRequestOrder) {
  InferResponse response;
  response.model_name = "m";
  response.model_version = "3";
  response.id = "r";
  const std::vector<int64_t> ints = {1, 2, 3};
  const std::vector<float> floats = {0.5f};
  response.outputs.push_back(MakeTensor<int64_t>("i", DataType::kInt64, {3}, ints));
  response.outputs.push_back(MakeTensor<float>("f", DataType::kFp32, {1, 1}, floats));
  InferRequest request;
  for (const char* name : {"f", "i"}) {
    RequestedOutput output;
    output.name = name;
    request.outputs.push_back(output);
  }
  inference::ModelInferResponse out;
  ASSERT_TRUE(EncodeModelInferResponse(response, request, {}, &out).ok());
  EXPECT_EQ(out.model_version(), "3");
  ASSERT_EQ(out.outputs_size(), 2);
  EXPECT_EQ(out.outputs(0).name(), "f");
  EXPECT_EQ(out.outputs(0).datatype(), "FP32");
  EXPECT_EQ(out.outputs(0).shape_size(), 2);
  EXPECT_EQ(out.raw_output_contents(1), std::string(reinterpret_cast<const char*>(ints.data()), 24));
  EXPECT_FALSE(out.outputs(0).has_contents());

  RequestedOutput missing;
  missing.name = "missing";
  request.outputs.push_back(missing);
  EXPECT_EQ(EncodeModelInferResponse(response, request, {}, &out).code(), absl::StatusCode::kInternal);
}

TEST(GrpcCodecTest, ClassificationIsTheSameRankingTheRestEncoderWrites) {
  InferResponse response;
  response.model_name = "m";
  const std::vector<float> scores = {0.1f, 0.7f, 0.2f, 0.6f, 0.3f, 0.1f};
  response.outputs.push_back(MakeTensor<float>("probs", DataType::kFp32, {2, 3}, scores));
  InferRequest request;
  RequestedOutput output;
  output.name = "probs";
  output.classification = 2;
  output.parameters.Set("classification", int64_t{2});
  request.outputs.push_back(output);
  const std::vector<std::string> labels = {"low", "mid", "high"};
  EncodeOptions options;
  options.labels = [&labels](std::string_view name) {
    return name == "probs" ? std::span<const std::string>(labels) : std::span<const std::string>();
  };

  inference::ModelInferResponse out;
  ASSERT_TRUE(EncodeModelInferResponse(response, request, options, &out).ok());
  ASSERT_EQ(out.outputs_size(), 1);
  EXPECT_EQ(out.outputs(0).datatype(), "BYTES");
  EXPECT_EQ(std::vector<int64_t>(out.outputs(0).shape().begin(), out.outputs(0).shape().end()),
            (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(out.outputs(0).parameters().at("classification").int64_param(), 2);
  const std::string& raw = out.raw_output_contents(0);
  auto elements = SplitBytesElements(std::span(reinterpret_cast<const std::byte*>(raw.data()), raw.size()), 4, "probs");
  ASSERT_TRUE(elements.ok()) << elements.status();
  EXPECT_EQ(*elements, (std::vector<std::string_view>{"0.7:1:mid", "0.2:2:high", "0.6:0:low", "0.3:1:mid"}));

  // The REST encoder, asked for the same output in binary, sends the same bytes.
  request.outputs[0].binary_data = true;
  auto rest = EncodeInferResponse(response, request, options);
  ASSERT_TRUE(rest.ok()) << rest.status();
  ASSERT_EQ(rest->binary.size(), 1u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(rest->binary[0].data()), rest->binary[0].size()), raw);
}

TEST(GrpcCodecTest, ClassificationOfABytesOutputIsInvalidArgument) {
  InferResponse response;
  const std::vector<std::string> text = {"a"};
  response.outputs.push_back(MakeBytesTensor("text", {1}, text));
  InferRequest request;
  RequestedOutput output;
  output.name = "text";
  output.classification = 1;
  request.outputs.push_back(output);
  inference::ModelInferResponse out;
  EXPECT_EQ(EncodeModelInferResponse(response, request, {}, &out).code(), absl::StatusCode::kInvalidArgument);
}

TEST(GrpcCodecTest, ReservedOutputParametersOutOfRangeAreRejected) {
  auto message = RawRequest();
  auto* wanted = message->add_outputs();
  wanted->set_name("y");
  (*wanted->mutable_parameters())["classification"].set_int64_param(-1);
  auto decoded = DecodeModelInferRequest(message, absl::Now());
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(decoded.status().message()).find("output 'y' parameter 'classification'"), std::string::npos)
      << decoded.status();
  (*wanted->mutable_parameters())["classification"].set_int64_param(3);
  decoded = DecodeModelInferRequest(message, absl::Now());
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->outputs[0].classification, 3u);
  EXPECT_TRUE(decoded->outputs[0].binary_data);  // gRPC always answers raw.
}

}  // namespace
}  // namespace ortserve::frontend
