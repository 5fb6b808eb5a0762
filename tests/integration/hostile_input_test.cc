// SPDX-License-Identifier: Apache-2.0
// Requests an attacker would send, against the real server: each of these
// crashed, hung or fooled main once (issue #14). They must get a clear 4xx,
// and the server must go on serving everyone else.
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "boost/asio.hpp"
#include "integration/grpc_test_util.h"
#include "integration/server_harness.h"

namespace ortserve::testing {
namespace {

// A padded batching model: y = x for x FP32 [N, -1, -1]; the batcher waits
// 300 ms for company, so requests sent together share a batch.
class PaddedBatchingTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    repo_ = new TempDir();
    ASSERT_TRUE(RunPython(R"(
import os, onnx
from onnx import helper, TensorProto
root = ')" + repo_->path() + R"('
os.makedirs(root + '/padded/1')
x = helper.make_tensor_value_info('x', TensorProto.FLOAT, ['N', 'A', 'B'])
y = helper.make_tensor_value_info('y', TensorProto.FLOAT, ['N', 'A', 'B'])
g = helper.make_graph([helper.make_node('Identity', ['x'], ['y'])], 'g', [x], [y])
m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)]); m.ir_version = 8
onnx.save(m, root + '/padded/1/model.onnx')
open(root + '/padded/config.pbtxt', 'w').write(
    'max_batch_size: 8\n'
    'input { name: "x" data_type: TYPE_FP32 dims: [ -1, -1 ] }\n'
    'output { name: "y" data_type: TYPE_FP32 dims: [ -1, -1 ] }\n'
    'dynamic_batching { max_queue_delay_microseconds: 300000 pad_variable_dims: true wait_when_idle: true }\n')
)")
                    .ok());
    auto server = ServerProcess::Start({"--model-repository", repo_->path(), "--grpc-port", "0"});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();
  }
  static void TearDownTestSuite() {
    delete server_;
    delete repo_;
  }
  void TearDown() override {
    // Whatever the test sent, the server is still there for everyone else.
    HttpClient fresh(server_->http_port());
    EXPECT_EQ(fresh.Get("/v2/health/ready").status, 200u) << server_->Output();
  }

  static std::string Json3d(const std::string& shape, const std::string& data) {
    return R"({"inputs":[{"name":"x","shape":)" + shape + R"(,"datatype":"FP32","data":)" + data + "}]}";
  }

  static TempDir* repo_;
  static ServerProcess* server_;
};
TempDir* PaddedBatchingTest::repo_ = nullptr;
ServerProcess* PaddedBatchingTest::server_ = nullptr;

// The remote crash: a zero-size request with a 2^40 dimension, batched with a
// small one, padded the batch to 2^40 x 3 floats (or, with larger dims, to a
// byte count that wrapped): SIGSEGV or a heap overwrite. Now the two never
// share a batch, and both are answered.
TEST_F(PaddedBatchingTest, AHugeZeroSizeRequestBatchedWithASmallOneCrashesNothing) {
  HttpResponse huge;
  HttpResponse small;
  std::thread attacker([&] {
    HttpClient client(server_->http_port());
    huge = client.Post("/v2/models/padded/infer", Json3d("[1,0,1099511627776]", "[]"));
  });
  std::thread victim([&] {
    HttpClient client(server_->http_port());
    small = client.Post("/v2/models/padded/infer", Json3d("[1,3,1]", "[1,2,3]"));
  });
  attacker.join();
  victim.join();
  ASSERT_EQ(small.status, 200u) << small.body << server_->Output();
  EXPECT_NE(small.body.find("[1.0,2.0,3.0]"), std::string::npos) << small.body;
  // The empty tensor itself is a valid (if odd) request.
  EXPECT_TRUE(huge.status == 200u || huge.status == 400u) << huge.status << " " << huge.body;
}

