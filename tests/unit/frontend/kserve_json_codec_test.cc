// SPDX-License-Identifier: Apache-2.0
#include "frontend/http/kserve_json_codec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "simdjson.h"

namespace ortserve::frontend {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

const absl::Time kNow = absl::FromUnixSeconds(1700000000);

// A request body as the HTTP layer holds it: owned by a shared buffer with
// simdjson's padding after it.
struct Body {
  std::shared_ptr<std::string> bytes;
  size_t size;
};

Body MakeBody(std::string_view json, std::string_view binary = {}) {
  auto bytes = std::make_shared<std::string>();
  bytes->append(json);
  bytes->append(binary);
  const size_t size = bytes->size();
  bytes->append(simdjson::SIMDJSON_PADDING, ' ');
  return {bytes, size};
}

absl::StatusOr<InferRequest> Decode(std::string_view json) {
  Body body = MakeBody(json);
  return DecodeInferRequest(body.bytes->data(), body.size, body.bytes->size(), std::nullopt,
                            body.bytes, kNow);
}

std::string DecodeError(std::string_view json) {
  auto request = Decode(json);
  EXPECT_FALSE(request.ok()) << json;
  if (request.ok()) return "";
  EXPECT_EQ(request.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(request.status().message());
}

template <typename T>
std::vector<T> Values(const Tensor& tensor) {
  std::vector<T> out(tensor.data.size() / sizeof(T));
  std::memcpy(out.data(), tensor.data.data(), tensor.data.size());
  return out;
}

std::string BinaryOf(const std::vector<std::string>& elements) {
  std::vector<std::byte> bytes;
  for (const auto& e : elements) AppendBytesElement(e, &bytes);
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

// Encodes `outputs` as a response to `request` and returns the JSON.
std::string EncodeJson(std::vector<Tensor> outputs, const InferRequest& request = {},
                       const EncodeOptions& options = {}) {
  InferResponse response;
  response.model_name = "m";
  response.model_version = "1";
  response.outputs = std::move(outputs);
  auto encoded = EncodeInferResponse(response, request, options);
  EXPECT_TRUE(encoded.ok()) << encoded.status();
  if (!encoded.ok()) return "";
  EXPECT_FALSE(encoded->has_binary());
  return encoded->json;
}

// Asserts the JSON parses (i.e. a client can read it) and returns it.
void ExpectValidJson(const std::string& json) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  EXPECT_EQ(parser.parse(json).get(root), simdjson::SUCCESS) << json;
}

// ---------------------------------------------------------------------------
// Round trips per datatype: decode JSON data, encode the tensor back, and
// compare what the client sees.

struct RoundTripCase {
  std::string datatype;
  std::string data;      // As sent.
  std::string expected;  // As the response writes it.
};

class RoundTripTest : public ::testing::TestWithParam<RoundTripCase> {};

TEST_P(RoundTripTest, JsonDataDecodesAndEncodesBackUnchanged) {
  const RoundTripCase& c = GetParam();
  auto request = Decode(R"({"inputs":[{"name":"x","shape":[3],"datatype":")" + c.datatype +
                        R"(","data":)" + c.data + "}]}");
  ASSERT_TRUE(request.ok()) << request.status();
  ASSERT_EQ(request->inputs.size(), 1u);
  const Tensor& x = request->inputs[0];
  EXPECT_EQ(DataTypeName(x.type), c.datatype);
  EXPECT_THAT(x.shape, ElementsAre(3));
  EXPECT_TRUE(ValidateTensorBytes(x).ok());
  const std::string json = EncodeJson({x});
  ExpectValidJson(json);
  EXPECT_EQ(json, R"({"model_name":"m","model_version":"1","outputs":[{"name":"x","datatype":")" +
                      c.datatype + R"(","shape":[3],"data":)" + c.expected + "}]}");
}

INSTANTIATE_TEST_SUITE_P(
    EveryDatatype, RoundTripTest,
    ::testing::Values(
        RoundTripCase{"BOOL", "[true,false,true]", "[true,false,true]"},
        RoundTripCase{"UINT8", "[0,7,255]", "[0,7,255]"},
        RoundTripCase{"UINT16", "[0,7,65535]", "[0,7,65535]"},
        RoundTripCase{"UINT32", "[0,7,4294967295]", "[0,7,4294967295]"},
        RoundTripCase{"UINT64", "[0,9223372036854775808,18446744073709551615]",
                      "[0,9223372036854775808,18446744073709551615]"},
        RoundTripCase{"INT8", "[-128,0,127]", "[-128,0,127]"},
        RoundTripCase{"INT16", "[-32768,0,32767]", "[-32768,0,32767]"},
        RoundTripCase{"INT32", "[-2147483648,0,2147483647]", "[-2147483648,0,2147483647]"},
        RoundTripCase{"INT64", "[-9223372036854775808,0,9223372036854775807]",
                      "[-9223372036854775808,0,9223372036854775807]"},
        // FP32 is written in the shortest form that round-trips the float.
        RoundTripCase{"FP32", "[0.1,-3,3.4028235e38]", "[0.1,-3.0,3.4028235e+38]"},
        RoundTripCase{"FP64", "[0.1,-3,1e-300]", "[0.1,-3.0,1e-300]"},
        RoundTripCase{"FP32", R"(["NaN","Infinity","-Infinity"])",
                      R"(["NaN","Infinity","-Infinity"])"},
        RoundTripCase{"BYTES", R"(["abc","","h\u00e9\u0000!"])",
                      "[\"abc\",\"\",\"h\xc3\xa9\\u0000!\"]"}));

TEST(DecodeInferRequestTest, ParsesNumbersIntoTypedBuffers) {
  auto request = Decode(
      R"({"inputs":[{"name":"a","shape":[2],"datatype":"FP32","data":[1.5,-2]},)"
      R"({"name":"b","shape":[2],"datatype":"INT16","data":[-7,300]},)"
      R"({"name":"c","shape":[1],"datatype":"FP64","data":[0.1]}]})");
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_THAT(Values<float>(request->inputs[0]), ElementsAre(1.5f, -2.0f));
  EXPECT_THAT(Values<int16_t>(request->inputs[1]), ElementsAre(-7, 300));
  EXPECT_THAT(Values<double>(request->inputs[2]), ElementsAre(0.1));
  // JSON inputs own their bytes; they do not point into the body.
  EXPECT_NE(request->inputs[0].holder, nullptr);
  EXPECT_NE(request->inputs[0].holder, request->payload);
}

TEST(DecodeInferRequestTest, NestedDataEqualsFlatData) {
  auto nested = Decode(
      R"({"inputs":[{"name":"x","shape":[2,3],"datatype":"INT32","data":[[1,2,3],[4,5,6]]}]})");
  auto flat = Decode(
      R"({"inputs":[{"name":"x","shape":[2,3],"datatype":"INT32","data":[1,2,3,4,5,6]}]})");
  ASSERT_TRUE(nested.ok()) << nested.status();
  ASSERT_TRUE(flat.ok()) << flat.status();
  EXPECT_THAT(Values<int32_t>(nested->inputs[0]), ElementsAre(1, 2, 3, 4, 5, 6));
  EXPECT_EQ(Values<int32_t>(nested->inputs[0]), Values<int32_t>(flat->inputs[0]));
  EXPECT_THAT(nested->inputs[0].shape, ElementsAre(2, 3));
}

