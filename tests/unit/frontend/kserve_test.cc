// SPDX-License-Identifier: Apache-2.0
// The protocol-neutral KServe layer (frontend/kserve/): reserved parameters,
// output selection and the classification extension.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "frontend/kserve/classification.h"
#include "frontend/kserve/reserved_parameters.h"
#include "frontend/kserve/response_outputs.h"

namespace ortserve::frontend {
namespace {

using ::testing::HasSubstr;

// ---------------------------------------------------------------------------
// Classification.

struct Classified {
  std::vector<std::string> elements;
  Shape shape;
};

Classified Ranked(const Tensor& tensor, uint32_t k, std::vector<std::string> labels = {}) {
  Classified out;
  std::vector<std::byte> bytes;
  absl::Status status = Classify(tensor, k, labels, &bytes, &out.shape);
  EXPECT_TRUE(status.ok()) << status;
  auto split = SplitBytesElements(bytes, -1, tensor.name);
  EXPECT_TRUE(split.ok()) << split.status();
  if (split.ok()) out.elements.assign(split->begin(), split->end());
  return out;
}

Tensor Fp32(Shape shape, std::vector<float> values) {
  return MakeTensor<float>("scores", DataType::kFp32, std::move(shape), values);
}

TEST(ClassifyTest, RanksHighestFirstAndBreaksTiesByLowerIndex) {
  const Classified c = Ranked(Fp32({5}, {0.1f, 0.5f, 0.2f, 0.5f, 0.5f}), 4);
  EXPECT_EQ(c.elements, (std::vector<std::string>{"0.5:1", "0.5:3", "0.5:4", "0.2:2"}));
  EXPECT_EQ(c.shape, (Shape{4}));
}

TEST(ClassifyTest, KLargerThanTheClassesGivesEveryClass) {
  const Classified c = Ranked(Fp32({3}, {1.0f, 3.0f, 2.0f}), 1000);
  EXPECT_EQ(c.elements, (std::vector<std::string>{"3:1", "2:2", "1:0"}));
  EXPECT_EQ(c.shape, (Shape{3}));
}

TEST(ClassifyTest, RankOneRanksTheWholeTensorAndRankZeroIsOneClass) {
  EXPECT_EQ(Ranked(Fp32({4}, {4, 3, 2, 1}), 2).shape, (Shape{2}));
  const Classified scalar = Ranked(Fp32({}, {7.5f}), 3);
  EXPECT_EQ(scalar.elements, (std::vector<std::string>{"7.5:0"}));
  EXPECT_EQ(scalar.shape, (Shape{1}));
}

TEST(ClassifyTest, RankTwoRanksEachBatchRowSeparately) {
  const Classified c = Ranked(Fp32({2, 3}, {0.1f, 0.7f, 0.2f, 0.6f, 0.3f, 0.1f}), 2);
  EXPECT_EQ(c.elements, (std::vector<std::string>{"0.7:1", "0.2:2", "0.6:0", "0.3:1"}));
  EXPECT_EQ(c.shape, (Shape{2, 2}));
}

TEST(ClassifyTest, HigherRanksFlattenEverythingAfterTheBatchDimension) {
  const Classified c = Ranked(Fp32({2, 2, 2}, {1, 2, 3, 4, 8, 7, 6, 5}), 1);
  EXPECT_EQ(c.elements, (std::vector<std::string>{"4:3", "8:0"}));
  EXPECT_EQ(c.shape, (Shape{2, 1}));
}

TEST(ClassifyTest, AnEmptyBatchGivesAnEmptyResult) {
  const Classified c = Ranked(Fp32({0, 3}, {}), 2);
  EXPECT_TRUE(c.elements.empty());
  EXPECT_EQ(c.shape, (Shape{0, 0}));
}

TEST(ClassifyTest, LabelsAreAppendedWhereTheOutputHasOne) {
  const Classified c = Ranked(Fp32({3}, {0.2f, 0.3f, 0.5f}), 3, {"cat", "dog"});
  EXPECT_EQ(c.elements, (std::vector<std::string>{"0.5:2", "0.3:1:dog", "0.2:0:cat"}));
}

TEST(ClassifyTest, NanRanksAfterEveryNumber) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const Classified c = Ranked(Fp32({4}, {nan, -INFINITY, 1.0f, nan}), 4);
  EXPECT_EQ(c.elements, (std::vector<std::string>{"1:2", "-inf:1", "nan:0", "nan:3"}));
}

TEST(ClassifyTest, ScoresAreWrittenInTheirOwnTypesShortestForm) {
  const std::vector<int64_t> ints = {-9000000000000000000, 5};
  EXPECT_EQ(Ranked(MakeTensor<int64_t>("i", DataType::kInt64, {2}, ints), 1).elements,
            (std::vector<std::string>{"5:1"}));
  EXPECT_EQ(Ranked(MakeTensor<int64_t>("i", DataType::kInt64, {2}, ints), 2).elements[1], "-9000000000000000000:0");
  const std::vector<uint16_t> half = {0x3c00, 0x3555};  // 1.0 and 0.333251953125.
  EXPECT_EQ(Ranked(MakeTensor<uint16_t>("h", DataType::kFp16, {2}, half), 2).elements,
            (std::vector<std::string>{"1:0", "0.33325195:1"}));
  const std::vector<double> doubles = {0.1};
  EXPECT_EQ(Ranked(MakeTensor<double>("d", DataType::kFp64, {1}, doubles), 1).elements,
            (std::vector<std::string>{"0.1:0"}));
  const std::vector<uint8_t> bools = {0, 1};
  EXPECT_EQ(Ranked(MakeTensor<uint8_t>("b", DataType::kBool, {2}, bools), 2).elements,
            (std::vector<std::string>{"1:1", "0:0"}));
}

TEST(ClassifyTest, ReplacesTheOutputBuffersRatherThanAppending) {
  std::vector<std::byte> bytes;
  Shape shape;
  ASSERT_TRUE(Classify(Fp32({2}, {1, 2}), 2, {}, &bytes, &shape).ok());
  ASSERT_TRUE(Classify(Fp32({1}, {3}), 1, {}, &bytes, &shape).ok());
  auto split = SplitBytesElements(bytes, -1, "scores");
  ASSERT_TRUE(split.ok());
  EXPECT_EQ(*split, (std::vector<std::string_view>{"3:0"}));
  EXPECT_EQ(shape, (Shape{1}));
}

TEST(ClassifyTest, BytesOutputIsInvalidArgumentAndAMalformedOneInternal) {
  std::vector<std::byte> bytes;
  Shape shape;
  const std::vector<std::string> strings = {"a"};
  absl::Status status = Classify(MakeBytesTensor("text", {1}, strings), 1, {}, &bytes, &shape);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("output 'text'"));
  Tensor short_tensor = Fp32({2}, {1, 2});
  short_tensor.shape = {3};  // 8 bytes for 3 FP32 elements.
  status = Classify(short_tensor, 1, {}, &bytes, &shape);
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(status.message()), HasSubstr("output 'scores'"));
}

