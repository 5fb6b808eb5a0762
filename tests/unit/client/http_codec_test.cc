// SPDX-License-Identifier: Apache-2.0
// The client library's REST codec alone (client/http_codec.h): pure
// functions, no server.
#include "client/http_codec.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/data_type.h"
#include "core/tensor.h"
#include "simdjson.h"

namespace ortserve::client {
namespace {

template <typename T>
std::vector<T> Values(const Tensor& tensor) {
  std::vector<T> out(tensor.data.size() / sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), tensor.data.data(), tensor.data.size());
  return out;
}

// ---------------------------------------------------------------------------
// The client-side REST codec (pure functions).

TEST(HttpCodecTest, FloatToHalfInvertsHalfToFloatForEveryHalf) {
  for (uint32_t bits = 0; bits <= 0xffff; ++bits) {
    const float f = HalfToFloat(static_cast<uint16_t>(bits));
    const uint16_t back = FloatToHalf(f);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(HalfToFloat(back))) << bits;
    } else {
      EXPECT_EQ(back, bits) << "half bits " << bits;
    }
  }
}

TEST(HttpCodecTest, FloatToHalfRoundsToNearestEven) {
  EXPECT_EQ(FloatToHalf(1.0f + std::ldexp(1.0f, -11)), 0x3c00);      // Tie: down to even.
  EXPECT_EQ(FloatToHalf(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);  // Tie: up to even.
  EXPECT_EQ(FloatToHalf(65519.0f), 0x7bff);                          // Max finite.
  EXPECT_EQ(FloatToHalf(65520.0f), 0x7c00);                          // Rounds to infinity.
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -25)), 0x0000);             // Tie to zero.
  EXPECT_EQ(FloatToHalf(1.5f * std::ldexp(1.0f, -24)), 0x0002);      // Subnormal tie: even.
  EXPECT_EQ(FloatToHalf(-0.0f), 0x8000);
}

TEST(HttpCodecTest, TensorFromJsonFlattensNestedArraysAndChecksCount) {
  auto tensor = TensorFromJson("x", DataType::kInt16, {2, 2}, "[[1, -2], [3, 32767]]");
  ASSERT_TRUE(tensor.ok()) << tensor.status();
  EXPECT_EQ(Values<int16_t>(*tensor), (std::vector<int16_t>{1, -2, 3, 32767}));
  auto count = TensorFromJson("x", DataType::kFp32, {2, 2}, "[1, 2, 3]");
  EXPECT_EQ(count.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(count.status().message().find("'x'"), absl::string_view::npos) << count.status();
  auto range = TensorFromJson("x", DataType::kInt8, {1}, "[200]");
  EXPECT_EQ(range.status().code(), absl::StatusCode::kInvalidArgument) << range.status();
  auto special = TensorFromJson("x", DataType::kFp32, {2}, R"(["NaN", "-Infinity"])");
  ASSERT_TRUE(special.ok()) << special.status();
  EXPECT_TRUE(std::isnan(Values<float>(*special)[0]));
  EXPECT_EQ(Values<float>(*special)[1], -INFINITY);
}

TEST(HttpCodecTest, DecodeResponseRejectsBinarySectionsThatDoNotAddUp) {
  const std::string json =
      R"({"model_name":"m","outputs":[{"name":"y","datatype":"FP32","shape":[2],"parameters":{"binary_data_size":8}}]})";
  auto ok = DecodeHttpInferResponse(std::make_shared<std::string>(json + std::string(8, '\0')), json.size());
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(Values<float>(ok->outputs[0]), (std::vector<float>{0, 0}));
  auto extra = DecodeHttpInferResponse(std::make_shared<std::string>(json + std::string(12, '\0')), json.size());
  EXPECT_EQ(extra.status().code(), absl::StatusCode::kInternal) << extra.status();
  auto short_body = DecodeHttpInferResponse(std::make_shared<std::string>(json + std::string(4, '\0')), json.size());
  EXPECT_EQ(short_body.status().code(), absl::StatusCode::kInternal) << short_body.status();
  EXPECT_NE(short_body.status().message().find("'y'"), absl::string_view::npos) << short_body.status();
}

TEST(HttpCodecTest, JsonModeSendsFp16AndInvalidUtf8Binary) {
  InferRequest request;
  request.model_name = "m";
  std::vector<uint16_t> half = {0x3c00};
  request.inputs.push_back(MakeTensor<uint16_t>("h", DataType::kFp16, {1}, half));
  std::vector<std::string> bad = {std::string("\xff\xfe", 2)};
  request.inputs.push_back(MakeBytesTensor("s", {1}, bad));
  std::vector<std::string> good = {"ok"};
  request.inputs.push_back(MakeBytesTensor("t", {1}, good));
  auto body = EncodeHttpInferRequest(request, /*binary=*/false);
  ASSERT_TRUE(body.ok()) << body.status();
  ASSERT_TRUE(body->header_length.has_value());
  // FP16 (2 bytes) then the BYTES section (4-byte length + 2 bytes); "t" is JSON.
  EXPECT_EQ(body->body.size() - *body->header_length, 2u + 6u);
  EXPECT_NE(body->body.find(R"("data":["ok"])"), std::string::npos) << body->body;
}

TEST(HttpCodecTest, MapsHttpStatusesToCodes) {
  EXPECT_EQ(HttpErrorStatus(400, R"({"error":"bad 'x'"})"), absl::InvalidArgumentError("bad 'x'"));
  EXPECT_EQ(HttpErrorStatus(404, R"({"error":"no model"})").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(HttpErrorStatus(413, "").code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(HttpErrorStatus(503, "").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(HttpErrorStatus(504, "").code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(HttpErrorStatus(502, "gateway").message(), "gateway");
}

TEST(HttpCodecTest, JsonModeWritesFloatsShortestAndNonFiniteAsStrings) {
  InferRequest request;
  const std::vector<float> values = {0.1f, 3.0f, NAN, -INFINITY};
  request.inputs.push_back(MakeTensor<float>("x", DataType::kFp32, {4}, values));
  auto body = EncodeHttpInferRequest(request, /*binary=*/false);
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_FALSE(body->header_length.has_value());
  EXPECT_NE(body->body.find(R"("data":[0.1,3.0,"NaN","-Infinity"])"), std::string::npos) << body->body;
}

TEST(HttpCodecTest, RequestJsonIsValidWhateverTheNamesAndIdHold) {
  InferRequest request;
  request.id = std::string("id\x01\xff", 4);
  const std::vector<int32_t> values = {1};
  request.inputs.push_back(MakeTensor<int32_t>(std::string("in\"\xc3", 4), DataType::kInt32, {1}, values));
  RequestedOutput output;
  output.name = "out\n";
  request.outputs.push_back(output);
  auto body = EncodeHttpInferRequest(request, /*binary=*/false);
  ASSERT_TRUE(body.ok()) << body.status();
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  ASSERT_EQ(parser.parse(body->body).get(root), simdjson::SUCCESS) << body->body;  // Valid JSON and UTF-8.
  std::string_view id, name;
  ASSERT_EQ(root["id"].get_string().get(id), simdjson::SUCCESS);
  EXPECT_EQ(id, "id\x01\xEF\xBF\xBD");
  ASSERT_EQ(root["inputs"].at(0)["name"].get_string().get(name), simdjson::SUCCESS);
  EXPECT_EQ(name, "in\"\xEF\xBF\xBD");
}

}  // namespace
}  // namespace ortserve::client