TEST(DecodeInferRequestTest, BytesFromJsonUseTheLengthPrefixedLayout) {
  auto request = Decode(
      R"({"inputs":[{"name":"s","shape":[1,2],"datatype":"BYTES","data":[["a\u0000b","\u00fc\u4e2d"]]}]})");
  ASSERT_TRUE(request.ok()) << request.status();
  const Tensor& s = request->inputs[0];
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(s.data.data()), s.data.size()),
            BinaryOf({std::string("a\0b", 3), "\xc3\xbc\xe4\xb8\xad"}));
}

TEST(DecodeInferRequestTest, ScalarShapeTakesOneValue) {
  auto request = Decode(R"({"inputs":[{"name":"x","shape":[],"datatype":"INT64","data":[42]}]})");
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_THAT(Values<int64_t>(request->inputs[0]), ElementsAre(42));
  EXPECT_TRUE(request->inputs[0].shape.empty());
}

TEST(DecodeInferRequestTest, ZeroElementTensorIsAccepted) {
  auto request = Decode(R"({"inputs":[{"name":"x","shape":[0,4],"datatype":"FP32","data":[]}]})");
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_TRUE(request->inputs[0].data.empty());
}

TEST(DecodeInferRequestTest, WorksWithoutPaddingInTheCallersBuffer) {
  const std::string json =
      R"({"inputs":[{"name":"x","shape":[2],"datatype":"UINT8","data":[1,2]}]})";
  auto exact = std::make_shared<std::string>(json);
  auto request = DecodeInferRequest(exact->data(), exact->size(), exact->size(), std::nullopt,
                                    exact, kNow);
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_THAT(Values<uint8_t>(request->inputs[0]), ElementsAre(1, 2));
}

TEST(DecodeInferRequestTest, FieldsMayComeInAnyOrder) {
  auto request =
      Decode(R"({"outputs":[{"name":"y"}],"inputs":[{"data":[1,2],"datatype":"INT8","shape":[2],)"
             R"("name":"x"}],"id":"r"})");
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->id, "r");
  EXPECT_THAT(Values<int8_t>(request->inputs[0]), ElementsAre(1, 2));
  ASSERT_EQ(request->outputs.size(), 1u);
  EXPECT_EQ(request->outputs[0].name, "y");
}

TEST(DecodeInferRequestTest, ReadsIdParametersAndSchedulingHints) {
  auto request = Decode(
      R"({"id":"req-7","parameters":{"priority":2,"timeout":1500,"binary_data_output":true,)"
      R"("flag":false,"big":18446744073709551615,"ratio":0.25,"note":"hi"},)"
      R"("inputs":[{"name":"x","shape":[1],"datatype":"INT8","data":[1],"parameters":{"tag":"t"}}],)"
      R"("outputs":[{"name":"y","parameters":{"binary_data":true,"classification":3}},{"name":"z"}]})");
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->id, "req-7");
  EXPECT_EQ(request->priority, 2u);
  EXPECT_EQ(request->deadline, kNow + absl::Microseconds(1500));
  EXPECT_EQ(request->arrival, kNow);
  EXPECT_TRUE(request->binary_data_output);
  EXPECT_EQ(request->parameters.FindBool("flag"), false);
  EXPECT_EQ(std::get<uint64_t>(*request->parameters.Find("big")),
            std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(std::get<double>(*request->parameters.Find("ratio")), 0.25);
  EXPECT_EQ(std::get<std::string>(*request->parameters.Find("note")), "hi");
  ASSERT_EQ(request->input_parameters.size(), 1u);
  EXPECT_EQ(std::get<std::string>(*request->input_parameters[0].Find("tag")), "t");
  ASSERT_EQ(request->outputs.size(), 2u);
  EXPECT_TRUE(request->outputs[0].binary_data);
  EXPECT_EQ(request->outputs[0].classification, 3u);
  EXPECT_FALSE(request->outputs[1].binary_data);
  EXPECT_EQ(request->outputs[1].classification, 0u);
}

TEST(DecodeInferRequestTest, NoTimeoutMeansNoDeadline) {
  auto request = Decode(
      R"({"parameters":{"timeout":0},"inputs":[{"name":"x","shape":[1],"datatype":"INT8","data":[1]}]})");
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->deadline, absl::InfiniteFuture());
  EXPECT_EQ(request->priority, 0u);
  EXPECT_FALSE(request->binary_data_output);
}

// ---------------------------------------------------------------------------
// Binary tensor extension.

TEST(DecodeInferRequestTest, BinaryInputsAreViewsIntoTheBody) {
  const float values[3] = {1.0f, 2.5f, -4.0f};
  const std::string binary(reinterpret_cast<const char*>(values), sizeof(values));
  const std::string json =
      R"({"inputs":[{"name":"x","shape":[3],"datatype":"FP32","parameters":{"binary_data_size":12}}]})";
  Body body = MakeBody(json, binary);
  auto request = DecodeInferRequest(body.bytes->data(), body.size, body.bytes->size(),
                                    json.size(), body.bytes, kNow);
  ASSERT_TRUE(request.ok()) << request.status();
  const Tensor& x = request->inputs[0];
  EXPECT_EQ(reinterpret_cast<const char*>(x.data.data()), body.bytes->data() + json.size());
  EXPECT_EQ(x.data.size(), 12u);
  EXPECT_EQ(x.holder, body.bytes);
  EXPECT_EQ(request->payload, body.bytes);
  EXPECT_THAT(Values<float>(x), ElementsAre(1.0f, 2.5f, -4.0f));
}

TEST(DecodeInferRequestTest, MixesJsonAndBinaryInputsInInputOrder) {
  const int32_t a[2] = {10, -20};
  const std::string bytes = BinaryOf({"hi", std::string("\0\xff", 2)});
  const uint16_t half[1] = {0x3c00};  // FP16 1.0: only possible as binary.
  std::string binary(reinterpret_cast<const char*>(a), sizeof(a));
  binary += bytes;
  binary.append(reinterpret_cast<const char*>(half), sizeof(half));
  const std::string json =
      R"({"inputs":[)"
      R"({"name":"a","shape":[2],"datatype":"INT32","parameters":{"binary_data_size":8}},)"
      R"({"name":"j","shape":[2],"datatype":"UINT8","data":[3,4]},)"
      R"({"name":"s","shape":[2],"datatype":"BYTES","parameters":{"binary_data_size":)" +
      std::to_string(bytes.size()) +
      R"(}},{"name":"h","shape":[1],"datatype":"FP16","parameters":{"binary_data_size":2}}]})";
  Body body = MakeBody(json, binary);
  auto request = DecodeInferRequest(body.bytes->data(), body.size, body.bytes->size(),
                                    json.size(), body.bytes, kNow);
  ASSERT_TRUE(request.ok()) << request.status();
  ASSERT_EQ(request->inputs.size(), 4u);
  const char* base = body.bytes->data() + json.size();
  EXPECT_EQ(reinterpret_cast<const char*>(request->inputs[0].data.data()), base);
  EXPECT_THAT(Values<int32_t>(request->inputs[0]), ElementsAre(10, -20));
  EXPECT_THAT(Values<uint8_t>(request->inputs[1]), ElementsAre(3, 4));
  EXPECT_EQ(reinterpret_cast<const char*>(request->inputs[2].data.data()), base + 8);
  auto split = SplitBytesElements(request->inputs[2].data, 2, "s");
  ASSERT_TRUE(split.ok());
  EXPECT_THAT(*split, ElementsAre("hi", std::string_view("\0\xff", 2)));
  EXPECT_EQ(reinterpret_cast<const char*>(request->inputs[3].data.data()),
            base + 8 + bytes.size());
  EXPECT_EQ(request->inputs[3].type, DataType::kFp16);
}