// ---------------------------------------------------------------------------
// Reserved parameters.

TEST(UnsignedParameterTest, AcceptsZeroToMaxAndNamesWhereAndKeyOtherwise) {
  Parameters p;
  EXPECT_EQ(*UnsignedParameter(p, "k", "request", 10), std::nullopt);
  p.Set("k", int64_t{0});
  EXPECT_EQ(*UnsignedParameter(p, "k", "request", 10), 0u);
  p.Set("k", int64_t{10});
  EXPECT_EQ(*UnsignedParameter(p, "k", "request", 10), 10u);
  p.Set("k", uint64_t{10});
  EXPECT_EQ(*UnsignedParameter(p, "k", "request", 10), 10u);
  for (ParameterValue bad : {ParameterValue(int64_t{11}), ParameterValue(int64_t{-1}), ParameterValue(uint64_t{11}),
                             ParameterValue(1.0), ParameterValue(true), ParameterValue(std::string("1"))}) {
    p.Set("k", bad);
    auto result = UnsignedParameter(p, "k", "output 'y'", 10);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(result.status().message()), HasSubstr("output 'y' parameter 'k'"));
  }
  p.Set("k", uint64_t{std::numeric_limits<uint64_t>::max()});
  EXPECT_EQ(*UnsignedParameter(p, "k", "request", std::numeric_limits<uint64_t>::max()),
            std::numeric_limits<uint64_t>::max());
}

