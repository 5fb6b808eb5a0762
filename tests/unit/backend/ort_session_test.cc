// SPDX-License-Identifier: Apache-2.0
// The ONNX Runtime backend on real sessions: models generated with Debian's
// python3-onnx into a temporary folder.
#include "backend/ort/ort_session_factory.h"

#include <gtest/gtest.h>

#include <cstring>
#include <thread>

#include "absl/synchronization/notification.h"
#include "integration/server_harness.h"

namespace ortserve::backend {
namespace {

using ortserve::testing::RunPython;
using ortserve::testing::TempDir;

class OrtSessionTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    ASSERT_TRUE(RunPython(R"(
import onnx
from onnx import helper, TensorProto
root = ')" + dir_->path() + R"('
def save(graph, name):
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)]); m.ir_version = 8
    onnx.save(m, root + '/' + name)
x = helper.make_tensor_value_info('x', TensorProto.FLOAT, ['batch', 3])
y = helper.make_tensor_value_info('y', TensorProto.FLOAT, ['batch', 3])
n = helper.make_tensor_value_info('n', TensorProto.INT64, ['batch'])
g = helper.make_graph([helper.make_node('Neg', ['x'], ['y']),
                       helper.make_node('ArgMax', ['x'], ['n'], axis=1, keepdims=0)], 'g', [x], [y, n])
save(g, 'neg.onnx')
s = helper.make_tensor_value_info('s', TensorProto.STRING, [None])
t = helper.make_tensor_value_info('t', TensorProto.STRING, [None])
save(helper.make_graph([helper.make_node('Identity', ['s'], ['t'])], 'g', [s], [t]), 'strings.onnx')
# Slow: x multiplied by itself twelve times, x FP32 [512, 512].
a = helper.make_tensor_value_info('a', TensorProto.FLOAT, [512, 512])
b = helper.make_tensor_value_info('b', TensorProto.FLOAT, [512, 512])
nodes, prev = [], 'a'
for i in range(12):
    out = 'b' if i == 11 else 'm%d' % i
    nodes.append(helper.make_node('MatMul', [prev, 'a'], [out]))
    prev = out
save(helper.make_graph(nodes, 'g', [a], [b]), 'slow.onnx')
)")
                    .ok());
    auto factory = OrtSessionFactory::Create(OrtSessionFactory::Options{});
    ASSERT_TRUE(factory.ok()) << factory.status();
    factory_ = factory->release();
  }
  static void TearDownTestSuite() {
    delete factory_;
    delete dir_;
  }
  static std::string Path(const std::string& name) { return dir_->path() + "/" + name; }

  static TempDir* dir_;
  static OrtSessionFactory* factory_;
};
TempDir* OrtSessionTest::dir_ = nullptr;
OrtSessionFactory* OrtSessionTest::factory_ = nullptr;

TEST_F(OrtSessionTest, ReadsTheSignatureFromTheModel) {
  auto session = factory_->Create({.model_path = Path("neg.onnx")});
  ASSERT_TRUE(session.ok()) << session.status();
  const ModelSignature& sig = (*session)->signature();
  ASSERT_EQ(sig.inputs.size(), 1u);
  EXPECT_EQ(sig.inputs[0].name, "x");
  EXPECT_EQ(sig.inputs[0].type, DataType::kFp32);
  EXPECT_EQ(sig.inputs[0].dims, (Shape{-1, 3}));
  ASSERT_EQ(sig.outputs.size(), 2u);
  EXPECT_EQ(sig.outputs[1].type, DataType::kInt64);
  EXPECT_EQ(OrtSessionFactory::RuntimeVersion(), "1.29.0");
}

class OrtRunTest : public OrtSessionTest, public ::testing::WithParamInterface<bool> {};

