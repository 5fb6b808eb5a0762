// SPDX-License-Identifier: Apache-2.0
// Triton's protocol extensions (issue 21) against the real `ortserve` binary,
// over REST and gRPC, written from Triton's protocol documents: the log and
// trace settings, server metadata's extension list, the answer for methods
// that are not served, a text pipeline's config, HTTP compression, and system
// shared memory.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "integration/grpc_test_util.h"
#include "integration/server_harness.h"

namespace ortserve::testing {
namespace {

using inference::GRPCInferenceService;

class TritonExtensionsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto server = ServerProcess::Start({"--model-repository", SourceDir() + "/models", "--grpc-port", "0"});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();
    ASSERT_NE(server_->grpc_port(), 0) << server_->Output();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    stub_ = GRPCInferenceService::NewStub(GrpcChannel(server_->grpc_port()));
    http_ = std::make_unique<HttpClient>(server_->http_port());
  }

  static ServerProcess* server_;
  std::unique_ptr<GRPCInferenceService::Stub> stub_;
  std::unique_ptr<HttpClient> http_;
};

ServerProcess* TritonExtensionsTest::server_ = nullptr;

// zlib directly (not the server's code): window_bits 15+16 gzip, 15 zlib.
std::string Deflate(const std::string& in, int window_bits) {
  z_stream s{};
  EXPECT_EQ(deflateInit2(&s, 6, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&s, in.size()), '\0');
  s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  s.avail_in = static_cast<uInt>(in.size());
  s.next_out = reinterpret_cast<Bytef*>(out.data());
  s.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&s, Z_FINISH), Z_STREAM_END);
  out.resize(out.size() - s.avail_out);
  deflateEnd(&s);
  return out;
}

std::string Inflate(const std::string& in, int window_bits) {
  z_stream s{};
  EXPECT_EQ(inflateInit2(&s, window_bits), Z_OK);
  std::string out(in.size() * 20 + 1024, '\0');
  s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  s.avail_in = static_cast<uInt>(in.size());
  s.next_out = reinterpret_cast<Bytef*>(out.data());
  s.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(inflate(&s, Z_FINISH), Z_STREAM_END);
  out.resize(out.size() - s.avail_out);
  inflateEnd(&s);
  return out;
}

constexpr char kIrisJson[] =
    R"({"inputs":[{"name":"input","shape":[2,4],"datatype":"FP32","data":[5.9,3.0,4.2,1.5,6.9,3.1,5.4,2.1]}],)"
    R"("outputs":[{"name":"probabilities"}]})";

// The iris request in the binary tensor extension: JSON header, then 32 raw bytes.
std::string IrisBinary(size_t* header_length) {
  const std::string header =
      R"({"inputs":[{"name":"input","shape":[2,4],"datatype":"FP32","parameters":{"binary_data_size":32}}],)"
      R"("outputs":[{"name":"probabilities","parameters":{"binary_data":true}}]})";
  const float values[8] = {5.9f, 3.0f, 4.2f, 1.5f, 6.9f, 3.1f, 5.4f, 2.1f};
  *header_length = header.size();
  return header + std::string(reinterpret_cast<const char*>(values), sizeof(values));
}

// --- server metadata and unserved methods ---

TEST_F(TritonExtensionsTest, ExtensionsListTheSameServedSetOverRestAndGrpc) {
  const HttpResponse rest = http_->Get("/v2");
  ASSERT_EQ(rest.status, 200u) << rest.body;
  auto doc = Json(rest.body);
  std::set<std::string> rest_extensions;
  for (const auto& e : doc["extensions"].GetArray()) rest_extensions.insert(e.GetString());
  inference::ServerMetadataResponse metadata;
  ASSERT_TRUE(stub_->ServerMetadata(Context().get(), {}, &metadata).ok());
  const std::set<std::string> grpc_extensions(metadata.extensions().begin(), metadata.extensions().end());
  EXPECT_EQ(rest_extensions, grpc_extensions);
  EXPECT_TRUE(rest_extensions.contains("logging"));
  // CUDA shared memory is not served, so it is not listed.
  EXPECT_FALSE(rest_extensions.contains("cuda_shared_memory"));
  // Each listed extension's REST endpoint answers (not 404).
  if (rest_extensions.contains("logging")) EXPECT_EQ(http_->Get("/v2/logging").status, 200u);
  if (rest_extensions.contains("trace")) EXPECT_EQ(http_->Get("/v2/trace/setting").status, 200u);
  if (rest_extensions.contains("system_shared_memory")) {
    EXPECT_EQ(http_->Get("/v2/systemsharedmemory/status").status, 200u);
  }
  if (rest_extensions.contains("statistics")) EXPECT_EQ(http_->Get("/v2/models/stats").status, 200u);
}

