// SPDX-License-Identifier: Apache-2.0
// The generate parameters as each carrier brings them (issue 22): a JSON
// body of Triton's /generate, and a gRPC ModelStreamInfer message's input
// tensors and request parameters, checked by the same rules.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/tensor.h"
#include "frontend/generate_request.h"
#include "frontend/grpc/generate_stream.h"
#include "frontend/http/triton_generation.h"

namespace ortserve::frontend {
namespace {

InferRequest WithText(std::string_view text) {
  InferRequest r;
  r.model_name = "m";
  const std::string element(text);
  r.inputs.push_back(MakeBytesTensor("text_input", {1}, std::span<const std::string>(&element, 1)));
  return r;
}

template <typename T>
void AddScalar(InferRequest* r, const std::string& name, DataType type, T value) {
  r->inputs.push_back(MakeTensor<T>(name, type, {1}, std::span<const T>(&value, 1)));
}

TEST(GenerateRequestTest, GrpcInputsAndParametersSetWhatTheJsonBodySets) {
  auto json = ParseTritonGenerateRequest(
      R"({"text_input":"hi","parameters":{"max_tokens":7,"temperature":0.5,"top_k":3,"top_p":0.9,)"
      R"("repetition_penalty":1.2,"seed":42,"stop":["a","b"],"ignore_eos":true,"stream":true}})");
  ASSERT_TRUE(json.ok()) << json.status();

  InferRequest r = WithText("hi");
  AddScalar<int32_t>(&r, "max_tokens", DataType::kInt32, 7);
  AddScalar<float>(&r, "temperature", DataType::kFp32, 0.5f);
  AddScalar<uint8_t>(&r, "top_k", DataType::kUint8, 3);
  AddScalar<uint8_t>(&r, "stream", DataType::kBool, 1);
  const std::vector<std::string> stops = {"a", "b"};
  r.inputs.push_back(MakeBytesTensor("stop", {2}, stops));
  r.parameters.Set("top_p", 0.9);
  r.parameters.Set("repetition_penalty", 1.2);
  r.parameters.Set("seed", int64_t{42});
  r.parameters.Set("ignore_eos", true);
  r.parameters.Set("priority", int64_t{1});                        // reserved: ignored
  r.parameters.Set("triton_enable_empty_final_response", true);    // reserved: ignored
  auto grpc = DecodeGrpcGenerateRequest(r);
  ASSERT_TRUE(grpc.ok()) << grpc.status();
  for (const CompletionRequest* c : {&*json, &*grpc}) {
    EXPECT_EQ(c->prompt, "hi");
    EXPECT_EQ(c->max_tokens, 7);
    EXPECT_FLOAT_EQ(*c->temperature, 0.5f);
    EXPECT_EQ(c->top_k, 3);
    EXPECT_FLOAT_EQ(*c->top_p, 0.9f);
    EXPECT_FLOAT_EQ(*c->repetition_penalty, 1.2f);
    EXPECT_EQ(c->seed, 42u);
    EXPECT_EQ(c->stop, stops);
    EXPECT_TRUE(c->ignore_eos);
    EXPECT_TRUE(c->stream);
  }
  EXPECT_EQ(grpc->model, "m");
}

TEST(GenerateRequestTest, RefusesHostileValuesNamingTheField) {
  auto expect = [](InferRequest r, std::string_view part) {
    auto decoded = DecodeGrpcGenerateRequest(r);
    ASSERT_FALSE(decoded.ok()) << part;
    EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(std::string(decoded.status().message()).find(part), std::string::npos) << decoded.status();
  };
  InferRequest r = WithText("hi");
  AddScalar<int64_t>(&r, "max_tokens", DataType::kInt64, int64_t{1} << 40);
  expect(r, "max_tokens");
  r = WithText("hi");
  AddScalar<int32_t>(&r, "max_tokens", DataType::kInt32, 0);
  expect(r, "max_tokens");
  r = WithText("hi");
  AddScalar<uint64_t>(&r, "seed", DataType::kUint64, ~uint64_t{0});
  expect(r, "seed");
  r = WithText("hi");
  AddScalar<double>(&r, "temperature", DataType::kFp64, std::nan(""));
  expect(r, "temperature");
  r = WithText("hi");
  AddScalar<float>(&r, "top_p", DataType::kFp32, 1.5f);
  expect(r, "top_p");
  r = WithText("hi");
  AddScalar<float>(&r, "max_tokens", DataType::kFp32, 8.0f);  // an integer field
  expect(r, "max_tokens");
  r = WithText("hi");
  AddScalar<int32_t>(&r, "stream", DataType::kInt32, 1);  // a boolean field
  expect(r, "stream");
  r = WithText("hi");
  const std::vector<int32_t> two = {1, 2};
  r.inputs.push_back(MakeTensor<int32_t>("max_tokens", DataType::kInt32, {2}, two));
  expect(r, "one element");
  r = WithText("hi");
  r.inputs.push_back(MakeBytesTensor("stop", {65}, std::vector<std::string>(65, "x")));
  expect(r, "stop");
  r = WithText("hi");
  r.inputs[0].data = r.inputs[0].data.subspan(0, 3);  // a length cut short
  expect(r, "text_input");
  r = WithText("hi");
  r.inputs[0].shape = {2};  // one element's bytes, a shape of two
  expect(r, "text_input");
  expect(InferRequest{}, "text_input");
  r = WithText("hi");
  AddScalar<int64_t>(&r, "input_ids", DataType::kInt64, 1);
  expect(r, "input_ids");
  r = WithText("hi");
  r.parameters.Set("beam_width", int64_t{2});
  expect(r, "beam_width");
  r = WithText("hi");
  r.parameters.Set("temperature", std::string("hot"));
  expect(r, "temperature");
  r = WithText("hi");
  RequestedOutput logits;
  logits.name = "logits";
  r.outputs.push_back(logits);
  expect(r, "logits");
  // The JSON body: the same rules.
  EXPECT_FALSE(ParseTritonGenerateRequest(R"({"text_input":"x","max_tokens":1.5})").ok());
  EXPECT_FALSE(ParseTritonGenerateRequest(R"({"text_input":"x","stop":[1]})").ok());
  EXPECT_FALSE(ParseTritonGenerateRequest(R"({"text_input":"x","seed":18446744073709551615})").ok());
  EXPECT_FALSE(ParseTritonGenerateRequest(R"({"text_input":"x","stream":1})").ok());
  std::string many = R"({"text_input":"x","stop":[)";
  for (int i = 0; i < 1000; ++i) many += std::string(i ? "," : "") + "\"s\"";
  auto too_many = ParseTritonGenerateRequest(many + "]}");
  ASSERT_FALSE(too_many.ok());
  EXPECT_NE(too_many.status().message().find("at most 64"), std::string_view::npos) << too_many.status();
}

}  // namespace
}  // namespace ortserve::frontend