absl::Status DecodeBinaryError(const std::string& json, const std::string& binary) {
  Body body = MakeBody(json, binary);
  return DecodeInferRequest(body.bytes->data(), body.size, body.bytes->size(), json.size(),
                            body.bytes, kNow)
      .status();
}

TEST(DecodeInferRequestTest, RejectsBinarySizesThatDoNotMatchTheBody) {
  const std::string json =
      R"({"inputs":[{"name":"x","shape":[2],"datatype":"FP32","parameters":{"binary_data_size":8}}]})";
  absl::Status short_body = DecodeBinaryError(json, std::string(4, '\0'));
  EXPECT_EQ(short_body.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(short_body.message(), HasSubstr("add up to 8 bytes, but the body has 4 bytes"));
  absl::Status long_body = DecodeBinaryError(json, std::string(12, '\0'));
  EXPECT_THAT(long_body.message(), HasSubstr("add up to 8 bytes, but the body has 12 bytes"));
}

TEST(DecodeInferRequestTest, RejectsBinarySectionThatDoesNotFitTheShape) {
  const std::string json =
      R"({"inputs":[{"name":"x","shape":[3],"datatype":"FP32","parameters":{"binary_data_size":8}}]})";
  absl::Status status = DecodeBinaryError(json, std::string(8, '\0'));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("'x'"));
  EXPECT_THAT(status.message(), HasSubstr("needs 12 bytes, got 8"));
}

TEST(DecodeInferRequestTest, RejectsMalformedBinaryBytes) {
  const std::string json =
      R"({"inputs":[{"name":"s","shape":[1],"datatype":"BYTES","parameters":{"binary_data_size":6}}]})";
  std::string binary("\x09\0\0\0ab", 6);  // Claims 9 bytes, has 2.
  absl::Status status = DecodeBinaryError(json, binary);
  EXPECT_THAT(status.message(), HasSubstr("claims 9 bytes but only 2 remain"));
}

TEST(DecodeInferRequestTest, RejectsBinaryDataSizeWithoutHeaderLength) {
  EXPECT_THAT(DecodeError(R"({"inputs":[{"name":"x","shape":[1],"datatype":"INT8",)"
                          R"("parameters":{"binary_data_size":1}}]})"),
              HasSubstr("no Inference-Header-Content-Length"));
}

TEST(DecodeInferRequestTest, RejectsHeaderLengthPastTheBody) {
  Body body = MakeBody(R"({"inputs":[]})");
  auto request = DecodeInferRequest(body.bytes->data(), body.size, body.bytes->size(), 500,
                                    body.bytes, kNow);
  EXPECT_THAT(request.status().message(), HasSubstr("500 is larger than the request body"));
}

TEST(DecodeInferRequestTest, DataBeforeShapeAndDatatypeIsConverted) {
  auto request = Decode(R"({"inputs":[{"data":[[1,2],[3,4]],"name":"x","datatype":"INT32","shape":[2,2]},)"
                        R"({"name":"y","data":[0.5],"shape":[1],"datatype":"FP64"}]})");
  ASSERT_TRUE(request.ok()) << request.status();
  ASSERT_EQ(request->inputs.size(), 2u);
  EXPECT_THAT(Values<int32_t>(request->inputs[0]), ElementsAre(1, 2, 3, 4));
  EXPECT_THAT(Values<double>(request->inputs[1]), ElementsAre(0.5));
}

TEST(DecodeInferRequestTest, KeysAreComparedUnescaped) {
  auto request = Decode(R"({"inp\u0075ts":[{"na\u006de":"x","shape":[1],"datatype":"FP32","d\u0061ta":[2]}]})");
  ASSERT_TRUE(request.ok()) << request.status();
  ASSERT_EQ(request->inputs.size(), 1u);
  EXPECT_EQ(request->inputs[0].name, "x");
  EXPECT_THAT(Values<float>(request->inputs[0]), ElementsAre(2.0f));
}

TEST(DecodeInferRequestTest, RepeatedKeysKeepTheLastValue) {
  auto request = Decode(R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1],"data":[7]}]})");
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_THAT(Values<float>(request->inputs[0]), ElementsAre(7.0f));
}

TEST(DecodeInferRequestTest, LargeFp32DataParsesExactly) {
  // Every float written shortest-round-trip parses back to itself.
  std::mt19937 rng(7);
  std::uniform_int_distribution<uint32_t> bits;
  std::vector<float> expected;
  std::string json = R"({"inputs":[{"name":"x","shape":[20000],"datatype":"FP32","data":[)";
  while (expected.size() < 20000) {
    const uint32_t b = bits(rng);
    float f;
    std::memcpy(&f, &b, sizeof(f));
    if (!std::isfinite(f)) continue;
    char text[32];
    char* end = std::to_chars(text, text + sizeof(text), f).ptr;
    if (!expected.empty()) json.push_back(',');
    json.append(text, end);
    expected.push_back(f);
  }
  json += "]}]}";
  auto request = Decode(json);
  ASSERT_TRUE(request.ok()) << request.status();
  const std::vector<float> values = Values<float>(request->inputs[0]);
  ASSERT_EQ(values.size(), expected.size());
  for (size_t i = 0; i < values.size(); ++i) {
    ASSERT_EQ(std::memcmp(&values[i], &expected[i], sizeof(float)), 0) << i << ": " << expected[i];
  }
}

// Bodies of 8 MiB or more have their large numeric "data" arrays parsed
// straight from the body (no simdjson index over them); whatever that path
// does not take goes to simdjson. Either way the result must be the one a
// small body gets: here each case is decoded as is, and again with 8 MiB of
// spaces inside its data array (which sends it down the large-body path).
struct LargeBodyCase {
  std::string datatype;
  std::string shape;
  std::string data;  // Starts with '['.
};

std::string BodyWith(const LargeBodyCase& c, std::string_view data) {
  return R"({"id":"q","inputs":[{"name":"x","datatype":")" + c.datatype + R"(","shape":)" + c.shape +
         R"(,"data":)" + std::string(data) + R"(}],"outputs":[{"name":"y"}]})";
}