TEST_F(TritonExtensionsTest, CudaSharedMemoryIsRefusedWithAMessage) {
  inference::CudaSharedMemoryRegisterRequest request;
  request.set_name("region");
  request.set_raw_handle("x");
  request.set_byte_size(64);
  inference::CudaSharedMemoryRegisterResponse response;
  const grpc::Status status = stub_->CudaSharedMemoryRegister(Context().get(), request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_NE(status.error_message().find("CUDA shared memory is not supported"), std::string::npos)
      << status.error_message();
  inference::CudaSharedMemoryStatusResponse shm_status;
  const grpc::Status listed = stub_->CudaSharedMemoryStatus(Context().get(), {}, &shm_status);
  EXPECT_EQ(listed.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_FALSE(listed.error_message().empty());
  // Over REST: 400 with an error body naming the reason.
  const HttpResponse rest = http_->Post("/v2/cudasharedmemory/region/r/register",
                                        R"({"raw_handle":{"b64":"eA=="},"device_id":0,"byte_size":64})");
  EXPECT_EQ(rest.status, 400u) << rest.body;
  EXPECT_NE(rest.body.find("CUDA shared memory is not supported"), std::string::npos) << rest.body;
  EXPECT_EQ(http_->Get("/v2/cudasharedmemory/status").status, 400u);
}

TEST_F(TritonExtensionsTest, UnknownGrpcMethodsAnswerUnimplementedWithAMessage) {
  grpc::GenericStub generic(GrpcChannel(server_->grpc_port()));
  for (const std::string method : {"/inference.GRPCInferenceService/NoSuchMethod", "/other.Service/Call"}) {
    grpc::Slice slice(std::string{});
    grpc::ByteBuffer request(&slice, 1);
    grpc::ByteBuffer response;
    grpc::Status status;
    absl::Notification done;
    auto context = Context();
    generic.UnaryCall(context.get(), method, grpc::StubOptions(), &request, &response, [&](grpc::Status s) {
      status = std::move(s);
      done.Notify();
    });
    done.WaitForNotification();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNIMPLEMENTED) << method;
    EXPECT_NE(status.error_message().find(method), std::string::npos) << status.error_message();
  }
}

// --- logging ---

TEST_F(TritonExtensionsTest, GrpcLogSettingsReadAndUpdateAsRestDoes) {
  inference::LogSettingsResponse read;
  ASSERT_TRUE(stub_->LogSettings(Context().get(), {}, &read).ok());
  ASSERT_TRUE(read.settings().contains("log_verbose_level"));
  ASSERT_TRUE(read.settings().contains("log_info"));
  EXPECT_EQ(read.settings().at("log_info").parameter_choice_case(),
            inference::LogSettingsResponse::SettingValue::kBoolParam);
  EXPECT_EQ(read.settings().at("log_format").string_param(), Json(http_->Get("/v2/logging").body)["log_format"].GetString());

  inference::LogSettingsRequest update;
  (*update.mutable_settings())["log_verbose_level"].set_uint32_param(1);
  (*update.mutable_settings())["log_warning"].set_bool_param(false);
  inference::LogSettingsResponse updated;
  ASSERT_TRUE(stub_->LogSettings(Context().get(), update, &updated).ok());
  EXPECT_EQ(updated.settings().at("log_verbose_level").uint32_param(), 1u);
  EXPECT_FALSE(updated.settings().at("log_warning").bool_param());
  // REST sees the same settings.
  auto rest = Json(http_->Get("/v2/logging").body);
  EXPECT_EQ(rest["log_verbose_level"].GetInt(), 1);
  EXPECT_FALSE(rest["log_warning"].GetBool());

  // A wrong type is refused and changes nothing.
  inference::LogSettingsRequest bad;
  (*bad.mutable_settings())["log_info"].set_string_param("yes");
  (*bad.mutable_settings())["log_verbose_level"].set_uint32_param(0);
  inference::LogSettingsResponse refused;
  const grpc::Status status = stub_->LogSettings(Context().get(), bad, &refused);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("log_info"), std::string::npos) << status.error_message();
  EXPECT_EQ(Json(http_->Get("/v2/logging").body)["log_verbose_level"].GetInt(), 1);

  // Back to the defaults for the other tests.
  inference::LogSettingsRequest reset;
  (*reset.mutable_settings())["log_verbose_level"].set_uint32_param(0);
  (*reset.mutable_settings())["log_warning"].set_bool_param(true);
  ASSERT_TRUE(stub_->LogSettings(Context().get(), reset, &updated).ok());
}

