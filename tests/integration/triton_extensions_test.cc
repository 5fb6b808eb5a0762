// SPDX-License-Identifier: Apache-2.0
// Triton's protocol extensions (issue 21) against the real `ortserve` binary,
// over REST and gRPC, written from Triton's protocol documents: the log and
// trace settings, server metadata's extension list, the answer for methods
// that are not served, a text pipeline's config, HTTP compression, and system
// shared memory.
#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <grpcpp/generic/generic_stub.h>
#include <sys/mman.h>
#include <unistd.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
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
  if (rest_extensions.contains("logging")) {
    EXPECT_EQ(http_->Get("/v2/logging").status, 200u);
  }
  if (rest_extensions.contains("trace")) {
    EXPECT_EQ(http_->Get("/v2/trace/setting").status, 200u);
  }
  if (rest_extensions.contains("system_shared_memory")) {
    EXPECT_EQ(http_->Get("/v2/systemsharedmemory/status").status, 200u);
  }
  if (rest_extensions.contains("statistics")) {
    EXPECT_EQ(http_->Get("/v2/models/stats").status, 200u);
  }
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

// --- trace settings ---

// Whether the response's traceparent says the request was sampled.
bool Sampled(const HttpResponse& response) {
  const std::string traceparent = response.Header("traceparent");
  EXPECT_EQ(traceparent.size(), 55u) << traceparent;
  return traceparent.ends_with("-01");
}