TEST(DecodeInferRequestTest, LargeBodiesDecodeAsSmallOnesDo) {
  const std::vector<LargeBodyCase> cases = {
      {"FP32", "[4]", "[1.5, -2, 3e2, 0.1]"},
      {"FP32", "[2,2]", "[[1,2],[3,4]]"},
      {"FP32", "[2,2]", "[[1,2],[3,[4]]]"},
      {"FP32", "[3]", R"([1, "NaN", "-Infinity"])"},
      {"FP32", "[1]", "[1e39]"},
      {"FP32", "[1]", "[-0]"},
      {"FP64", "[2]", "[1e308, -4.9e-324]"},
      {"FP64", "[1]", "[1e400]"},
      {"FP32", "[2]", "[1, 2, 3]"},
      {"FP32", "[4]", "[1, 2, 3]"},
      {"FP32", "[2]", "[1, true]"},
      {"FP32", "[2]", "[1, null]"},
      {"FP32", "[2]", "[01, 2]"},
      {"FP32", "[2]", "[1., 2]"},
      {"FP32", "[2]", "[1, 2,]"},
      {"FP32", "[2]", "[1 2]"},
      {"FP32", "[2]", "[-, 2]"},
      {"FP32", "[2]", "[1, +2]"},
      {"FP32", "[0]", "[]"},
      {"FP32", "[0]", "[[], [[]]]"},
      {"INT8", "[3]", "[127, -128, 0]"},
      {"INT8", "[2]", "[128, 0]"},
      {"INT32", "[2]", "[1.5, 0]"},
      {"INT32", "[2]", "[1e2, 0]"},
      {"UINT8", "[2]", "[-1, 0]"},
      {"UINT64", "[2]", "[18446744073709551615, 0]"},
      {"INT64", "[2]", "[9223372036854775807, -9223372036854775808]"},
      {"INT64", "[1]", "[9223372036854775808]"},
      {"INT64", "[1]", "[99999999999999999999999]"},
      {"BOOL", "[3]", "[true, false, true]"},
      {"BOOL", "[2]", "[true, 1]"},
      {"BOOL", "[2]", "[true, tru]"},
      {"BYTES", "[2]", R"(["a", "b"])"},
      {"BYTES", "[2]", "[1, 2]"},
      {"FP16", "[1]", "[1]"},
      {"FP32", "[1000000000000]", "[1]"},
  };
  const std::string padding((size_t{8} << 20) + 16, ' ');
  for (const LargeBodyCase& c : cases) {
    const std::string small = BodyWith(c, c.data);
    const std::string large = BodyWith(c, "[" + padding + c.data.substr(1));
    auto expected = Decode(small);
    auto got = Decode(large);
    ASSERT_EQ(got.ok(), expected.ok()) << c.datatype << " " << c.data << ": " << got.status() << " vs "
                                       << expected.status();
    if (!expected.ok()) {
      EXPECT_EQ(got.status().message(), expected.status().message()) << c.datatype << " " << c.data;
      continue;
    }
    ASSERT_EQ(got->inputs.size(), 1u);
    EXPECT_EQ(got->inputs[0].shape, expected->inputs[0].shape);
    ASSERT_EQ(got->inputs[0].data.size(), expected->inputs[0].data.size()) << c.data;
    EXPECT_EQ(std::memcmp(got->inputs[0].data.data(), expected->inputs[0].data.data(), got->inputs[0].data.size()),
              0)
        << c.datatype << " " << c.data;
  }
}

TEST(DecodeInferRequestTest, LargeArraysUnderIgnoredKeysAreStillChecked) {
  const std::string padding((size_t{8} << 20) + 16, ' ');
  const std::string input = R"({"name":"x","shape":[1],"datatype":"FP32","data":[1]})";
  auto fine = Decode(R"({"extra":{"data":[1,)" + padding + R"(2]},"inputs":[)" + input + "]}");
  EXPECT_TRUE(fine.ok()) << fine.status();
  EXPECT_THAT(DecodeError(R"({"extra":{"data":[1,)" + padding + R"(02]},"inputs":[)" + input + "]}"),
              HasSubstr("not valid JSON"));
  // A large array is a parameter's value: refused as the array it is.
  EXPECT_THAT(DecodeError(R"({"parameters":{"data":[1,)" + padding + R"(2]},"inputs":[)" + input + "]}"),
              HasSubstr("request parameter 'data' is an array"));
}

TEST(DecodeInferRequestTest, LargeFp32BodyParsesExactly) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> unit(-1, 1);
  std::vector<float> expected;
  std::string json = R"({"inputs":[{"name":"x","shape":[900,1000],"datatype":"FP32","data":[)";
  for (int row = 0; row < 900; ++row) {
    json += row ? ",[" : "[";
    for (int i = 0; i < 1000; ++i) {
      const float f = unit(rng);
      char text[32];
      char* end = std::to_chars(text, text + sizeof(text), f).ptr;
      if (i) json.push_back(',');
      json.append(text, end);
      expected.push_back(f);
    }
    json += "]";
  }
  json += "]}]}";
  ASSERT_GT(json.size(), size_t{8} << 20);
  auto request = Decode(json);
  ASSERT_TRUE(request.ok()) << request.status();
  const std::vector<float> values = Values<float>(request->inputs[0]);
  ASSERT_EQ(values.size(), expected.size());
  EXPECT_EQ(std::memcmp(values.data(), expected.data(), values.size() * sizeof(float)), 0);
}

// ---------------------------------------------------------------------------
// Errors a client can make, each with a message that names the problem.

TEST(DecodeInferRequestErrorTest, MalformedJson) {
  EXPECT_THAT(DecodeError(R"({"inputs":[)"), HasSubstr("not valid JSON"));
  EXPECT_THAT(DecodeError("[1,2]"), HasSubstr("must be a JSON object, got an array"));
}

TEST(DecodeInferRequestErrorTest, MalformedJsonAnywhereIsRefusedEvenInIgnoredFields) {
  const std::string input = R"({"name":"x","shape":[1],"datatype":"FP32","data":[1]})";
  EXPECT_THAT(DecodeError(R"({"inputs":[)" + input + R"(]} x)"), HasSubstr("not valid JSON"));
  EXPECT_THAT(DecodeError(R"({"inputs":[)" + input + R"(],"extra":[1 2]})"), HasSubstr("not valid JSON"));
  EXPECT_THAT(DecodeError(R"({"extra":{"a":tru},"inputs":[)" + input + "]}"), HasSubstr("not valid JSON"));
  EXPECT_THAT(DecodeError(R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1],"z":01}]})"),
              HasSubstr("not valid JSON"));
  EXPECT_THAT(DecodeError(R"({"inputs":[{"name":"x","shape":[2],"datatype":"FP32","data":[1,]}]})"),
              HasSubstr("not valid JSON"));
  EXPECT_THAT(DecodeError(R"({"inputs":[{"name":"x","shape":[2],"datatype":"INT32","data":[1,"\q"]}]})"),
              HasSubstr("not valid JSON"));
  EXPECT_THAT(DecodeError(R"({"inputs":[{"name":"x","shape":[1],"datatype":"BOOL","data":[nul]}]})"),
              HasSubstr("not valid JSON"));
}

TEST(DecodeInferRequestErrorTest, NestingDeeperThanTheLimitIsRefused) {
  const std::string deep = std::string(5000, '[') + "1" + std::string(5000, ']');
  EXPECT_THAT(DecodeError(R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":)" + deep + "}]}"),
              HasSubstr("not valid JSON"));
  EXPECT_THAT(DecodeError(R"({"x":)" + deep + R"(,"inputs":[]})"), HasSubstr("not valid JSON"));
  // Within the limit, nesting of any shape flattens.
  const std::string nested = std::string(100, '[') + "1" + std::string(100, ']');
  auto request = Decode(R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":)" + nested + "}]}");
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_THAT(Values<float>(request->inputs[0]), ElementsAre(1.0f));
}

TEST(DecodeInferRequestErrorTest, MissingOrWrongInputs) {
  EXPECT_THAT(DecodeError(R"({"id":"a"})"), HasSubstr("no \"inputs\""));
  EXPECT_THAT(DecodeError(R"({"inputs":{}})"), HasSubstr("\"inputs\" must be an array"));
  EXPECT_THAT(DecodeError(R"({"inputs":[3]})"), HasSubstr("inputs[0] must be an object"));
}

TEST(DecodeInferRequestErrorTest, InputWithoutNameShapeOrDatatype) {
  EXPECT_THAT(DecodeError(R"({"inputs":[{"shape":[1],"datatype":"INT8","data":[1]}]})"),
              HasSubstr("inputs[0] has no \"name\""));
  EXPECT_THAT(DecodeError(R"({"inputs":[{"name":"x","datatype":"INT8","data":[1]}]})"),
              HasSubstr("input 'x' has no \"shape\""));
  EXPECT_THAT(DecodeError(R"({"inputs":[{"name":"x","shape":[1],"data":[1]}]})"),
              HasSubstr("input 'x' has no \"datatype\""));
  EXPECT_THAT(DecodeError(R"({"inputs":[{"name":"x","shape":[1],"datatype":"INT8"}]})"),
              HasSubstr("input 'x' has no \"data\""));
}