// --- a text pipeline's config agrees with its metadata ---

TEST_F(TritonExtensionsTest, PipelineConfigDescribesTheTextInterfaceAsMetadataDoes) {
  auto metadata = Json(http_->Get("/v2/models/sae_classifier").body);
  auto config = Json(http_->Get("/v2/models/sae_classifier/config").body);
  ASSERT_TRUE(metadata.IsObject() && config.IsObject());
  const bool batched = config["max_batch_size"].GetInt() > 0;
  // Inputs and outputs in the same order, with the same names and types;
  // config dims are the metadata shape without its batch dimension.
  for (const char* side : {"inputs", "outputs"}) {
    const char* config_side = std::string(side) == "inputs" ? "input" : "output";
    const auto& meta = metadata[side].GetArray();
    const auto& conf = config[config_side].GetArray();
    ASSERT_EQ(meta.Size(), conf.Size()) << side;
    for (rapidjson::SizeType i = 0; i < meta.Size(); ++i) {
      EXPECT_EQ(std::string(meta[i]["name"].GetString()), conf[i]["name"].GetString());
      const std::string datatype = meta[i]["datatype"].GetString();
      EXPECT_EQ(std::string(conf[i]["data_type"].GetString()),
                datatype == "BYTES" ? std::string("TYPE_STRING") : "TYPE_" + datatype);
      std::vector<int64_t> shape, dims;
      for (const auto& d : meta[i]["shape"].GetArray()) shape.push_back(d.GetInt64());
      if (conf[i].HasMember("dims")) {
        for (const auto& d : conf[i]["dims"].GetArray()) {
          dims.push_back(d.IsString() ? std::stoll(d.GetString()) : d.GetInt64());
        }
      }
      if (batched) shape.erase(shape.begin());
      EXPECT_EQ(shape, dims) << meta[i]["name"].GetString();
    }
  }
  EXPECT_EQ(std::string(config["input"][0]["name"].GetString()), "text");
  // The graph's tensors are not described as the model's inputs.
  EXPECT_EQ(http_->Get("/v2/models/sae_classifier/config").body.find(R"("name":"input_ids")"), std::string::npos);

  // gRPC's ModelConfig says the same.
  inference::ModelConfigRequest request;
  request.set_name("sae_classifier");
  inference::ModelConfigResponse response;
  ASSERT_TRUE(stub_->ModelConfig(Context().get(), request, &response).ok());
  ASSERT_EQ(response.config().input_size(), 1);
  EXPECT_EQ(response.config().input(0).name(), "text");
  EXPECT_EQ(response.config().output_size(), static_cast<int>(metadata["outputs"].Size()));
  for (const auto& output : response.config().output()) EXPECT_NE(output.name(), "input_ids");
  // A model without a pipeline keeps its own tensors.
  EXPECT_NE(http_->Get("/v2/models/iris_classifier/config").body.find("\"input\""), std::string::npos);
}

// --- HTTP compression ---

TEST_F(TritonExtensionsTest, CompressedRequestBodiesAreDecodedFirst) {
  const HttpResponse plain = http_->Post("/v2/models/iris_classifier/infer", kIrisJson);
  ASSERT_EQ(plain.status, 200u) << plain.body;
  for (const auto& [coding, bits] : std::vector<std::pair<std::string, int>>{{"gzip", 15 + 16}, {"deflate", 15}}) {
    const HttpResponse json = http_->Post("/v2/models/iris_classifier/infer", Deflate(kIrisJson, bits),
                                          {{"Content-Encoding", coding}, {"Content-Type", "application/json"}});
    ASSERT_EQ(json.status, 200u) << coding << ": " << json.body;
    EXPECT_EQ(Json(json.body)["outputs"], Json(plain.body)["outputs"]) << coding;

    // Binary tensors: Inference-Header-Content-Length counts the decoded
    // body's JSON, as Triton's client sends it.
    size_t header_length = 0;
    const std::string body = IrisBinary(&header_length);
    const HttpResponse binary = http_->Post(
        "/v2/models/iris_classifier/infer", Deflate(body, bits),
        {{"Content-Encoding", coding}, {"Inference-Header-Content-Length", std::to_string(header_length)}});
    ASSERT_EQ(binary.status, 200u) << coding << ": " << binary.body;
    const size_t json_length = std::stoul(binary.Header("inference-header-content-length"));
    ASSERT_EQ(binary.body.size(), json_length + 24);
    float probabilities[6];
    std::memcpy(probabilities, binary.body.data() + json_length, sizeof(probabilities));
    const auto& want = Json(plain.body)["outputs"][0]["data"];
    for (int i = 0; i < 6; ++i) EXPECT_FLOAT_EQ(probabilities[i], static_cast<float>(want[i].GetDouble()));
  }
}

