// SPDX-License-Identifier: Apache-2.0
#include "scheduler/batch_builder.h"

#include <cstring>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "fakes/fake_session.h"
#include "unit/scheduler/test_util.h"

namespace ortserve::scheduler {
namespace {

using ::testing::ElementsAre;

uint16_t Bits16(const PadElement& pad) {
  uint16_t bits;
  std::memcpy(&bits, pad.bytes.data(), 2);
  return bits;
}

TEST(PadElementTest, CastsPadValueToTheElementType) {
  EXPECT_EQ(MakePadElement(DataType::kFp16, 1.0).size, 2u);
  EXPECT_EQ(Bits16(MakePadElement(DataType::kFp16, 1.0)), 0x3c00);
  EXPECT_EQ(Bits16(MakePadElement(DataType::kFp16, -2.0)), 0xc000);
  EXPECT_EQ(Bits16(MakePadElement(DataType::kFp16, 65504.0)), 0x7bff);
  EXPECT_EQ(Bits16(MakePadElement(DataType::kFp16, 1e6)), 0x7c00);        // Infinity.
  EXPECT_EQ(Bits16(MakePadElement(DataType::kFp16, 5.960464477539063e-08)), 0x0001);  // Smallest subnormal.
  EXPECT_EQ(Bits16(MakePadElement(DataType::kBf16, 1.0)), 0x3f80);
  EXPECT_EQ(static_cast<int8_t>(MakePadElement(DataType::kInt8, -300).bytes[0]), -128);  // Saturates.
  EXPECT_EQ(MakePadElement(DataType::kBool, 2).bytes[0], std::byte{1});
  int64_t i64;
  std::memcpy(&i64, MakePadElement(DataType::kInt64, -7).bytes.data(), 8);
  EXPECT_EQ(i64, -7);
  EXPECT_EQ(MakePadElement(DataType::kBytes, 0).size, 0u);
}

TEST(BatchInputBuilderTest, PadsEveryNonBatchDimensionOfRankThreeInputs) {
  auto a = test::MakeFloatRequest("a", {1, 1, 2}, {1, 2});
  auto b = test::MakeFloatRequest("b", {1, 2, 1}, {3, 4});
  ASSERT_TRUE(CanBatch(*a, *b, /*pad=*/true));
  ASSERT_FALSE(CanBatch(*a, *b, /*pad=*/false));
  BatchInputBuilder builder;
  const InferRequest* requests[] = {a.get(), b.get()};
  ASSERT_TRUE(builder.Build(requests, {.pad = true, .pad_value = 9}).ok());
  ASSERT_EQ(builder.tensors().size(), 1u);
  const Tensor& batch = builder.tensors()[0];
  EXPECT_EQ(batch.shape, Shape({2, 2, 2}));
  EXPECT_THAT(test::Floats(batch), ElementsAre(1, 2, 9, 9, 3, 9, 4, 9));
}

TEST(BatchInputBuilderTest, ReusesItsBufferForTheSameShape) {
  auto a = test::MakeFloatRequest("a", {2, 2}, {1, 2, 3, 4});
  auto b = test::MakeFloatRequest("b", {1, 2}, {5, 6});
  BatchInputBuilder builder;
  const InferRequest* requests[] = {a.get(), b.get()};
  ASSERT_TRUE(builder.Build(requests, {}).ok());
  const std::byte* first = builder.tensors()[0].data.data();
  EXPECT_THAT(test::Floats(builder.tensors()[0]), ElementsAre(1, 2, 3, 4, 5, 6));
  const InferRequest* swapped[] = {b.get(), a.get()};
  ASSERT_TRUE(builder.Build(swapped, {}).ok());
  EXPECT_EQ(builder.tensors()[0].data.data(), first);
  EXPECT_THAT(test::Floats(builder.tensors()[0]), ElementsAre(5, 6, 1, 2, 3, 4));
}

TEST(BatchInputBuilderTest, TakesItsBuffersFromTheSessionAndGivesThemBack) {
  ortserve::testing::FakeSession session(
      ortserve::testing::MakeSignature({{"INPUT0", DataType::kFp32, {-1, 2}}}, {}));
  auto a = test::MakeFloatRequest("a", {2, 2}, {1, 2, 3, 4});
  auto b = test::MakeFloatRequest("b", {1, 2}, {5, 6});
  {
    BatchInputBuilder builder(&session);
    builder.Reserve(session.signature().inputs, /*max_rows=*/4);
    EXPECT_EQ(session.host_buffers_allocated(), 1);  // Room for 4 rows, up front.
    const InferRequest* requests[] = {a.get(), b.get()};
    ASSERT_TRUE(builder.Build(requests, {.max_rows = 4}).ok());
    EXPECT_THAT(test::Floats(builder.tensors()[0]), ElementsAre(1, 2, 3, 4, 5, 6));
    const InferRequest* more[] = {a.get(), a.get()};
    ASSERT_TRUE(builder.Build(more, {.max_rows = 4}).ok());
    EXPECT_EQ(session.host_buffers_allocated(), 1);
    const InferRequest* over[] = {a.get(), a.get(), b.get()};  // 5 rows: past the reservation.
    ASSERT_TRUE(builder.Build(over, {.max_rows = 4}).ok());
    EXPECT_THAT(test::Floats(builder.tensors()[0]), ElementsAre(1, 2, 3, 4, 1, 2, 3, 4, 5, 6));
    EXPECT_EQ(session.host_buffers_allocated(), 2);
    EXPECT_EQ(session.host_buffers_alive(), 1);  // The smaller one went back.
  }
  EXPECT_EQ(session.host_buffers_alive(), 0);
}

// Issue #14's remote crash: a zero-size request with a huge dimension and a
// small one, padded together, made the batch's byte count wrap, so the
// builder allocated a few bytes and copied far past them.
TEST(BatchInputBuilderTest, RefusesAPaddedBatchWhoseSizeWouldOverflow) {
  auto huge = test::MakeFloatRequest("huge", {1, 0, int64_t{1} << 40}, {});
  auto small = test::MakeFloatRequest("small", {1, 3, 1}, {1, 2, 3});
  BatchInputBuilder builder;
  const InferRequest* requests[] = {small.get(), huge.get()};
  const absl::Status status = builder.Build(requests, {.pad = true});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), ::testing::HasSubstr("max_padded_batch_bytes"));
}