TEST(DecodeInferRequestErrorTest, UnknownDatatype) {
  EXPECT_THAT(DecodeError(R"({"inputs":[{"name":"x","shape":[1],"datatype":"FLOAT","data":[1]}]})"),
              HasSubstr("input 'x' has unknown datatype 'FLOAT'"));
  // Names are case-sensitive, as in the protocol.
  EXPECT_THAT(DecodeError(R"({"inputs":[{"name":"x","shape":[1],"datatype":"fp32","data":[1]}]})"),
              HasSubstr("unknown datatype 'fp32'"));
}

TEST(DecodeInferRequestErrorTest, NegativeOrNonIntegerDimensions) {
  EXPECT_THAT(DecodeError(R"({"inputs":[{"name":"x","shape":[2,-1],"datatype":"INT8","data":[1,2]}]})"),
              HasSubstr("input 'x': shape has a negative dimension -1"));
  EXPECT_THAT(DecodeError(R"({"inputs":[{"name":"x","shape":[1.5],"datatype":"INT8","data":[1]}]})"),
              HasSubstr("shape must be an array of integers"));
}

TEST(DecodeInferRequestErrorTest, TooManyElementsAreCountedToTheEnd) {
  EXPECT_THAT(DecodeError(R"({"inputs":[{"name":"x","shape":[2],"datatype":"FP32","data":[[1,2],[3,[4,5]]]}]})"),
              HasSubstr("shape [2] needs 2 elements, but data has 5"));
  EXPECT_THAT(DecodeError(R"({"inputs":[{"name":"x","shape":[1],"datatype":"BYTES","data":["a","b",["c"]]}]})"),
              HasSubstr("shape [1] needs 1 elements, but data has 3"));
}

TEST(DecodeInferRequestErrorTest, ElementCountNotMatchingShape) {
  EXPECT_THAT(DecodeError(R"({"inputs":[{"name":"x","shape":[2,2],"datatype":"INT8","data":[1,2,3]}]})"),
              HasSubstr("input 'x': shape [2,2] needs 4 elements, but data has 3"));
  EXPECT_THAT(DecodeError(R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1,2]}]})"),
              HasSubstr("shape [1] needs 1 elements, but data has 2"));
  EXPECT_THAT(
      DecodeError(R"({"inputs":[{"name":"x","shape":[1],"datatype":"BYTES","data":["a","b"]}]})"),
      HasSubstr("needs 1 elements, but data has 2"));
  // A huge shape is refused before any buffer is allocated for it.
  EXPECT_THAT(DecodeError(
                  R"({"inputs":[{"name":"x","shape":[1000000000000],"datatype":"FP64","data":[1]}]})"),
              HasSubstr("needs 1000000000000 elements, but data has 1"));
}

TEST(DecodeInferRequestErrorTest, ValuesOutOfRangeForTheType) {
  EXPECT_THAT(DecodeError(R"({"inputs":[{"name":"x","shape":[2],"datatype":"UINT8","data":[1,256]}]})"),
              HasSubstr("input 'x': element 1 256 is out of range for UINT8"));
  EXPECT_THAT(DecodeError(R"({"inputs":[{"name":"x","shape":[1],"datatype":"INT8","data":[-129]}]})"),
              HasSubstr("-129 is out of range for INT8"));
  EXPECT_THAT(DecodeError(R"({"inputs":[{"name":"x","shape":[1],"datatype":"UINT32","data":[-1]}]})"),
              HasSubstr("-1 is out of range for UINT32"));
  EXPECT_THAT(DecodeError(
                  R"({"inputs":[{"name":"x","shape":[1],"datatype":"INT64","data":[9223372036854775808]}]})"),
              HasSubstr("9223372036854775808 is out of range for INT64"));
  EXPECT_THAT(DecodeError(R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1e39]}]})"),
              HasSubstr("out of range for FP32"));
}

TEST(DecodeInferRequestErrorTest, ValuesOfTheWrongKind) {
  EXPECT_THAT(DecodeError(R"({"inputs":[{"name":"x","shape":[1],"datatype":"INT32","data":[1.5]}]})"),
              HasSubstr("element 0 1.5 is not an integer; INT32 needs integers"));
  EXPECT_THAT(DecodeError(R"({"inputs":[{"name":"x","shape":[1],"datatype":"BOOL","data":[1]}]})"),
              HasSubstr("element 0 is an integer; BOOL needs true or false"));
  EXPECT_THAT(DecodeError(R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":["1"]}]})"),
              HasSubstr("is the string \"1\"; FP32 needs a number"));
  EXPECT_THAT(DecodeError(R"({"inputs":[{"name":"x","shape":[1],"datatype":"BYTES","data":[1]}]})"),
              HasSubstr("element 0 is an integer; BYTES needs strings"));
  EXPECT_THAT(DecodeError(R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP64","data":[null]}]})"),
              HasSubstr("is null; FP64 needs a number"));
}

TEST(DecodeInferRequestErrorTest, HalfPrecisionAsJsonData) {
  EXPECT_THAT(DecodeError(R"({"inputs":[{"name":"h","shape":[1],"datatype":"FP16","data":[1.0]}]})"),
              HasSubstr("input 'h': FP16 data cannot be sent as JSON"));
  EXPECT_THAT(DecodeError(R"({"inputs":[{"name":"h","shape":[1],"datatype":"BF16","data":[1.0]}]})"),
              HasSubstr("BF16 data cannot be sent as JSON"));
}

TEST(DecodeInferRequestErrorTest, DuplicateNames) {
  EXPECT_THAT(DecodeError(R"({"inputs":[{"name":"x","shape":[1],"datatype":"INT8","data":[1]},)"
                          R"({"name":"x","shape":[1],"datatype":"INT8","data":[2]}]})"),
              HasSubstr("input 'x' appears more than once"));
  EXPECT_THAT(DecodeError(R"({"inputs":[{"name":"x","shape":[1],"datatype":"INT8","data":[1]}],)"
                          R"("outputs":[{"name":"y"},{"name":"y"}]})"),
              HasSubstr("output 'y' is requested more than once"));
}

TEST(DecodeInferRequestErrorTest, DataAndBinaryDataSizeTogether) {
  EXPECT_THAT(DecodeError(R"({"inputs":[{"name":"x","shape":[1],"datatype":"INT8","data":[1],)"
                          R"("parameters":{"binary_data_size":1}}]})"),
              HasSubstr("input 'x' has both \"data\" and parameters.binary_data_size"));
}