TEST(BoolParameterTest, IsFalseWhenAbsentAndRejectsOtherKinds) {
  Parameters p;
  EXPECT_FALSE(*BoolParameter(p, "b", "request"));
  p.Set("b", true);
  EXPECT_TRUE(*BoolParameter(p, "b", "request"));
  p.Set("b", int64_t{1});
  EXPECT_EQ(BoolParameter(p, "b", "request").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ReadRequestParametersTest, SetsPriorityDeadlineAndBinaryOutput) {
  const absl::Time now = absl::FromUnixSeconds(100);
  InferRequest request;
  request.parameters.Set("priority", int64_t{4294967295});
  request.parameters.Set("timeout", uint64_t{2500});
  request.parameters.Set("binary_data_output", true);
  request.parameters.Set("custom", std::string("kept"));
  ASSERT_TRUE(ReadRequestParameters(now, &request).ok());
  EXPECT_EQ(request.priority, 4294967295u);
  EXPECT_EQ(request.deadline, now + absl::Microseconds(2500));
  EXPECT_TRUE(request.binary_data_output);
  EXPECT_EQ(request.parameters.size(), 4u);  // Reserved or not, every parameter stays.
}

TEST(ReadRequestParametersTest, AbsentOrZeroLeavesTheDefaults) {
  InferRequest request;
  ASSERT_TRUE(ReadRequestParameters(absl::FromUnixSeconds(1), &request).ok());
  EXPECT_EQ(request.priority, 0u);
  EXPECT_EQ(request.deadline, absl::InfiniteFuture());
  EXPECT_FALSE(request.binary_data_output);
  request.parameters.Set("timeout", int64_t{0});
  ASSERT_TRUE(ReadRequestParameters(absl::FromUnixSeconds(1), &request).ok());
  EXPECT_EQ(request.deadline, absl::InfiniteFuture());
  request.binary_data_output = true;  // What gRPC sets; an absent parameter keeps it.
  ASSERT_TRUE(ReadRequestParameters(absl::FromUnixSeconds(1), &request).ok());
  EXPECT_TRUE(request.binary_data_output);
}

TEST(ReadRequestParametersTest, RejectsValuesOutOfBoundsNamingTheParameter) {
  struct Case {
    const char* key;
    ParameterValue value;
  };
  const Case cases[] = {
      {"priority", int64_t{4294967296}},
      {"priority", int64_t{-1}},
      {"timeout", uint64_t{uint64_t{1} << 63}},  // Past INT64_MAX microseconds.
      {"timeout", 1.5},
      {"binary_data_output", std::string("true")},
  };
  for (const Case& c : cases) {
    InferRequest request;
    request.parameters.Set(c.key, c.value);
    absl::Status status = ReadRequestParameters(absl::FromUnixSeconds(1), &request);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.key;
    EXPECT_THAT(std::string(status.message()), HasSubstr(std::string("request parameter '") + c.key + "'"));
  }
  InferRequest longest;
  longest.parameters.Set("timeout", int64_t{std::numeric_limits<int64_t>::max()});
  ASSERT_TRUE(ReadRequestParameters(absl::FromUnixSeconds(1), &longest).ok());
  EXPECT_GT(longest.deadline, absl::FromUnixSeconds(1) + absl::Hours(24 * 365 * 1000));
}

TEST(ReadOutputParametersTest, ReadsBinaryDataAndClassificationWithinBounds) {
  RequestedOutput output;
  output.name = "probs";
  output.parameters.Set("classification", int64_t{3});
  output.parameters.Set("binary_data", true);
  ASSERT_TRUE(ReadOutputParameters(&output).ok());
  EXPECT_EQ(output.classification, 3u);
  EXPECT_TRUE(output.binary_data);
  output.parameters.Set("classification", int64_t{4294967296});
  absl::Status status = ReadOutputParameters(&output);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("output 'probs' parameter 'classification'"));
  output.parameters.Set("classification", int64_t{1});
  output.parameters.Set("binary_data", int64_t{1});
  EXPECT_EQ(ReadOutputParameters(&output).code(), absl::StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------
// Output selection.

InferResponse TwoOutputs() {
  InferResponse response;
  response.outputs.push_back(Fp32({1}, {1}));
  response.outputs[0].name = "a";
  response.outputs.push_back(Fp32({1}, {2}));
  response.outputs[1].name = "b";
  return response;
}

TEST(SelectOutputsTest, NoRequestedOutputsMeansEveryOutputInResponseOrder) {
  const InferResponse response = TwoOutputs();
  InferRequest request;
  request.binary_data_output = true;
  SelectedOutputs selected;
  ASSERT_TRUE(SelectOutputs(response, request, &selected).ok());
  ASSERT_EQ(selected.size(), 2u);
  EXPECT_EQ(selected[0].tensor, &response.outputs[0]);
  EXPECT_EQ(selected[1].tensor, &response.outputs[1]);
  EXPECT_TRUE(selected[0].binary && selected[1].binary);
  EXPECT_EQ(selected[0].requested, nullptr);
}

TEST(SelectOutputsTest, RequestedOutputsComeInRequestOrderWithTheirEncoding) {
  const InferResponse response = TwoOutputs();
  InferRequest request;
  request.outputs.resize(2);
  request.outputs[0].name = "b";
  request.outputs[0].classification = 2;
  request.outputs[1].name = "a";
  request.outputs[1].binary_data = true;
  SelectedOutputs selected;
  ASSERT_TRUE(SelectOutputs(response, request, &selected).ok());
  ASSERT_EQ(selected.size(), 2u);
  EXPECT_EQ(selected[0].tensor->name, "b");
  EXPECT_FALSE(selected[0].binary);
  EXPECT_EQ(selected[0].classification, 2u);
  EXPECT_EQ(selected[0].requested, &request.outputs[0]);
  EXPECT_EQ(selected[1].tensor->name, "a");
  EXPECT_TRUE(selected[1].binary);
}

TEST(SelectOutputsTest, AMissingRequestedOutputIsInternalNamingIt) {
  InferRequest request;
  request.outputs.resize(1);
  request.outputs[0].name = "gone";
  SelectedOutputs selected;
  absl::Status status = SelectOutputs(TwoOutputs(), request, &selected);
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(status.message()), HasSubstr("'gone'"));
}

}  // namespace
}  // namespace ortserve::frontend