TEST_F(PaddedBatchingTest, DimensionsPastTheElementBoundAreRefusedBeforeTheyQueue) {
  HttpClient client(server_->http_port());
  // 2^62 rows of nothing; and 2^62 floats, whose 2^64 bytes wrapped to 0.
  for (const std::string shape : {"[1,0,4611686018427387904]", "[1,1,4611686018427387904]"}) {
    const HttpResponse res = client.Post("/v2/models/padded/infer", Json3d(shape, "[]"));
    EXPECT_EQ(res.status, 400u) << shape << ": " << res.body;
    EXPECT_NE(res.body.find("too many elements"), std::string::npos) << res.body;
  }
}

TEST_F(PaddedBatchingTest, RequestsThatWouldPadPastTheByteBoundRunApart) {
  // 4 MiB each; padded together, [2, 2^20, 2^20] FP32 would be 8 TiB: each
  // runs in a batch of its own instead.
  std::string ones = "[";
  for (int i = 0; i < (1 << 20); ++i) ones += i ? ",1" : "1";
  ones += "]";
  HttpResponse wide, tall;
  std::thread a([&] {
    HttpClient client(server_->http_port());
    wide = client.Post("/v2/models/padded/infer", Json3d("[1,1,1048576]", ones));
  });
  std::thread b([&] {
    HttpClient client(server_->http_port());
    tall = client.Post("/v2/models/padded/infer", Json3d("[1,1048576,1]", ones));
  });
  a.join();
  b.join();
  EXPECT_EQ(wide.status, 200u) << wide.body.substr(0, 300);
  EXPECT_EQ(tall.status, 200u) << tall.body.substr(0, 300);
  EXPECT_NE(wide.body.find(R"("shape":[1,1,1048576])"), std::string::npos) << wide.body.substr(0, 300);
  EXPECT_NE(tall.body.find(R"("shape":[1,1048576,1])"), std::string::npos) << tall.body.substr(0, 300);
}

TEST_F(PaddedBatchingTest, TheSameAttackOverGrpcCrashesNothing) {
  auto stub = inference::GRPCInferenceService::NewStub(GrpcChannel(server_->grpc_port()));
  inference::ModelInferResponse huge_response, small_response;
  grpc::Status huge_status, small_status;
  std::thread attacker([&] {
    inference::ModelInferRequest request;
    request.set_model_name("padded");
    AddRawInput<float>(&request, "x", "FP32", {1, 0, int64_t{1} << 40}, {});
    huge_status = stub->ModelInfer(Context().get(), request, &huge_response);
  });
  std::thread victim([&] {
    inference::ModelInferRequest request;
    request.set_model_name("padded");
    AddRawInput<float>(&request, "x", "FP32", {1, 3, 1}, {1, 2, 3});
    small_status = stub->ModelInfer(Context().get(), request, &small_response);
  });
  attacker.join();
  victim.join();
  ASSERT_TRUE(small_status.ok()) << small_status.error_message() << server_->Output();
  EXPECT_EQ(RawAs<float>(RawOutput(small_response, "y")), (std::vector<float>{1, 2, 3}));

  inference::ModelInferRequest wrapped;  // 2^62 floats: 2^64 bytes, "0".
  wrapped.set_model_name("padded");
  AddRawInput<float>(&wrapped, "x", "FP32", {1, 1, int64_t{1} << 62}, {});
  inference::ModelInferResponse response;
  const grpc::Status status = stub->ModelInfer(Context().get(), wrapped, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
}

// Sends `bytes` on a fresh connection and returns everything the server
// writes until it closes the connection (or 10 s pass).
std::string RawExchange(uint16_t port, const std::string& bytes) {
  namespace net = boost::asio;
  net::io_context ioc;
  net::ip::tcp::socket socket(ioc);
  socket.connect({net::ip::make_address("127.0.0.1"), port});
  net::write(socket, net::buffer(bytes));
  std::string received;
  std::array<char, 4096> chunk;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  socket.non_blocking(true);
  while (std::chrono::steady_clock::now() < deadline) {
    boost::system::error_code ec;
    const size_t n = socket.read_some(net::buffer(chunk), ec);
    if (ec == net::error::would_block) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      continue;
    }
    if (ec) break;  // Closed by the server.
    received.append(chunk.data(), n);
  }
  return received;
}