TEST(DecodeInferRequestErrorTest, BadParameters) {
  const std::string input = R"("inputs":[{"name":"x","shape":[1],"datatype":"INT8","data":[1]}])";
  EXPECT_THAT(DecodeError(R"({"parameters":{"priority":-1},)" + input + "}"),
              HasSubstr("request parameter 'priority' is -1"));
  EXPECT_THAT(DecodeError(R"({"parameters":{"timeout":"soon"},)" + input + "}"),
              HasSubstr("request parameter 'timeout' must be a non-negative integer"));
  EXPECT_THAT(DecodeError(R"({"parameters":{"binary_data_output":1},)" + input + "}"),
              HasSubstr("request parameter 'binary_data_output' must be a boolean"));
  EXPECT_THAT(DecodeError(R"({"parameters":{"list":[1]},)" + input + "}"),
              HasSubstr("request parameter 'list' is an array"));
  EXPECT_THAT(DecodeError(R"({"parameters":[],)" + input + "}"),
              HasSubstr("request parameters must be an object"));
  EXPECT_THAT(DecodeError(R"({"id":5,)" + input + "}"), HasSubstr("\"id\" must be a string"));
  EXPECT_THAT(DecodeError(R"({"outputs":[{"name":"y","parameters":{"classification":-2}}],)" +
                          input + "}"),
              HasSubstr("output 'y' parameter 'classification' is -2"));
  EXPECT_THAT(DecodeError(R"({"outputs":[{"parameters":{}}],)" + input + "}"),
              HasSubstr("outputs[0] has no \"name\""));
}

// ---------------------------------------------------------------------------
// Raw binary bodies (Inference-Header-Content-Length: 0).

TEST(DecodeRawInferRequestTest, InfersTheVariableDimensionFromTheBodySize) {
  const float values[6] = {1, 2, 3, 4, 5, 6};
  auto body = std::make_shared<std::string>(reinterpret_cast<const char*>(values), sizeof(values));
  auto request = DecodeRawInferRequest(body->data(), body->size(),
                                       {"input", DataType::kFp32, {-1, 3}}, body, kNow);
  ASSERT_TRUE(request.ok()) << request.status();
  ASSERT_EQ(request->inputs.size(), 1u);
  const Tensor& x = request->inputs[0];
  EXPECT_EQ(x.name, "input");
  EXPECT_THAT(x.shape, ElementsAre(2, 3));
  EXPECT_EQ(reinterpret_cast<const char*>(x.data.data()), body->data());
  EXPECT_EQ(x.holder, body);
  EXPECT_TRUE(request->binary_data_output);
  EXPECT_EQ(request->arrival, kNow);
}

TEST(DecodeRawInferRequestTest, CountsBytesElementsForTheVariableDimension) {
  auto body = std::make_shared<std::string>(BinaryOf({"a", "bc", "def"}));
  auto request = DecodeRawInferRequest(body->data(), body->size(),
                                       {"text", DataType::kBytes, {-1}}, body, kNow);
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_THAT(request->inputs[0].shape, ElementsAre(3));
}

TEST(DecodeRawInferRequestTest, RejectsBodiesThatDoNotFitTheInput) {
  auto body = std::make_shared<std::string>(10, '\0');
  auto partial = DecodeRawInferRequest(body->data(), body->size(),
                                       {"x", DataType::kFp32, {-1, 2}}, body, kNow);
  EXPECT_EQ(partial.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(partial.status().message(), HasSubstr("10 bytes is not a whole number of FP32"));
  auto rows = DecodeRawInferRequest(body->data(), 12, {"x", DataType::kFp32, {-1, 2}}, body, kNow);
  EXPECT_THAT(rows.status().message(), HasSubstr("3 FP32 elements do not fit input 'x'"));
  auto fixed = DecodeRawInferRequest(body->data(), 8, {"x", DataType::kFp32, {3}}, body, kNow);
  EXPECT_THAT(fixed.status().message(), HasSubstr("needs 12 bytes, got 8"));
  auto two = DecodeRawInferRequest(body->data(), 8, {"x", DataType::kFp32, {-1, -1}}, body, kNow);
  EXPECT_THAT(two.status().message(), HasSubstr("more than one variable dimension"));
}

// ---------------------------------------------------------------------------
// Responses.

RequestedOutput Wanted(std::string name, bool binary_data, uint32_t classification) {
  RequestedOutput output;
  output.name = std::move(name);
  output.binary_data = binary_data;
  output.classification = classification;
  return output;
}

Tensor Fp32(std::string name, Shape shape, std::vector<float> values) {
  return MakeTensor<float>(std::move(name), DataType::kFp32, std::move(shape),
                           std::span<const float>(values));
}

TEST(EncodeInferResponseTest, WritesIdAndParametersOnlyWhenPresent) {
  InferResponse response;
  response.model_name = "resnet";
  response.model_version = "3";
  response.id = "req-\"1\"";
  response.parameters.Set("sequence_end", true);
  response.parameters.Set("count", int64_t{-4});
  response.parameters.Set("ratio", 0.5);
  response.parameters.Set("note", std::string("a\nb"));
  response.outputs.push_back(Fp32("y", {1}, {2.0f}));
  auto encoded = EncodeInferResponse(response, InferRequest{});
  ASSERT_TRUE(encoded.ok()) << encoded.status();
  EXPECT_EQ(encoded->json,
            R"({"model_name":"resnet","model_version":"3","id":"req-\"1\"",)"
            R"("parameters":{"sequence_end":true,"count":-4,"ratio":0.5,"note":"a\nb"},)"
            R"("outputs":[{"name":"y","datatype":"FP32","shape":[1],"data":[2.0]}]})");
  ExpectValidJson(encoded->json);

  response.id.clear();
  response.parameters = Parameters();
  encoded = EncodeInferResponse(response, InferRequest{});
  ASSERT_TRUE(encoded.ok());
  EXPECT_EQ(encoded->json, R"({"model_name":"resnet","model_version":"3","outputs":[)"
                           R"({"name":"y","datatype":"FP32","shape":[1],"data":[2.0]}]})");
}

TEST(EncodeInferResponseTest, IdAndParametersEchoFromDecodedRequest) {
  auto request = Decode(R"({"id":"abc","inputs":[{"name":"x","shape":[1],"datatype":"INT8","data":[1]}]})");
  ASSERT_TRUE(request.ok());
  InferResponse response;
  response.model_name = "m";
  response.id = request->id;
  response.outputs.push_back(request->inputs[0]);
  auto encoded = EncodeInferResponse(response, *request);
  ASSERT_TRUE(encoded.ok());
  EXPECT_THAT(encoded->json, HasSubstr(R"("id":"abc")"));
}

TEST(EncodeInferResponseTest, DataIsFlatRowMajor) {
  const std::string json =
      EncodeJson({MakeTensor<int32_t>("y", DataType::kInt32, {2, 2},
                                      std::vector<int32_t>{1, 2, 3, 4})});
  EXPECT_THAT(json, HasSubstr(R"("shape":[2,2],"data":[1,2,3,4])"));
}

TEST(EncodeInferResponseTest, BinaryOutputsPerOutputPointIntoTheTensors) {
  InferResponse response;
  response.model_name = "m";
  response.model_version = "1";
  response.outputs.push_back(Fp32("a", {2}, {1.0f, 2.0f}));
  response.outputs.push_back(Fp32("b", {1}, {3.0f}));
  response.outputs.push_back(MakeBytesTensor("c", {2}, std::vector<std::string>{"x", "yz"}));
  InferRequest request;
  request.outputs.push_back(Wanted("a", true, 0));
  request.outputs.push_back(Wanted("b", false, 0));
  request.outputs.push_back(Wanted("c", true, 0));
  auto encoded = EncodeInferResponse(response, request);
  ASSERT_TRUE(encoded.ok()) << encoded.status();
  EXPECT_EQ(encoded->json,
            R"({"model_name":"m","model_version":"1","outputs":[)"
            R"({"name":"a","datatype":"FP32","shape":[2],"parameters":{"binary_data_size":8}},)"
            R"({"name":"b","datatype":"FP32","shape":[1],"data":[3.0]},)"
            R"({"name":"c","datatype":"BYTES","shape":[2],"parameters":{"binary_data_size":11}}]})");
  ASSERT_TRUE(encoded->has_binary());
  ASSERT_EQ(encoded->binary.size(), 2u);
  EXPECT_EQ(encoded->binary[0].data(), response.outputs[0].data.data());
  EXPECT_EQ(encoded->binary[0].size(), 8u);
  EXPECT_EQ(encoded->binary[1].data(), response.outputs[2].data.data());
  EXPECT_EQ(encoded->binary_size, 19u);
}