TEST_P(OrtRunTest, RunsOnCallerBuffersWithAndWithoutIoBinding) {
  SessionOptions options{.model_path = Path("neg.onnx")};
  options.io_binding = GetParam();
  auto session = factory_->Create(options);
  ASSERT_TRUE(session.ok()) << session.status();
  const float values[] = {1, 5, 2, -1, -2, -3};
  Tensor x = MakeTensor<float>("x", DataType::kFp32, Shape{2, 3}, values);
  const std::vector<std::string> names = {"n", "y"};
  for (int repeat = 0; repeat < 3; ++repeat) {  // Reused bindings give the same answers.
    std::vector<Tensor> outputs;
    ASSERT_TRUE((*session)->Run({&x, 1}, names, &outputs).ok());
    ASSERT_EQ(outputs.size(), 2u);
    EXPECT_EQ(outputs[0].name, "n");
    EXPECT_EQ(outputs[0].shape, (Shape{2}));
    EXPECT_EQ(outputs[0].values<int64_t>()[0], 1);
    EXPECT_EQ(outputs[0].values<int64_t>()[1], 0);
    EXPECT_EQ(outputs[1].shape, (Shape{2, 3}));
    EXPECT_EQ(outputs[1].values<float>()[1], -5.0f);
    EXPECT_EQ(outputs[1].values<float>()[5], 3.0f);
  }
}

TEST_P(OrtRunTest, RunsOnInputsBuiltInItsOwnHostMemory) {
  SessionOptions options{.model_path = Path("neg.onnx")};
  options.io_binding = GetParam();
  auto session = factory_->Create(options);
  ASSERT_TRUE(session.ok()) << session.status();
  const float values[] = {1, 5, 2, -1, -2, -3};
  HostBuffer buffer = (*session)->AllocateHostBuffer(sizeof(values));
  ASSERT_NE(buffer.data(), nullptr);
  EXPECT_EQ(buffer.size(), sizeof(values));
  EXPECT_FALSE(buffer.pinned());  // A CPU session's memory is the heap's.
  std::memcpy(buffer.data(), values, sizeof(values));
  Tensor x{.name = "x", .type = DataType::kFp32, .shape = {2, 3},
           .data = std::span<const std::byte>(buffer.data(), buffer.size()), .holder = nullptr};
  const std::vector<std::string> names = {"y"};
  std::vector<Tensor> outputs;
  ASSERT_TRUE((*session)->Run({&x, 1}, names, &outputs).ok());
  ASSERT_EQ(outputs.size(), 1u);
  EXPECT_EQ(outputs[0].values<float>()[1], -5.0f);
  EXPECT_EQ(outputs[0].values<float>()[5], 3.0f);
  EXPECT_EQ((*session)->AllocateHostBuffer(0).data(), nullptr);
}

INSTANTIATE_TEST_SUITE_P(IoBinding, OrtRunTest, ::testing::Bool());

