// SPDX-License-Identifier: Apache-2.0
#include "payload.h"

#include <gtest/gtest.h>

#include <cstring>

namespace ortserve::loadgen {
namespace {

TEST(GenerateInputsTest, LeadingVariableDimensionBecomesTheBatch) {
  GenerateOptions o;
  o.batch = 4;
  auto inputs = GenerateInputs({{"input_ids", "INT64", {-1, 128}}}, o);
  ASSERT_TRUE(inputs.ok()) << inputs.status();
  ASSERT_EQ(inputs->size(), 1u);
  EXPECT_EQ((*inputs)[0].shape, (std::vector<int64_t>{4, 128}));
  EXPECT_EQ((*inputs)[0].raw.size(), 4u * 128u * 8u);
}

TEST(GenerateInputsTest, IntegersStayInTheRequestedRange) {
  GenerateOptions o;
  o.int_min = 5;
  o.int_max = 9;
  auto inputs = GenerateInputs({{"x", "INT32", {1000}}}, o);
  ASSERT_TRUE(inputs.ok());
  for (size_t i = 0; i < 1000; ++i) {
    int32_t v;
    std::memcpy(&v, (*inputs)[0].raw.data() + 4 * i, 4);
    ASSERT_GE(v, 5);
    ASSERT_LE(v, 9);
  }
}

TEST(GenerateInputsTest, InnerVariableDimensionWithoutShapeIsAnErrorNamingTheInput) {
  auto inputs = GenerateInputs({{"image", "FP32", {-1, 3, -1, -1}}}, GenerateOptions{});
  ASSERT_FALSE(inputs.ok());
  EXPECT_NE(std::string(inputs.status().message()).find("image"), std::string::npos);
  GenerateOptions o;
  o.shape_overrides["image"] = {1, 3, 48, 320};
  inputs = GenerateInputs({{"image", "FP32", {-1, 3, -1, -1}}}, o);
  ASSERT_TRUE(inputs.ok());
  EXPECT_EQ((*inputs)[0].raw.size(), 3u * 48u * 320u * 4u);
}

TEST(ParseRequestJsonTest, NestedDataIsFlattenedAndCountChecked) {
  auto inputs = ParseRequestJson(
      R"({"inputs":[{"name":"a","shape":[2,2],"datatype":"FP32","data":[[1,2],[3,4.5]]},)"
      R"({"name":"s","shape":[1],"datatype":"BYTES","data":["hi"]}]})");
  ASSERT_TRUE(inputs.ok()) << inputs.status();
  float f[4];
  std::memcpy(f, (*inputs)[0].raw.data(), 16);
  EXPECT_EQ(f[3], 4.5f);
  EXPECT_EQ((*inputs)[1].strings, (std::vector<std::string>{"hi"}));
  EXPECT_FALSE(ParseRequestJson(R"({"inputs":[{"name":"a","shape":[3],"datatype":"INT32","data":[1,2]}]})").ok());
}

TEST(EncodeTest, JsonBodyRoundTripsThroughTheParser) {
  auto inputs = ParseRequestJson(
      R"({"inputs":[{"name":"ids","shape":[1,3],"datatype":"INT64","data":[1,-2,3]},)"
      R"({"name":"m","shape":[2],"datatype":"BOOL","data":[true,false]}]})");
  ASSERT_TRUE(inputs.ok());
  auto again = ParseRequestJson(EncodeJsonBody(*inputs));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ((*again)[0].raw, (*inputs)[0].raw);
  EXPECT_EQ((*again)[1].raw, (*inputs)[1].raw);
}

TEST(EncodeTest, BinaryBodyIsHeaderThenTensorBytesWithSizes) {
  auto inputs = ParseRequestJson(
      R"({"inputs":[{"name":"x","shape":[2],"datatype":"INT32","data":[7,8]},)"
      R"({"name":"s","shape":[1],"datatype":"BYTES","data":["abc"]}]})");
  ASSERT_TRUE(inputs.ok());
  BinaryBody b = EncodeBinaryBody(*inputs);
  const std::string header = b.body.substr(0, b.header_length);
  EXPECT_NE(header.find(R"("binary_data_size":8)"), std::string::npos) << header;
  EXPECT_NE(header.find(R"("binary_data_size":7)"), std::string::npos) << header;
  EXPECT_NE(header.find(R"("binary_data_output":true)"), std::string::npos);
  ASSERT_EQ(b.body.size(), b.header_length + 8 + 7);
  const std::string tail = b.body.substr(b.header_length);
  int32_t first;
  std::memcpy(&first, tail.data(), 4);
  EXPECT_EQ(first, 7);
  EXPECT_EQ(tail.substr(8), std::string("\x03\x00\x00\x00" "abc", 7));
}

TEST(ParseMetadataJsonTest, ReadsInputsAndRejectsDocumentsWithout) {
  auto meta = ParseMetadataJson(R"({"name":"m","inputs":[{"name":"x","datatype":"FP32","shape":[-1,4]}]})");
  ASSERT_TRUE(meta.ok());
  EXPECT_EQ((*meta)[0].shape, (std::vector<int64_t>{-1, 4}));
  EXPECT_FALSE(ParseMetadataJson(R"({"error":"unknown model"})").ok());
}

}  // namespace
}  // namespace ortserve::loadgen