TEST_F(TritonExtensionsTest, BadCodingsAndCorruptBodiesAreRefused) {
  HttpResponse response = http_->Post("/v2/models/iris_classifier/infer", kIrisJson, {{"Content-Encoding", "br"}});
  EXPECT_EQ(response.status, 415u) << response.body;
  EXPECT_NE(response.body.find("br"), std::string::npos);
  response = http_->Post("/v2/models/iris_classifier/infer", "certainly not gzip", {{"Content-Encoding", "gzip"}});
  EXPECT_EQ(response.status, 400u) << response.body;
  const std::string gz = Deflate(kIrisJson, 15 + 16);
  response = http_->Post("/v2/models/iris_classifier/infer", gz.substr(0, gz.size() - 6), {{"Content-Encoding", "gzip"}});
  EXPECT_EQ(response.status, 400u) << response.body;
  // The connection is still usable.
  EXPECT_EQ(http_->Post("/v2/models/iris_classifier/infer", kIrisJson).status, 200u);
}

TEST_F(TritonExtensionsTest, DecodedBodiesAreBoundedByTheInputSizeLimit) {
  auto server = ServerProcess::Start({"--model-repository", SourceDir() + "/models", "--http-max-input-size", "100000"});
  ASSERT_TRUE(server.ok()) << server.status();
  // 8 MB of spaces inside a JSON body compress to a few KB: a bomb.
  const std::string bomb_json = "{\"inputs\":[" + std::string(8u << 20, ' ') + "]}";
  const std::string bomb = Deflate(bomb_json, 15 + 16);
  ASSERT_LT(bomb.size(), 100000u);
  HttpClient client((*server)->http_port());
  const HttpResponse refused =
      client.Post("/v2/models/iris_classifier/infer", bomb, {{"Content-Encoding", "gzip"}});
  EXPECT_EQ(refused.status, 413u) << refused.body;
  EXPECT_NE(refused.body.find("100000"), std::string::npos) << refused.body;
  // The server still answers, and a compressed body under the limit passes.
  HttpClient again((*server)->http_port());
  EXPECT_EQ(again.Post("/v2/models/iris_classifier/infer", Deflate(kIrisJson, 15 + 16), {{"Content-Encoding", "gzip"}})
                .status,
            200u);
}

TEST_F(TritonExtensionsTest, ResponsesAreCompressedWhenTheClientAsks) {
  const HttpResponse plain = http_->Post("/v2/models/iris_classifier/infer", kIrisJson);
  ASSERT_EQ(plain.status, 200u);
  EXPECT_EQ(plain.Header("content-encoding"), "");
  for (const auto& [coding, bits] : std::vector<std::pair<std::string, int>>{{"gzip", 15 + 16}, {"deflate", 15}}) {
    const HttpResponse compressed =
        http_->Post("/v2/models/iris_classifier/infer", kIrisJson, {{"Accept-Encoding", coding}});
    ASSERT_EQ(compressed.status, 200u) << compressed.body;
    EXPECT_EQ(compressed.Header("content-encoding"), coding);
    EXPECT_EQ(Inflate(compressed.body, bits), plain.body);
    // Binary outputs: the header length still counts the decoded JSON.
    size_t header_length = 0;
    const std::string body = IrisBinary(&header_length);
    const HttpResponse binary = http_->Post(
        "/v2/models/iris_classifier/infer", body,
        {{"Accept-Encoding", coding + ";q=0.9, br;q=1"},
         {"Inference-Header-Content-Length", std::to_string(header_length)}});
    ASSERT_EQ(binary.status, 200u) << Inflate(binary.body, bits);
    EXPECT_EQ(binary.Header("content-encoding"), coding);
    const std::string decoded = Inflate(binary.body, bits);
    const size_t json_length = std::stoul(binary.Header("inference-header-content-length"));
    EXPECT_EQ(decoded.size(), json_length + 24);
    EXPECT_TRUE(Json(decoded.substr(0, json_length)).IsObject());
  }
  // Metadata too; q=0 refuses a coding.
  const HttpResponse metadata = http_->Get("/v2");
  EXPECT_EQ(http_->Request("GET", "/v2", "", {{"Accept-Encoding", "gzip"}}).Header("content-encoding"), "gzip");
  EXPECT_EQ(http_->Request("GET", "/v2", "", {{"Accept-Encoding", "gzip;q=0"}}).body, metadata.body);
}

}  // namespace
}  // namespace ortserve::testing