// Issue #14.3: warm-up runs are cancellable mid-run (RunOptions::SetTerminate).
TEST_P(OrtRunTest, CancellingStopsARunInProgressAndLaterRuns) {
  SessionOptions options{.model_path = Path("slow.onnx")};
  options.io_binding = GetParam();
  options.intra_op_threads = 1;
  auto session = factory_->Create(options);
  ASSERT_TRUE(session.ok()) << session.status();
  std::vector<float> values(512 * 512, 0.f);
  Tensor a = MakeTensor<float>("a", DataType::kFp32, Shape{512, 512}, std::span<const float>(values));
  const std::vector<std::string> names = {"b"};
  // Uncancelled: the whole run, as Run gives it.
  CancelToken idle;
  std::vector<Tensor> outputs;
  const absl::Time start = absl::Now();
  ASSERT_TRUE((*session)->RunCancellable({&a, 1}, names, &outputs, idle).ok());
  const absl::Duration full = absl::Now() - start;
  ASSERT_EQ(outputs.size(), 1u);
  EXPECT_EQ(outputs[0].shape, (Shape{512, 512}));

  // Cancelled while it runs: it ends well before a whole run would.
  CancelToken cancel;
  absl::Status status;
  absl::Duration took;
  absl::Notification started;
  std::thread run([&] {
    std::vector<Tensor> out;
    started.Notify();
    const absl::Time t0 = absl::Now();
    status = (*session)->RunCancellable({&a, 1}, names, &out, cancel);
    took = absl::Now() - t0;
  });
  started.WaitForNotification();
  absl::SleepFor(full / 6);  // Into the run; cancelling earlier is also Cancelled.
  cancel.Cancel("unloaded");
  run.join();
  EXPECT_EQ(status.code(), absl::StatusCode::kCancelled) << status;
  EXPECT_EQ(status.message(), "unloaded");
  EXPECT_LT(took, full * 2 / 3) << "full run " << full;
  // Later runs with the token end at once; the session itself still works.
  std::vector<Tensor> later;
  EXPECT_EQ((*session)->RunCancellable({&a, 1}, names, &later, cancel).code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(later.empty());
  EXPECT_TRUE((*session)->Run({&a, 1}, names, &later).ok());
}

TEST(CancelTokenTest, RunsStopCallbacksOnceAndOnlyWhileRegistered) {
  CancelToken token;
  int calls = 0;
  {
    auto gone = token.Register([&] { calls += 100; });
  }
  auto registration = token.Register([&] { ++calls; });
  EXPECT_TRUE(token.status().ok());
  token.Cancel("first");
  token.Cancel("second");
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(token.cancelled());
  EXPECT_EQ(token.status().message(), "first");
  auto late = token.Register([&] { calls += 10; });  // Already cancelled: at once.
  EXPECT_EQ(calls, 11);
}

TEST_F(OrtSessionTest, StringTensorsRoundTripIncludingEmbeddedNul) {
  auto session = factory_->Create({.model_path = Path("strings.onnx")});
  ASSERT_TRUE(session.ok()) << session.status();
  const std::vector<std::string> text = {"héllo", "", std::string("a\0b", 3)};
  Tensor s = MakeBytesTensor("s", Shape{3}, text);
  std::vector<Tensor> outputs;
  const std::vector<std::string> names = {"t"};
  ASSERT_TRUE((*session)->Run({&s, 1}, names, &outputs).ok());
  auto elements = SplitBytesElements(outputs[0].data, 3, "t");
  ASSERT_TRUE(elements.ok()) << elements.status();
  EXPECT_EQ((*elements)[0], "héllo");
  EXPECT_EQ((*elements)[1], "");
  EXPECT_EQ((*elements)[2], std::string("a\0b", 3));
}

TEST_F(OrtSessionTest, InputTheModelRejectsIsInvalidArgument) {
  auto session = factory_->Create({.model_path = Path("neg.onnx")});
  ASSERT_TRUE(session.ok());
  const float values[] = {1, 2, 3, 4};
  Tensor x = MakeTensor<float>("x", DataType::kFp32, Shape{1, 4}, values);
  std::vector<Tensor> outputs;
  const std::vector<std::string> names = {"y"};
  absl::Status status = (*session)->Run({&x, 1}, names, &outputs);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
}

TEST_F(OrtSessionTest, MissingOrCorruptModelFilesAreClearErrors) {
  auto missing = factory_->Create({.model_path = Path("nope.onnx")});
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(std::string(missing.status().message()).find("nope.onnx"), std::string::npos);
  ASSERT_TRUE(RunPython("open('" + Path("junk.onnx") + "', 'wb').write(b'junk')").ok());
  auto junk = factory_->Create({.model_path = Path("junk.onnx")});
  EXPECT_FALSE(junk.ok());
  EXPECT_NE(std::string(junk.status().message()).find("junk.onnx"), std::string::npos) << junk.status();
}

TEST_F(OrtSessionTest, GpuSessionWithoutUsableCudaFailsClearly) {
  // The test machines have no CUDA provider installed; on the GPU machine
  // this test is not meaningful and is skipped.
  if (std::getenv("ORTSERVE_HAVE_CUDA") != nullptr) GTEST_SKIP() << "CUDA is available here";
  SessionOptions options{.model_path = Path("neg.onnx")};
  options.device = DeviceKind::kGpu;
  auto session = factory_->Create(options);
  ASSERT_FALSE(session.ok());
  EXPECT_EQ(session.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(std::string(session.status().message()).find("CUDA"), std::string::npos) << session.status();
  // CPU sessions are unaffected.
  EXPECT_TRUE(factory_->Create({.model_path = Path("neg.onnx")}).ok());
}

TEST_F(OrtSessionTest, OwnThreadPoolsWhenAsked) {
  SessionOptions options{.model_path = Path("neg.onnx")};
  options.intra_op_threads = 1;
  options.graph_optimization = GraphOptimization::kDisabled;
  options.execution_mode = ExecutionMode::kParallel;
  EXPECT_TRUE(factory_->Create(options).ok());
}

}  // namespace
}  // namespace ortserve::backend
