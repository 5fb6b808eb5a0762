// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include "core/data_type.h"
#include "core/parameters.h"
#include "core/strings.h"
#include "core/checked_math.h"
#include "core/tensor.h"

namespace ortserve {
namespace {

TEST(DataTypeTest, NamesRoundTripForEveryType) {
  for (DataType t : {DataType::kBool, DataType::kUint8, DataType::kUint16, DataType::kUint32, DataType::kUint64,
                     DataType::kInt8, DataType::kInt16, DataType::kInt32, DataType::kInt64, DataType::kFp16,
                     DataType::kBf16, DataType::kFp32, DataType::kFp64, DataType::kBytes}) {
    EXPECT_EQ(DataTypeFromName(DataTypeName(t)), t) << DataTypeName(t);
    EXPECT_EQ(DataTypeFromConfigName(DataTypeConfigName(t)), t) << DataTypeConfigName(t);
  }
  EXPECT_EQ(DataTypeFromName("fp32"), std::nullopt);  // The protocol is case-sensitive.
  EXPECT_EQ(DataTypeFromConfigName("TYPE_STRING"), DataType::kBytes);
  EXPECT_EQ(DataTypeSize(DataType::kFp16), 2u);
  EXPECT_EQ(DataTypeSize(DataType::kInt64), 8u);
  EXPECT_EQ(DataTypeSize(DataType::kBytes), 0u);
}

TEST(TensorTest, ElementCountRejectsNegativeAndOverflowingShapes) {
  EXPECT_EQ(*ElementCount(Shape{2, 3, 4}), 24);
  EXPECT_EQ(*ElementCount(Shape{}), 1);  // A scalar.
  EXPECT_EQ(*ElementCount(Shape{0, 5}), 0);
  EXPECT_FALSE(ElementCount(Shape{2, -1}).ok());
  EXPECT_FALSE(ElementCount(Shape{1LL << 40, 1LL << 40}).ok());
  // No elements, but dimensions that overflow any product they enter.
  EXPECT_FALSE(ElementCount(Shape{0, 1LL << 62}).ok());
  EXPECT_FALSE(ElementCount(Shape{1LL << 62, 0, 4}).ok());
  EXPECT_EQ(*ElementCount(Shape{0, 1LL << 40}), 0);  // At the bound.
  EXPECT_FALSE(ElementCount(Shape{2, 0, 1LL << 40}).ok());
}

// Issue #14: 2^61 INT64 elements are 2^64 bytes, which wrapped to 0 and so
// "matched" an empty body.
TEST(TensorTest, ValidateRefusesAShapeWhoseByteCountWraps) {
  Tensor t;
  t.name = "x";
  t.type = DataType::kInt64;
  t.shape = Shape{1LL << 61};
  EXPECT_EQ(ValidateTensorBytes(t).code(), absl::StatusCode::kInvalidArgument);
  t.shape = Shape{1LL << 20, 1LL << 20};  // 2^40 elements: 8 TiB, not 0.
  const absl::Status status = ValidateTensorBytes(t);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(status.message()).find("needs 8796093022208 bytes, got 0"), std::string::npos) << status;
}

TEST(CheckedMathTest, ReportsOverflowInsteadOfWrapping) {
  EXPECT_EQ(CheckedMul<uint64_t>(uint64_t{1} << 61, 8), std::nullopt);
  EXPECT_EQ(CheckedMul<uint64_t>(uint64_t{1} << 60, 8), uint64_t{1} << 63);
  EXPECT_EQ(CheckedAdd<int64_t>(INT64_MAX, 1), std::nullopt);
  EXPECT_EQ(CheckedAdd<size_t>(2, 3), size_t{5});
}

TEST(TensorTest, BytesElementsRoundTripIncludingEmbeddedNul) {
  const std::vector<std::string> values = {"", "héllo", std::string("a\0b", 3)};
  Tensor t = MakeBytesTensor("s", Shape{3}, values);
  auto split = SplitBytesElements(t.data, 3, "s");
  ASSERT_TRUE(split.ok()) << split.status();
  ASSERT_EQ(split->size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ((*split)[i], values[i]);
  EXPECT_TRUE(ValidateTensorBytes(t).ok());
}

TEST(TensorTest, MalformedBytesNameTheTensor) {
  std::vector<std::byte> bytes = {std::byte{9}, std::byte{0}, std::byte{0}, std::byte{0}, std::byte{'x'}};
  auto split = SplitBytesElements(bytes, -1, "text");
  ASSERT_FALSE(split.ok());
  EXPECT_NE(std::string(split.status().message()).find("text"), std::string::npos);
  Tensor t = MakeBytesTensor("s", Shape{2}, std::vector<std::string>{"one"});
  auto status = ValidateTensorBytes(t);
  EXPECT_FALSE(status.ok());
  EXPECT_NE(std::string(status.message()).find("shape needs 2"), std::string::npos) << status;
}

TEST(TensorTest, ValidateChecksByteSizeAgainstShape) {
  const float values[] = {1, 2, 3};
  Tensor t = MakeTensor<float>("x", DataType::kFp32, Shape{2, 2}, values);
  auto status = ValidateTensorBytes(t);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(std::string(status.message()).find("needs 16 bytes, got 12"), std::string::npos) << status;
  t.shape = Shape{3};
  EXPECT_TRUE(ValidateTensorBytes(t).ok());
}

TEST(TensorTest, CopiesShareBytesNotDuplicateThem) {
  const int32_t values[] = {7, 8};
  Tensor a = MakeTensor<int32_t>("a", DataType::kInt32, Shape{2}, values);
  Tensor b = a;
  EXPECT_EQ(a.data.data(), b.data.data());
  a = Tensor();
  EXPECT_EQ(b.values<int32_t>()[1], 8);  // The holder keeps the bytes alive.
}

TEST(ParametersTest, KeepsWireOrderAndReplacesValues) {
  Parameters p;
  p.Set("b", int64_t{1});
  p.Set("a", std::string("x"));
  p.Set("b", true);
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p.begin()->first, "b");
  EXPECT_EQ(p.FindBool("b"), true);
  EXPECT_EQ(p.FindInt("b"), std::nullopt);
  p.Set("n", uint64_t{5});
  EXPECT_EQ(p.FindInt("n"), 5);
  EXPECT_TRUE(p.Erase("a"));
  EXPECT_EQ(p.Find("a"), nullptr);
}

TEST(StringsTest, StrCatTakesViewsNumbersAndBools) {
  std::string_view view = "v";
  EXPECT_EQ(StrCat("a", view, 3, '-', 2.5, true, std::string("s")), "av3-2.5trues");
  std::vector<int64_t> dims = {1, -1, 3};
  EXPECT_EQ(StrJoin(dims, ","), "1,-1,3");
}

}  // namespace
}  // namespace ortserve