TEST(EncodeInferResponseTest, BinaryDataOutputMakesEveryOutputBinary) {
  InferResponse response;
  response.outputs.push_back(Fp32("a", {1}, {1.0f}));
  response.outputs.push_back(MakeTensor<int64_t>("b", DataType::kInt64, {2},
                                                 std::vector<int64_t>{5, 6}));
  InferRequest request;
  request.binary_data_output = true;
  auto encoded = EncodeInferResponse(response, request);
  ASSERT_TRUE(encoded.ok());
  EXPECT_THAT(encoded->json, HasSubstr(R"("name":"a","datatype":"FP32","shape":[1],)"
                                       R"("parameters":{"binary_data_size":4}})"));
  EXPECT_THAT(encoded->json, HasSubstr(R"("parameters":{"binary_data_size":16}})"));
  EXPECT_THAT(encoded->json, ::testing::Not(HasSubstr("\"data\"")));
  ASSERT_EQ(encoded->binary.size(), 2u);
  EXPECT_EQ(encoded->binary[1].data(), response.outputs[1].data.data());
  EXPECT_EQ(encoded->binary_size, 20u);
}

TEST(EncodeInferResponseTest, WritesOnlyRequestedOutputsInRequestOrder) {
  InferRequest request;
  request.outputs.push_back(Wanted("c", false, 0));
  request.outputs.push_back(Wanted("a", false, 0));
  const std::string json = EncodeJson(
      {Fp32("a", {1}, {1.0f}), Fp32("b", {1}, {2.0f}), Fp32("c", {1}, {3.0f})}, request);
  EXPECT_EQ(json, R"({"model_name":"m","model_version":"1","outputs":[)"
                  R"({"name":"c","datatype":"FP32","shape":[1],"data":[3.0]},)"
                  R"({"name":"a","datatype":"FP32","shape":[1],"data":[1.0]}]})");
}

TEST(EncodeInferResponseTest, MissingRequestedOutputIsAnInternalError) {
  InferRequest request;
  request.outputs.push_back(Wanted("nope", false, 0));
  InferResponse response;
  response.outputs.push_back(Fp32("a", {1}, {1.0f}));
  auto encoded = EncodeInferResponse(response, request);
  EXPECT_EQ(encoded.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(encoded.status().message(), HasSubstr("'nope'"));
}

TEST(EncodeInferResponseTest, MalformedOutputTensorIsAnInternalError) {
  InferResponse response;
  Tensor bad = Fp32("a", {3}, {1.0f});
  response.outputs.push_back(bad);
  auto encoded = EncodeInferResponse(response, InferRequest{});
  EXPECT_EQ(encoded.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(encoded.status().message(), HasSubstr("output 'a'"));
}

TEST(EncodeInferResponseTest, FloatsUseShortestRoundTripFormAndStringsForNonFinite) {
  const std::string json = EncodeJson({Fp32(
      "y", {6},
      {0.1f, 1e-7f, 16777216.0f, std::numeric_limits<float>::quiet_NaN(),
       std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()})});
  ExpectValidJson(json);
  EXPECT_THAT(json, HasSubstr(R"("data":[0.1,1e-07,16777216.0,"NaN","Infinity","-Infinity"])"));
  // Every float written parses back to the same float.
  const std::vector<float> samples = {0.3f, 1.0f / 3.0f, 3.14159274f, 1e38f, 1.17549435e-38f,
                                      -2.5e-45f};
  const std::string many = EncodeJson({Fp32("z", {6}, samples)});
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  ASSERT_EQ(parser.parse(many).get(root), simdjson::SUCCESS);
  simdjson::dom::array data = root["outputs"].at(0)["data"].get_array().value();
  size_t i = 0;
  for (simdjson::dom::element value : data) {
    EXPECT_EQ(static_cast<float>(value.get_double().value()), samples[i]) << i;
    ++i;
  }
  EXPECT_EQ(i, samples.size());
}

// The encoder's fast float writer must write exactly what FormatJsonFloat
// (std::to_chars, core/json_writer.h) writes, for every kind of value.
template <typename F, typename Bits>
void ExpectEncodedLikeFormatJsonFloat(DataType type, const std::vector<F>& values) {
  Tensor tensor;
  tensor.name = "v";
  tensor.type = type;
  tensor.shape = {static_cast<int64_t>(values.size())};
  auto bytes = std::make_shared<std::vector<F>>(values);
  tensor.data = std::span<const std::byte>(reinterpret_cast<const std::byte*>(bytes->data()), values.size() * sizeof(F));
  tensor.holder = bytes;
  const std::string json = EncodeJson({tensor});
  std::string expected = "\"data\":[";
  char text[64];
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) expected.push_back(',');
    expected.append(text, FormatJsonFloat(values[i], text));
  }
  expected += "]";
  ASSERT_EQ(json.find(expected), json.size() - expected.size() - 3) << "first difference at byte "
      << std::mismatch(expected.begin(), expected.end(), json.begin() + json.find("\"data\":[")).first - expected.begin();
}

template <typename F, typename Bits>
std::vector<F> FloatSamples(size_t random_count) {
  std::vector<F> values;
  std::mt19937_64 rng(12345);
  for (size_t i = 0; i < random_count; ++i) {
    const Bits b = static_cast<Bits>(rng());
    F f;
    std::memcpy(&f, &b, sizeof(f));
    values.push_back(f);
  }
  std::uniform_real_distribution<F> unit(0, 1);
  for (size_t i = 0; i < random_count; ++i) values.push_back(unit(rng));  // Typical model outputs.
  for (int e = std::numeric_limits<F>::min_exponent10 - 10; e <= std::numeric_limits<F>::max_exponent10; ++e) {
    for (F m : {F(1), F(1.5), F(2.5), F(9.999), F(123456)}) {
      values.push_back(m * std::pow(F(10), F(e)));
      values.push_back(-m * std::pow(F(10), F(e)));
    }
  }
  for (F f : {F(0), -F(0), F(1), F(-1), F(100), F(1200), F(16777216), F(1e10), F(123456789),
              std::numeric_limits<F>::max(), std::numeric_limits<F>::lowest(), std::numeric_limits<F>::min(),
              std::numeric_limits<F>::denorm_min(), std::numeric_limits<F>::epsilon(),
              std::numeric_limits<F>::quiet_NaN(), std::numeric_limits<F>::infinity(),
              -std::numeric_limits<F>::infinity()}) {
    values.push_back(f);
  }
  for (int i = -2000; i <= 2000; ++i) values.push_back(F(i) / F(8));
  return values;
}

TEST(EncodeInferResponseTest, FastFloatWriterMatchesFormatJsonFloatForFp32) {
  ExpectEncodedLikeFormatJsonFloat<float, uint32_t>(DataType::kFp32, FloatSamples<float, uint32_t>(500000));
}

TEST(EncodeInferResponseTest, FastFloatWriterMatchesFormatJsonFloatForFp64) {
  ExpectEncodedLikeFormatJsonFloat<double, uint64_t>(DataType::kFp64, FloatSamples<double, uint64_t>(300000));
}