TEST(BatchInputBuilderTest, RefusesAPaddedBatchOverItsByteBound) {
  // Each 4 KB; padded together, [2, 1024, 1024] FP32 = 8 MiB.
  auto wide = test::MakeFloatRequest("wide", {1, 1, 1024}, std::vector<float>(1024, 1));
  auto tall = test::MakeFloatRequest("tall", {1, 1024, 1}, std::vector<float>(1024, 2));
  BatchInputBuilder builder;
  const InferRequest* requests[] = {wide.get(), tall.get()};
  EXPECT_EQ(builder.Build(requests, {.pad = true, .max_padded_bytes = 1 << 20}).code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(builder.Build(requests, {.pad = true, .max_padded_bytes = 8 << 20}).ok());
  EXPECT_EQ(builder.tensors()[0].shape, Shape({2, 1024, 1024}));
}

TEST(BatchInputBuilderTest, RefusesBytesThatDoNotMatchAPaddedShape) {
  auto a = test::MakeFloatRequest("a", {1, 2}, {1, 2});
  auto lying = test::MakeFloatRequest("lying", {1, 3}, {1, 2});  // 8 bytes for 3 floats.
  BatchInputBuilder builder;
  const InferRequest* requests[] = {a.get(), lying.get()};
  EXPECT_EQ(builder.Build(requests, {.pad = true}).code(), absl::StatusCode::kInvalidArgument);
}

TEST(PaddedBatchShapeTest, LetsARequestJoinOnlyWhileThePaddedBatchFits) {
  auto wide = test::MakeFloatRequest("wide", {1, 1, 1024}, std::vector<float>(1024, 1));
  auto tall = test::MakeFloatRequest("tall", {1, 1024, 1}, std::vector<float>(1024, 2));
  auto huge = test::MakeFloatRequest("huge", {1, 0, int64_t{1} << 40}, {});
  PaddedBatchShape shape;
  ASSERT_TRUE(shape.Start(*wide, 1 << 20));
  EXPECT_FALSE(shape.TryJoin(*tall, 1 << 20));  // 8 MiB padded.
  EXPECT_FALSE(shape.TryJoin(*huge, 1 << 20));  // Overflows 64 bits.
  EXPECT_TRUE(shape.TryJoin(*wide, 1 << 20));   // Same shape: 8 KB.
  ASSERT_TRUE(shape.Start(*tall, 8 << 20));
  EXPECT_TRUE(shape.TryJoin(*wide, 8 << 20));
  EXPECT_FALSE(shape.TryJoin(*wide, 8 << 20));  // A third row: 12 MiB.
}

TEST(BatchRowsTest, RejectsInputsThatDisagreeOnTheBatchSize) {
  auto request = test::MakeFloatRequest("a", {2, 1}, {1, 2});
  request->inputs.push_back(MakeTensor<float>("INPUT1", DataType::kFp32, {3, 1}, std::vector<float>{1, 2, 3}));
  auto rows = BatchRows(*request);
  EXPECT_EQ(rows.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(rows.status().message()).find("INPUT1"), std::string::npos);
}

TEST(SliceRowsTest, RejectsAnOutputWithoutTheBatchDimension) {
  Tensor output = MakeTensor<float>("OUT", DataType::kFp32, {3}, std::vector<float>{1, 2, 3});
  Tensor slice;
  EXPECT_EQ(SliceRows(output, 2, 0, 1, &slice).code(), absl::StatusCode::kInternal);
}

}  // namespace
}  // namespace ortserve::scheduler