TEST_F(TritonExtensionsTest, TraceSettingsDriveSamplingGloballyAndPerModel) {
  // Tracing on (spans sampled and counted; no collector to send them to).
  auto server = ServerProcess::Start({"--model-repository", SourceDir() + "/models", "--grpc-port", "0",
                                      "--trace-sampling-ratio", "1"});
  ASSERT_TRUE(server.ok()) << server.status();
  HttpClient http((*server)->http_port());
  auto global = Json(http.Get("/v2/trace/setting").body);
  EXPECT_EQ(std::string(global["trace_level"][0].GetString()), "TIMESTAMPS");
  EXPECT_EQ(std::string(global["trace_rate"].GetString()), "1");
  EXPECT_EQ(std::string(global["trace_count"].GetString()), "-1");
  EXPECT_EQ(std::string(global["trace_mode"].GetString()), "opentelemetry");
  const auto iris = [&] { return http.Post("/v2/models/iris_classifier/infer", kIrisJson); };
  const auto other = [&] {
    return http.Post("/v2/models/multi_io/infer", R"({"inputs":[]})");  // Refused, but still a traced request.
  };
  EXPECT_TRUE(Sampled(iris()));

  // Off globally; on for iris alone.
  HttpResponse response = http.Post("/v2/trace/setting", R"({"trace_level":["OFF"]})");
  ASSERT_EQ(response.status, 200u) << response.body;
  EXPECT_EQ(std::string(Json(response.body)["trace_level"][0].GetString()), "OFF");
  EXPECT_FALSE(Sampled(iris()));
  response = http.Post("/v2/models/iris_classifier/trace/setting", R"({"trace_level":["TIMESTAMPS"]})");
  ASSERT_EQ(response.status, 200u) << response.body;
  EXPECT_TRUE(Sampled(iris()));
  EXPECT_FALSE(Sampled(other()));
  EXPECT_EQ(std::string(Json(http.Get("/v2/models/iris_classifier/trace/setting").body)["trace_level"][0].GetString()),
            "TIMESTAMPS");
  EXPECT_EQ(std::string(Json(http.Get("/v2/trace/setting").body)["trace_level"][0].GetString()), "OFF");

  // gRPC sees and changes the same settings: iris' count to 2.
  auto stub = GRPCInferenceService::NewStub(GrpcChannel((*server)->grpc_port()));
  inference::TraceSettingRequest request;
  request.set_model_name("iris_classifier");
  (*request.mutable_settings())["trace_count"].add_value("2");
  inference::TraceSettingResponse settings;
  ASSERT_TRUE(stub->TraceSetting(Context().get(), request, &settings).ok());
  EXPECT_EQ(settings.settings().at("trace_level").value(0), "TIMESTAMPS");
  EXPECT_EQ(settings.settings().at("trace_count").value(0), "2");
  EXPECT_TRUE(Sampled(iris()));
  EXPECT_TRUE(Sampled(iris()));
  EXPECT_FALSE(Sampled(iris()));  // Its two traces are taken.

  // Clearing the model's settings makes it follow the global ones (off).
  response = http.Post("/v2/models/iris_classifier/trace/setting", R"({"trace_level":null,"trace_count":null})");
  ASSERT_EQ(response.status, 200u) << response.body;
  EXPECT_EQ(std::string(Json(response.body)["trace_level"][0].GetString()), "OFF");
  response = http.Post("/v2/trace/setting", R"({"trace_level":["TIMESTAMPS"],"trace_rate":"1"})");
  ASSERT_EQ(response.status, 200u) << response.body;
  EXPECT_TRUE(Sampled(iris()));

  // Refused settings change nothing.
  for (const char* bad : {R"({"trace_rate":"0"})", R"({"trace_level":["TENSORS"]})", R"({"trace_file":"/tmp/t.json"})",
                          R"({"trace_mode":"triton"})", R"({"no_such_setting":"1"})", R"({"trace_count":[1]})",
                          "[1]"}) {
    response = http.Post("/v2/trace/setting", bad);
    EXPECT_EQ(response.status, 400u) << bad << ": " << response.body;
  }
  EXPECT_TRUE(Sampled(iris()));
  EXPECT_EQ(http.Get("/v2/models/no_such_model/trace/setting").status, 404u);
  inference::TraceSettingRequest unknown;
  unknown.set_model_name("no_such_model");
  EXPECT_EQ(stub->TraceSetting(Context().get(), unknown, &settings).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(TritonExtensionsTest, TraceSettingsReadOffAndRefuseChangesWithoutTracing) {
  auto global = Json(http_->Get("/v2/trace/setting").body);
  EXPECT_EQ(std::string(global["trace_level"][0].GetString()), "OFF");
  const HttpResponse refused = http_->Post("/v2/trace/setting", R"({"trace_level":["TIMESTAMPS"]})");
  EXPECT_EQ(refused.status, 400u) << refused.body;
  EXPECT_NE(refused.body.find("--otlp-endpoint"), std::string::npos) << refused.body;
  inference::TraceSettingResponse settings;
  ASSERT_TRUE(stub_->TraceSetting(Context().get(), {}, &settings).ok());
  EXPECT_EQ(settings.settings().at("trace_level").value(0), "OFF");
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
    const auto plain_doc = Json(plain.body);
  const auto& want = plain_doc["outputs"][0]["data"];
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

// The in-flight memory budget counts a compressed body at the most it may
// decode to (--http-max-input-size), as it counts a chunked one: a few KB of
// gzip cannot hold megabytes the budget never saw.
TEST_F(TritonExtensionsTest, TheMemoryBudgetCountsACompressedBodyAtWhatItMayDecodeTo) {
  auto server = ServerProcess::Start({"--model-repository", SourceDir() + "/models", "--http-max-input-size",
                                      "1000000", "--max-inflight-bytes", "2000000"});
  ASSERT_TRUE(server.ok()) << server.status();
  HttpClient client((*server)->http_port());
  EXPECT_EQ(client.Post("/v2/models/iris_classifier/infer", kIrisJson).status, 200u);
  const HttpResponse refused = client.Post("/v2/models/iris_classifier/infer", Deflate(kIrisJson, 15 + 16),
                                           {{"Content-Encoding", "gzip"}});
  EXPECT_EQ(refused.status, 503u) << refused.body;
  EXPECT_NE(refused.body.find("--max-inflight-bytes"), std::string::npos) << refused.body;
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

// --- system shared memory ---

// A shared memory object this test creates (shm_open) and maps; unlinked at the end.
class ShmObject {
 public:
  ShmObject(std::string key, size_t size) : key_(std::move(key)), size_(size) {
    ::shm_unlink(key_.c_str());
    fd_ = ::shm_open(key_.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
    EXPECT_GE(fd_, 0) << key_;
    EXPECT_EQ(::ftruncate(fd_, static_cast<off_t>(size_)), 0);
    void* base = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
    EXPECT_NE(base, MAP_FAILED);
    base_ = static_cast<char*>(base);
  }
  ~ShmObject() {
    ::munmap(base_, size_);
    ::close(fd_);
    ::shm_unlink(key_.c_str());
  }
  const std::string& key() const { return key_; }
  char* data() { return base_; }

 private:
  std::string key_;
  size_t size_;
  int fd_ = -1;
  char* base_ = nullptr;
};

// A client cannot register regions without end: past 64 at once the next is
// refused (4xx, the server keeps answering), and unregistering makes room.
TEST_F(TritonExtensionsTest, SystemSharedMemoryRegistrationsAreBounded) {
  ShmObject object("/ortserve_test_bound_" + std::to_string(::getpid()), 4096);
  const std::string body = R"({"key":")" + object.key() + R"(","offset":0,"byte_size":64})";
  for (int i = 0; i < 64; ++i) {
    const HttpResponse response = http_->Post("/v2/systemsharedmemory/region/r" + std::to_string(i) + "/register", body);
    ASSERT_EQ(response.status, 200u) << i << ": " << response.body;
  }
  HttpResponse refused = http_->Post("/v2/systemsharedmemory/region/r64/register", body);
  EXPECT_GE(refused.status, 400u) << refused.body;
  EXPECT_LT(refused.status, 500u) << refused.body;
  EXPECT_NE(refused.body.find("64 shared memory regions"), std::string::npos) << refused.body;
  refused = http_->Post("/v2/systemsharedmemory/region/" + std::string(300, 'n') + "/register", body);
  EXPECT_EQ(refused.status, 400u) << refused.body;
  EXPECT_EQ(http_->Post("/v2/systemsharedmemory/region/r0/unregister", "").status, 200u);
  EXPECT_EQ(http_->Post("/v2/systemsharedmemory/region/r64/register", body).status, 200u);
  EXPECT_EQ(http_->Post("/v2/systemsharedmemory/unregister", "").status, 200u);
  EXPECT_EQ(Json(http_->Get("/v2/systemsharedmemory/status").body).Size(), 0u);
}

// One of this host's IPv4 addresses that is not loopback ("" when it has none).
std::string NonLoopbackAddress() {
  ifaddrs* all = nullptr;
  if (::getifaddrs(&all) != 0) return "";
  std::string found;
  for (ifaddrs* a = all; a != nullptr && found.empty(); a = a->ifa_next) {
    if (a->ifa_addr == nullptr || a->ifa_addr->sa_family != AF_INET) continue;
    const auto* in = reinterpret_cast<const sockaddr_in*>(a->ifa_addr);
    if ((ntohl(in->sin_addr.s_addr) >> 24) == 127) continue;
    char text[INET_ADDRSTRLEN] = {};
    if (::inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text)) != nullptr) found = text;
  }
  ::freeifaddrs(all);
  return found;
}

// One HTTP/1.1 POST to address:port on its own connection; the status code (0 on a socket error).
unsigned PostTo(const std::string& address, uint16_t port, const std::string& target, const std::string& body) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  ::inet_pton(AF_INET, address.c_str(), &to.sin_addr);
  std::string reply;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof(to)) == 0) {
    const std::string request = "POST " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: " +
                                std::to_string(body.size()) + "\r\n\r\n" + body;
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size())) {
      char buffer[4096];
      for (ssize_t n; (n = ::recv(fd, buffer, sizeof(buffer), 0)) > 0;) reply.append(buffer, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  if (reply.size() < 12 || !reply.starts_with("HTTP/1.1 ")) return 0;
  return static_cast<unsigned>(std::stoul(reply.substr(9, 3)));
}

// Only clients on this host may register shared memory by default: a client
// elsewhere cannot have created an object in this host's /dev/shm, so its
// registration could only map another process's memory. Keys can be held to
// a prefix, and the extension turned off.
TEST_F(TritonExtensionsTest, SystemSharedMemoryIsForLoopbackClientsAndPrefixedKeys) {
  const std::string address = NonLoopbackAddress();
  ASSERT_FALSE(address.empty()) << "this host has no IPv4 address besides loopback";
  auto server = ServerProcess::Start({"--model-repository", SourceDir() + "/models", "--http-address",
                                      "0.0.0.0", "--grpc-address", "0.0.0.0", "--grpc-port", "0",
                                      "--shared-memory-key-prefix", "ortserve_ok"});
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string pid = std::to_string(::getpid());
  ShmObject allowed("/ortserve_ok_" + pid, 4096), other("/ortserve_other_" + pid, 4096);
  auto body = [](const ShmObject& object) { return R"({"key":")" + object.key() + R"(","offset":0,"byte_size":64})"; };
  const uint16_t http_port = (*server)->http_port();

  // From elsewhere (this host's own non-loopback address): refused over both protocols.
  EXPECT_EQ(PostTo(address, http_port, "/v2/systemsharedmemory/region/far/register", body(allowed)), 403u);
  auto far_stub = GRPCInferenceService::NewStub(
      grpc::CreateChannel(address + ":" + std::to_string((*server)->grpc_port()), grpc::InsecureChannelCredentials()));
  inference::SystemSharedMemoryRegisterRequest registration;
  registration.set_name("far");
  registration.set_key(allowed.key());
  registration.set_byte_size(64);
  inference::SystemSharedMemoryRegisterResponse registered;
  grpc::ClientContext far_context;
  const grpc::Status far = far_stub->SystemSharedMemoryRegister(&far_context, registration, &registered);
  EXPECT_EQ(far.error_code(), grpc::StatusCode::PERMISSION_DENIED) << far.error_message();
  EXPECT_NE(far.error_message().find("loopback"), std::string::npos) << far.error_message();

  // Over loopback: a key with the prefix is served, one without is refused.
  EXPECT_EQ(PostTo("127.0.0.1", http_port, "/v2/systemsharedmemory/region/near/register", body(allowed)), 200u);
  HttpClient http(http_port);
  const HttpResponse wrong_key = http.Post("/v2/systemsharedmemory/region/other/register", body(other));
  EXPECT_EQ(wrong_key.status, 403u) << wrong_key.body;
  EXPECT_NE(wrong_key.body.find("--shared-memory-key-prefix"), std::string::npos) << wrong_key.body;
  auto near_stub = GRPCInferenceService::NewStub(GrpcChannel((*server)->grpc_port()));
  grpc::ClientContext near_context;
  registration.set_name("near_grpc");
  EXPECT_TRUE(near_stub->SystemSharedMemoryRegister(&near_context, registration, &registered).ok());
  EXPECT_EQ(Json(http.Get("/v2/systemsharedmemory/status").body).Size(), 2u);

  // Turned off: not listed among the extensions, and registration says why.
  auto off = ServerProcess::Start({"--model-repository", SourceDir() + "/models",
                                   "--system-shared-memory", "off"});
  ASSERT_TRUE(off.ok()) << off.status();
  HttpClient off_http((*off)->http_port());
  EXPECT_EQ(off_http.Get("/v2").body.find("system_shared_memory"), std::string::npos);
  EXPECT_NE(http.Get("/v2").body.find("system_shared_memory"), std::string::npos);
  const HttpResponse refused = off_http.Post("/v2/systemsharedmemory/region/near/register", body(allowed));
  EXPECT_EQ(refused.status, 400u) << refused.body;
  EXPECT_NE(refused.body.find("turned off"), std::string::npos) << refused.body;
}

TEST_F(TritonExtensionsTest, SystemSharedMemoryCarriesInputsAndOutputsOverRestAndGrpc) {
  const std::string prefix = "/ortserve_test_" + std::to_string(::getpid());
  ShmObject in(prefix + "_in", 4096), out(prefix + "_out", 4096);
  const float values[8] = {5.9f, 3.0f, 4.2f, 1.5f, 6.9f, 3.1f, 5.4f, 2.1f};
  std::memcpy(in.data() + 16, values, sizeof(values));
  const HttpResponse plain = http_->Post("/v2/models/iris_classifier/infer", kIrisJson);
  ASSERT_EQ(plain.status, 200u);
  const auto plain_doc = Json(plain.body);
  const auto& want = plain_doc["outputs"][0]["data"];

  // Register: the input region over REST, the output region over gRPC.
  HttpResponse response = http_->Post("/v2/systemsharedmemory/region/in/register",
                                      R"({"key":")" + in.key() + R"(","offset":0,"byte_size":64})");
  ASSERT_EQ(response.status, 200u) << response.body;
  inference::SystemSharedMemoryRegisterRequest registration;
  registration.set_name("out");
  registration.set_key(out.key());
  registration.set_offset(1024);
  registration.set_byte_size(64);
  inference::SystemSharedMemoryRegisterResponse registered;
  ASSERT_TRUE(stub_->SystemSharedMemoryRegister(Context().get(), registration, &registered).ok());
  // Both are listed, over both protocols.
  auto listed = Json(http_->Get("/v2/systemsharedmemory/status").body);
  ASSERT_TRUE(listed.IsArray());
  EXPECT_EQ(listed.Size(), 2u);
  auto one = Json(http_->Get("/v2/systemsharedmemory/region/out/status").body);
  ASSERT_EQ(one.Size(), 1u);
  EXPECT_EQ(std::string(one[0]["key"].GetString()), out.key());
  EXPECT_EQ(one[0]["offset"].GetUint64(), 1024u);
  inference::SystemSharedMemoryStatusResponse status;
  ASSERT_TRUE(stub_->SystemSharedMemoryStatus(Context().get(), {}, &status).ok());
  EXPECT_EQ(status.regions_size(), 2);
  EXPECT_EQ(status.regions().at("in").byte_size(), 64u);

  // REST: input read from "in" at offset 16; probabilities written into "out".
  const std::string request =
      R"({"inputs":[{"name":"input","shape":[2,4],"datatype":"FP32","parameters":{"shared_memory_region":"in",)"
      R"("shared_memory_offset":16,"shared_memory_byte_size":32}}],)"
      R"("outputs":[{"name":"probabilities","parameters":{"shared_memory_region":"out","shared_memory_byte_size":24}}]})";
  response = http_->Post("/v2/models/iris_classifier/infer", request);
  ASSERT_EQ(response.status, 200u) << response.body;
  auto answer = Json(response.body);
  const auto& output = answer["outputs"][0];
  EXPECT_FALSE(output.HasMember("data"));
  EXPECT_EQ(std::string(output["parameters"]["shared_memory_region"].GetString()), "out");
  EXPECT_EQ(output["parameters"]["shared_memory_byte_size"].GetInt(), 24);
  float probabilities[6];
  std::memcpy(probabilities, out.data() + 1024, sizeof(probabilities));
  for (int i = 0; i < 6; ++i) EXPECT_FLOAT_EQ(probabilities[i], static_cast<float>(want[i].GetDouble()));

  // gRPC: the same, with no raw_input_contents at all.
  std::memset(out.data() + 1024, 0, 64);
  inference::ModelInferRequest infer;
  infer.set_model_name("iris_classifier");
  auto* input = infer.add_inputs();
  input->set_name("input");
  input->set_datatype("FP32");
  input->add_shape(2);
  input->add_shape(4);
  (*input->mutable_parameters())["shared_memory_region"].set_string_param("in");
  (*input->mutable_parameters())["shared_memory_offset"].set_int64_param(16);
  (*input->mutable_parameters())["shared_memory_byte_size"].set_int64_param(32);
  auto* requested = infer.add_outputs();
  requested->set_name("probabilities");
  (*requested->mutable_parameters())["shared_memory_region"].set_string_param("out");
  (*requested->mutable_parameters())["shared_memory_byte_size"].set_int64_param(64);
  inference::ModelInferResponse inferred;
  const grpc::Status grpc_status = stub_->ModelInfer(Context().get(), infer, &inferred);
  ASSERT_TRUE(grpc_status.ok()) << grpc_status.error_message();
  ASSERT_EQ(inferred.outputs_size(), 1);
  EXPECT_EQ(inferred.outputs(0).parameters().at("shared_memory_byte_size").int64_param(), 24);
  EXPECT_TRUE(inferred.raw_output_contents(0).empty());
  std::memcpy(probabilities, out.data() + 1024, sizeof(probabilities));
  for (int i = 0; i < 6; ++i) EXPECT_FLOAT_EQ(probabilities[i], static_cast<float>(want[i].GetDouble()));

  // Hostile ranges and sizes are refused, naming the tensor.
  auto infer_with = [&](const std::string& input_params, const std::string& output_params) {
    return http_->Post("/v2/models/iris_classifier/infer",
                       R"({"inputs":[{"name":"input","shape":[2,4],"datatype":"FP32","parameters":{)" + input_params +
                           R"(}}],"outputs":[{"name":"probabilities","parameters":{)" + output_params + "}}]}");
  };
  const std::string good_out = R"("shared_memory_region":"out","shared_memory_byte_size":24)";
  for (const std::string bad : {
           R"("shared_memory_region":"in","shared_memory_offset":48,"shared_memory_byte_size":32)",  // Past its end.
           R"("shared_memory_region":"in","shared_memory_offset":9223372036854775807,"shared_memory_byte_size":32)",
           R"("shared_memory_region":"in","shared_memory_byte_size":28)",   // Not 2x4 FP32.
           R"("shared_memory_region":"nope","shared_memory_byte_size":32)",  // Unknown region.
           R"("shared_memory_region":"in")",                                  // No size.
           R"("shared_memory_region":"in","shared_memory_byte_size":-1)"}) {
    response = infer_with(bad, good_out);
    EXPECT_EQ(response.status, 400u) << bad << ": " << response.body;
    EXPECT_NE(response.body.find("input"), std::string::npos) << response.body;
  }
  response = infer_with(R"("shared_memory_region":"in","shared_memory_byte_size":32)",
                        R"("shared_memory_region":"out","shared_memory_byte_size":8)");  // Too small for 24 bytes.
  EXPECT_EQ(response.status, 400u) << response.body;
  EXPECT_NE(response.body.find("probabilities"), std::string::npos) << response.body;

  // Registration errors: a taken name, a range past the object, no such key, a bad key.
  response = http_->Post("/v2/systemsharedmemory/region/in/register",
                         R"({"key":")" + in.key() + R"(","offset":0,"byte_size":64})");
  EXPECT_GE(response.status, 400u);
  for (const std::string& body : {R"({"key":")" + in.key() + R"(","offset":4090,"byte_size":64})",
                                  std::string(R"({"key":"/ortserve_no_such_key_at_all","byte_size":64})"),
                                  std::string(R"({"key":"../etc/passwd","byte_size":64})"),
                                  std::string(R"({"key":"/a","byte_size":"64"})")}) {
    response = http_->Post("/v2/systemsharedmemory/region/other/register", body);
    EXPECT_GE(response.status, 400u) << body;
    EXPECT_LT(response.status, 500u) << body;
  }
  EXPECT_EQ(Json(http_->Get("/v2/systemsharedmemory/status").body).Size(), 2u);

  // Unregister one by name (gRPC), then all (REST); an unknown name is an error.
  inference::SystemSharedMemoryUnregisterRequest unregister;
  unregister.set_name("out");
  inference::SystemSharedMemoryUnregisterResponse unregistered;
  ASSERT_TRUE(stub_->SystemSharedMemoryUnregister(Context().get(), unregister, &unregistered).ok());
  EXPECT_EQ(stub_->SystemSharedMemoryUnregister(Context().get(), unregister, &unregistered).error_code(),
            grpc::StatusCode::NOT_FOUND);
  response = infer_with(R"("shared_memory_region":"in","shared_memory_byte_size":32)", good_out);
  EXPECT_EQ(response.status, 400u) << response.body;  // "out" is gone.
  EXPECT_EQ(http_->Post("/v2/systemsharedmemory/unregister", "").status, 200u);
  EXPECT_EQ(Json(http_->Get("/v2/systemsharedmemory/status").body).Size(), 0u);
  EXPECT_EQ(http_->Get("/v2/systemsharedmemory/region/in/status").status, 404u);
}

// --- TEI and OpenAI GET routes ---

TEST_F(TritonExtensionsTest, TeiInfoAndHealthAndOpenAiModels) {
  // The demo run's TEI model is text_embedding (--embed-model's default).
  EXPECT_EQ(http_->Get("/health").status, 200u);
  const HttpResponse info = http_->Get("/info");
  ASSERT_EQ(info.status, 200u) << info.body;
  auto doc = Json(info.body);
  EXPECT_EQ(std::string(doc["model_id"].GetString()), "text_embedding");
  EXPECT_TRUE(doc["model_type"].HasMember("embedding"));
  EXPECT_GT(doc["max_input_length"].GetInt(), 0);
  const HttpResponse models = http_->Get("/v1/models");
  ASSERT_EQ(models.status, 200u) << models.body;
  auto list = Json(models.body);
  EXPECT_EQ(std::string(list["object"].GetString()), "list");
  std::set<std::string> ids;
  for (const auto& m : list["data"].GetArray()) {
    EXPECT_EQ(std::string(m["object"].GetString()), "model");
    EXPECT_TRUE(ids.insert(m["id"].GetString()).second) << "listed twice: " << m["id"].GetString();
  }
  EXPECT_TRUE(ids.contains("iris_classifier"));
  EXPECT_TRUE(ids.contains("sae_classifier"));
  // Wrong methods are 405 (the routes exist).
  EXPECT_EQ(http_->Post("/v1/models", "{}").status, 405u);

  // A classifier as the TEI model: /info lists its labels; an unknown one: /health 503.
  auto predict = ServerProcess::Start({"--model-repository", SourceDir() + "/models", "--embed-model", "",
                                       "--predict-model", "sae_classifier"});
  ASSERT_TRUE(predict.ok()) << predict.status();
  HttpClient http((*predict)->http_port());
  auto classifier = Json(http.Get("/info").body);
  ASSERT_TRUE(classifier["model_type"].HasMember("classifier")) << http.Get("/info").body;
  EXPECT_TRUE(classifier["model_type"]["classifier"]["id2label"].HasMember("0"));
  auto missing = ServerProcess::Start({"--model-repository", SourceDir() + "/models", "--embed-model", "no_such_model"});
  if (missing.ok()) {
    EXPECT_EQ(HttpClient((*missing)->http_port()).Get("/health").status, 503u);
  }
}

// --- strict readiness and exit on error ---

// A repository with the iris model and one whose model file is not ONNX.
void WriteRepositoryWithABrokenModel(const std::string& root) {
  namespace fs = std::filesystem;
  fs::copy(SourceDir() + "/models/iris_classifier", root + "/iris_classifier", fs::copy_options::recursive);
  fs::create_directories(root + "/broken/1");
  std::ofstream(root + "/broken/config.pbtxt") << "name: \"broken\"\nplatform: \"onnxruntime_onnx\"\n";
  std::ofstream(root + "/broken/1/model.onnx") << "this is not an ONNX model";
}

TEST_F(TritonExtensionsTest, StrictReadinessAndExitOnErrorFollowFailedLoads) {
  TempDir repository;
  WriteRepositoryWithABrokenModel(repository.path());
  {
    auto lenient = ServerProcess::Start({"--model-repository", repository.path()});
    ASSERT_TRUE(lenient.ok()) << lenient.status();
    HttpClient http((*lenient)->http_port());
    EXPECT_EQ(http.Get("/v2/health/ready").status, 200u);
  }
  {
    auto strict = ServerProcess::Start({"--model-repository", repository.path(), "--strict-readiness"});
    ASSERT_TRUE(strict.ok()) << strict.status();
    HttpClient http((*strict)->http_port());
    EXPECT_EQ(http.Get("/v2/health/ready").status, 503u);
    EXPECT_EQ(http.Get("/v2/models/iris_classifier/ready").status, 200u);  // The others still serve.
    EXPECT_EQ(http.Post("/v2/models/iris_classifier/infer", kIrisJson).status, 200u);
  }
  {
    auto strict_false = ServerProcess::Start({"--model-repository", repository.path(), "--strict-readiness=false"});
    ASSERT_TRUE(strict_false.ok()) << strict_false.status();
    EXPECT_EQ(HttpClient((*strict_false)->http_port()).Get("/v2/health/ready").status, 200u);
  }
  auto exits = ServerProcess::Start({"--model-repository", repository.path(), "--exit-on-error"}, 30);
  ASSERT_FALSE(exits.ok());
  EXPECT_NE(std::string(exits.status().message()).find("broken"), std::string::npos) << exits.status();
  // A repository whose models all load starts either way.
  TempDir clean;
  std::filesystem::copy(SourceDir() + "/models/iris_classifier", clean.path() + "/iris_classifier",
                        std::filesystem::copy_options::recursive);
  auto fine = ServerProcess::Start({"--model-repository", clean.path(), "--exit-on-error", "--strict-readiness"});
  ASSERT_TRUE(fine.ok()) << fine.status();
  EXPECT_EQ(HttpClient((*fine)->http_port()).Get("/v2/health/ready").status, 200u);
}

// --- Triton's metric names (--triton-metrics) ---

TEST_F(TritonExtensionsTest, TritonMetricNamesAreExportedOnlyWithTheFlag) {
  TempDir repository;
  std::filesystem::copy(SourceDir() + "/models/iris_classifier", repository.path() + "/iris_classifier",
                        std::filesystem::copy_options::recursive);
  auto server = ServerProcess::Start(
      {"--model-repository", repository.path(), "--metrics-port", "0", "--triton-metrics"});
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_NE((*server)->metrics_port(), 0);
  HttpClient http((*server)->http_port());
  HttpClient metrics((*server)->metrics_port());
  // Two requests of two rows each, one after the other (so two runs), and one
  // the model refuses (a wrong shape never reaches the scheduler).
  for (int i = 0; i < 2; ++i) ASSERT_EQ(http.Post("/v2/models/iris_classifier/infer", kIrisJson).status, 200u);
  const std::string bad =
      R"({"inputs":[{"name":"input","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]})";
  ASSERT_EQ(http.Post("/v2/models/iris_classifier/infer", bad).status, 400u);

  const std::vector<std::string> iris = {R"(model="iris_classifier")", R"(version="1")"};
  std::string m;
  // A request is counted once its answer is written, a run right after it.
  EXPECT_TRUE(WaitUntil([&] {
    m = metrics.Get("/metrics").body;
    return MetricValue(m, "nv_inference_request_success", iris) == 2 &&
           MetricValue(m, "nv_inference_request_failure", iris) == 1 &&
           MetricValue(m, "nv_inference_exec_count", iris) == 2;
  })) << m;
  EXPECT_EQ(MetricValue(m, "nv_inference_count", iris), 4);  // Rows, not requests.
  EXPECT_EQ(MetricValue(m, "nv_inference_pending_request_count", iris), 0);
  // Cumulative microseconds: every phase took some time, and a request's
  // whole time covers its queue wait and its run.
  const double request_us = MetricValue(m, "nv_inference_request_duration_us", iris);
  const double queue_us = MetricValue(m, "nv_inference_queue_duration_us", iris);
  const double infer_us = MetricValue(m, "nv_inference_compute_infer_duration_us", iris);
  EXPECT_GT(infer_us, 0);
  EXPECT_GE(queue_us, 0);
  EXPECT_GE(MetricValue(m, "nv_inference_compute_input_duration_us", iris), 0);
  EXPECT_GE(MetricValue(m, "nv_inference_compute_output_duration_us", iris), 0);
  EXPECT_GT(request_us, queue_us + infer_us);
  // Counters, in Prometheus' terms, and whole microseconds.
  EXPECT_NE(m.find("# TYPE nv_inference_request_duration_us counter"), std::string::npos);
  EXPECT_NE(m.find("# TYPE nv_inference_pending_request_count gauge"), std::string::npos);
  EXPECT_EQ(request_us, static_cast<double>(static_cast<int64_t>(request_us)));
  // ortserve's own series are still there and agree.
  EXPECT_EQ(MetricValue(m, "ortserve_execution_total", iris), 2);
  // A new request moves the counters on.
  ASSERT_EQ(http.Post("/v2/models/iris_classifier/infer", kIrisJson).status, 200u);
  EXPECT_TRUE(WaitUntil([&] {
    m = metrics.Get("/metrics").body;
    // The run is counted before the answer is written, the request after it.
    return MetricValue(m, "nv_inference_exec_count", iris) == 3 &&
           MetricValue(m, "nv_inference_request_success", iris) == 3;
  })) << m;
  EXPECT_EQ(MetricValue(m, "nv_inference_count", iris), 6);
  EXPECT_GT(MetricValue(m, "nv_inference_request_duration_us", iris), request_us);
  // GPU gauges under Triton's names exactly where ortserve has GPU readings
  // (none on a machine without an NVIDIA driver), labelled gpu_uuid.
  if (m.find("ortserve_gpu_memory_total_bytes{") != std::string::npos) {
    EXPECT_GT(MetricValue(m, "nv_gpu_memory_total_bytes", {"gpu_uuid=\"GPU-"}), 0) << m;
    EXPECT_GE(MetricValue(m, "nv_gpu_memory_used_bytes", {"gpu_uuid=\"GPU-"}), 0) << m;
  } else {
    EXPECT_EQ(m.find("nv_gpu_"), std::string::npos) << m;
  }

  // Without the flag: ortserve's names only.
  auto plain = ServerProcess::Start({"--model-repository", repository.path(), "--metrics-port", "0"});
  ASSERT_TRUE(plain.ok()) << plain.status();
  ASSERT_EQ(HttpClient((*plain)->http_port()).Post("/v2/models/iris_classifier/infer", kIrisJson).status, 200u);
  HttpClient plain_metrics((*plain)->metrics_port());
  EXPECT_TRUE(WaitUntil([&] {
    m = plain_metrics.Get("/metrics").body;
    return MetricValue(m, "ortserve_execution_total", iris) == 1;
  })) << m;
  EXPECT_EQ(m.find("nv_inference"), std::string::npos) << m;
  EXPECT_EQ(m.find("nv_gpu"), std::string::npos) << m;
}

}  // namespace
}  // namespace ortserve::testing