TEST(EncodeInferResponseTest, HalfPrecisionOutputsBecomeJsonNumbers) {
  // FP16: 1.0, -2.0, 0.5, 65504 (max), smallest subnormal 2^-24, +inf.
  const std::vector<uint16_t> half = {0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001, 0x7c00};
  // BF16: 1.0, -3.0, 0.15625.
  const std::vector<uint16_t> bf16 = {0x3f80, 0xc040, 0x3e20};
  const std::string json = EncodeJson(
      {MakeTensor<uint16_t>("h", DataType::kFp16, {6}, half),
       MakeTensor<uint16_t>("b", DataType::kBf16, {3}, bf16)});
  ExpectValidJson(json);
  EXPECT_THAT(json, HasSubstr(R"("datatype":"FP16","shape":[6],)"
                              R"("data":[1.0,-2.0,0.5,65504.0,5.9604645e-08,"Infinity"])"));
  EXPECT_THAT(json, HasSubstr(R"("datatype":"BF16","shape":[3],"data":[1.0,-3.0,0.15625])"));
  EXPECT_EQ(HalfToFloat(0x3555), 0.333251953125f);
  EXPECT_TRUE(std::isnan(HalfToFloat(0x7e00)));
  EXPECT_EQ(HalfToFloat(0x8000), -0.0f);
  EXPECT_TRUE(std::signbit(HalfToFloat(0x8000)));
  EXPECT_EQ(HalfToFloat(0x03ff), 0x3ffp-24f);  // Largest subnormal.
}

TEST(EncodeInferResponseTest, BytesOutputsAreEscapedAndAlwaysValidJson) {
  const std::vector<std::string> elements = {
      std::string("a\0b", 3),               // Embedded NUL.
      "quote\" back\\ tab\t",               // JSON escapes.
      "\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80",  // é 中 😀: valid UTF-8 passes through.
      "bad\xff\xc3",                        // Invalid byte and truncated sequence.
      "\xed\xa0\x80",                       // Encoded surrogate: not valid UTF-8.
      "\xc0\xaf",                           // Overlong encoding.
  };
  const std::string json = EncodeJson({MakeBytesTensor("s", {6}, elements)});
  ExpectValidJson(json);
  EXPECT_THAT(json, HasSubstr(
                        "\"data\":[\"a\\u0000b\",\"quote\\\" back\\\\ tab\\t\","
                        "\"\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80\",\"bad\\ufffd\\ufffd\","
                        "\"\\ufffd\\ufffd\\ufffd\",\"\\ufffd\\ufffd\"]"));
  // What a client reads back for the valid elements is the original bytes.
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  ASSERT_EQ(parser.parse(json).get(root), simdjson::SUCCESS);
  auto data = root["outputs"].at(0)["data"];
  EXPECT_EQ(std::string(data.at(0).get_string().value()), elements[0]);
  EXPECT_EQ(std::string(data.at(1).get_string().value()), elements[1]);
  EXPECT_EQ(std::string(data.at(2).get_string().value()), elements[2]);
}

TEST(EncodeInferResponseTest, ClassificationReturnsTopKAsBytes) {
  InferRequest request;
  request.outputs.push_back(Wanted("probs", false, 2));
  const std::string json =
      EncodeJson({Fp32("probs", {4}, {0.1f, 0.6f, 0.05f, 0.25f})}, request);
  EXPECT_EQ(json, R"({"model_name":"m","model_version":"1","outputs":[{"name":"probs",)"
                  R"("datatype":"BYTES","shape":[2],"data":["0.6:1","0.25:3"]}]})");
}

TEST(EncodeInferResponseTest, ClassificationRanksEachBatchRowWithLabels) {
  InferRequest request;
  request.outputs.push_back(Wanted("logits", false, 2));
  const std::vector<std::string> labels = {"cat", "dog"};  // No label for class 2.
  EncodeOptions options;
  options.labels = [&labels](std::string_view name) -> std::span<const std::string> {
    if (name == "logits") return labels;
    return {};
  };
  const std::string json = EncodeJson(
      {MakeTensor<int32_t>("logits", DataType::kInt32, {2, 3},
                           std::vector<int32_t>{5, 9, 9, 7, -1, 8})},
      request, options);
  // Ties go to the lower index.
  EXPECT_THAT(json, HasSubstr(R"("datatype":"BYTES","shape":[2,2],)"
                              R"("data":["9:1:dog","9:2","8:2","7:0:cat"])"));
}

TEST(EncodeInferResponseTest, ClassificationCanBeBinaryAndLimitsKToClassCount) {
  InferResponse response;
  response.outputs.push_back(Fp32("p", {2}, {0.25f, 0.75f}));
  InferRequest request;
  request.outputs.push_back(Wanted("p", true, 5));
  auto encoded = EncodeInferResponse(response, request);
  ASSERT_TRUE(encoded.ok()) << encoded.status();
  const std::string expected = BinaryOf({"0.75:1", "0.25:0"});
  EXPECT_THAT(encoded->json, HasSubstr(R"("datatype":"BYTES","shape":[2],"parameters":)"
                                       R"({"binary_data_size":)" +
                                       std::to_string(expected.size()) + "}"));
  ASSERT_EQ(encoded->binary.size(), 1u);
  EncodedResponse moved = std::move(*encoded);  // Spans stay valid across moves.
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(moved.binary[0].data()),
                        moved.binary[0].size()),
            expected);
}

TEST(EncodeInferResponseTest, ClassificationOfBytesOutputIsRejected) {
  InferResponse response;
  response.outputs.push_back(MakeBytesTensor("s", {1}, std::vector<std::string>{"x"}));
  InferRequest request;
  request.outputs.push_back(Wanted("s", false, 1));
  auto encoded = EncodeInferResponse(response, request);
  EXPECT_EQ(encoded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(encoded.status().message(), HasSubstr("output 's': classification needs a numeric"));
}

TEST(EncodeInferResponseTest, LargeOutputIsValidAndComplete) {
  std::vector<float> values(100000);
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i) * 0.37f - 5000.0f;
  const std::string json = EncodeJson({Fp32("y", {100, 1000}, values)});
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  ASSERT_EQ(parser.parse(json).get(root), simdjson::SUCCESS);
  simdjson::dom::array data = root["outputs"].at(0)["data"].get_array().value();
  ASSERT_EQ(data.size(), values.size());
  size_t i = 0;
  for (simdjson::dom::element value : data) {
    ASSERT_EQ(static_cast<float>(value.get_double().value()), values[i]) << i;
    ++i;
  }
}

// ---------------------------------------------------------------------------
// Errors and helpers.

TEST(EncodeErrorTest, EscapesTheMessage) {
  EXPECT_EQ(EncodeError("input 'x' \"bad\"\n"), R"({"error":"input 'x' \"bad\"\n"})");
  const std::string invalid = EncodeError("name \xff");
  EXPECT_EQ(invalid, R"({"error":"name \ufffd"})");
  ExpectValidJson(invalid);
}

TEST(JsonWriterTest, WriteJsonStringWorksAsKeyAndValue) {
  std::string out;
  JsonStringStream stream(&out);
  JsonWriter writer(stream);
  writer.StartObject();
  WriteJsonString(writer, "k\"1");
  WriteJsonString(writer, "v");
  writer.Key("n");
  writer.Int(3);
  writer.EndObject();
  EXPECT_EQ(out, R"({"k\"1":"v","n":3})");
}

}  // namespace
}  // namespace ortserve::frontend