size_t CountResponses(const std::string& data) {
  size_t n = 0;
  for (size_t at = data.find("HTTP/1.1 "); at != std::string::npos; at = data.find("HTTP/1.1 ", at + 1)) ++n;
  return n;
}

class HostileRequestTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto server = ServerProcess::Start({"--model-repository", SourceDir() + "/models", "--grpc-port", "0"});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();
  }
  static void TearDownTestSuite() { delete server_; }
  static ServerProcess* server_;
};
ServerProcess* HostileRequestTest::server_ = nullptr;

// Issue #14: bytes that are not UTF-8, sent to a model with a string input,
// failed inside ONNX Runtime and came back as a 500.
TEST_F(HostileRequestTest, NonUtf8TextForAStringModelIsABadRequestNamingTheElement) {
  std::string binary;
  for (const std::string& element : {std::string("fine"), std::string("\xff\xfeok")}) {
    const uint32_t n = static_cast<uint32_t>(element.size());
    for (int i = 0; i < 4; ++i) binary.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
    binary += element;
  }
  const std::string json = R"({"inputs":[{"name":"text","shape":[2],"datatype":"BYTES","parameters":{"binary_data_size":)" +
                           std::to_string(binary.size()) + "}}]}";
  HttpClient client(server_->http_port());
  const HttpResponse res = client.Post("/v2/models/string_length/infer", json + binary,
                                       {{"Inference-Header-Content-Length", std::to_string(json.size())}});
  EXPECT_EQ(res.status, 400u) << res.body;
  EXPECT_NE(res.body.find("element 1 is not valid UTF-8"), std::string::npos) << res.body;
}

// Issue #14: gRPC ignored model files in a load request, which HTTP refuses.
TEST_F(HostileRequestTest, ModelFilesInAGrpcLoadRequestAreRefusedAsOverHttp) {
  auto stub = inference::GRPCInferenceService::NewStub(GrpcChannel(server_->grpc_port()));
  inference::RepositoryModelLoadRequest request;
  request.set_model_name("iris_classifier");
  (*request.mutable_parameters())["file:1/model.onnx"].set_bytes_param("not a model");
  inference::RepositoryModelLoadResponse response;
  const grpc::Status status = stub->RepositoryModelLoad(Context().get(), request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("file:1/model.onnx"), std::string::npos) << status.error_message();
}

// RFC 9112: a Transfer-Encoding whose last coding is not chunked is a 400
// and the connection closes; before, the request was read as body-less and
// its "body" ran as a second request on the connection.
TEST_F(HostileRequestTest, ATransferEncodingOtherThanChunkedIsRefusedAndNothingElseRuns) {
  const std::string smuggled = "GET /v2/models/iris_classifier HTTP/1.1\r\nHost: x\r\n\r\n";
  for (const std::string te : {"Transfer-Encoding: chunked, identity\r\n", "Transfer-Encoding: xchunked\r\n",
                               "Transfer-Encoding: identity\r\n",
                               "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
                               "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n"}) {
    const std::string reply = RawExchange(
        server_->http_port(), "POST /v2/models/iris_classifier/infer HTTP/1.1\r\nHost: x\r\n" + te + "\r\n" + smuggled);
    EXPECT_EQ(reply.rfind("HTTP/1.1 400", 0), 0u) << te << reply;
    EXPECT_EQ(CountResponses(reply), 1u) << te << reply;  // The smuggled GET never ran.
    EXPECT_NE(reply.find("Connection: close"), std::string::npos) << reply;
  }
}

TEST_F(HostileRequestTest, APlainChunkedBodyStillWorks) {
  const std::string body =
      R"({"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]})";
  char size[16];
  std::snprintf(size, sizeof(size), "%zx", body.size());
  const std::string reply = RawExchange(server_->http_port(),
                                        "POST /v2/models/iris_classifier/infer HTTP/1.1\r\nHost: x\r\n"
                                        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
                                            std::string(size) + "\r\n" + body + "\r\n0\r\n\r\n");
  EXPECT_EQ(reply.rfind("HTTP/1.1 200", 0), 0u) << reply;
}

}  // namespace
}  // namespace ortserve::testing
