// SPDX-License-Identifier: Apache-2.0
// The KServe v2 REST API, end to end: the real ortserve binary serving the
// bundled demo models, driven over loopback HTTP like a client would.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <thread>

#include "integration/server_harness.h"

namespace ortserve::testing {
namespace {

// Appends raw little-endian values to a binary body.
template <typename T>
void AppendRaw(std::string* body, std::initializer_list<T> values) {
  for (T v : values) body->append(reinterpret_cast<const char*>(&v), sizeof(T));
}

class RestApiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto server = ServerProcess::Start({"--model-repository", SourceDir() + "/models"});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  HttpClient Client() { return HttpClient(server_->http_port()); }

  static ServerProcess* server_;
};
ServerProcess* RestApiTest::server_ = nullptr;

TEST_F(RestApiTest, HealthEndpointsAnswerOk) {
  auto client = Client();
  EXPECT_EQ(client.Get("/v2/health/live").status, 200u);
  EXPECT_EQ(client.Get("/v2/health/ready").status, 200u);
}

TEST_F(RestApiTest, ServerMetadataListsTheExtensionsClientsLookFor) {
  auto client = Client();
  auto res = client.Get("/v2");
  ASSERT_EQ(res.status, 200u);
  auto doc = Json(res.body);
  EXPECT_STREQ(doc["name"].GetString(), "ortserve");
  std::vector<std::string> extensions;
  for (const auto& e : doc["extensions"].GetArray()) extensions.emplace_back(e.GetString());
  for (const char* want : {"binary_tensor_data", "model_configuration", "statistics", "model_repository",
                           "parameters", "classification"}) {
    EXPECT_NE(std::find(extensions.begin(), extensions.end(), want), extensions.end()) << want;
  }
}

TEST_F(RestApiTest, ModelMetadataShowsServedShapesWithBatchDimension) {
  auto client = Client();
  for (std::string target : {"/v2/models/iris_classifier", "/v2/models/iris_classifier/versions/1"}) {
    auto res = client.Get(target);
    ASSERT_EQ(res.status, 200u) << res.body;
    auto doc = Json(res.body);
    EXPECT_STREQ(doc["name"].GetString(), "iris_classifier");
    EXPECT_STREQ(doc["platform"].GetString(), "onnxruntime_onnx");
    EXPECT_STREQ(doc["versions"][0].GetString(), "1");
    const auto& input = doc["inputs"][0];
    EXPECT_STREQ(input["name"].GetString(), "input");
    EXPECT_STREQ(input["datatype"].GetString(), "FP32");
    ASSERT_EQ(input["shape"].Size(), 2u);
    EXPECT_EQ(input["shape"][0].GetInt(), -1);
    EXPECT_EQ(input["shape"][1].GetInt(), 4);
  }
}

TEST_F(RestApiTest, UnknownModelOrVersionIsNotFoundWithItsName) {
  auto client = Client();
  auto res = client.Get("/v2/models/nope");
  EXPECT_EQ(res.status, 404u);
  EXPECT_NE(Json(res.body)["error"].GetString(), std::string());
  EXPECT_NE(res.body.find("nope"), std::string::npos);
  res = client.Get("/v2/models/iris_classifier/versions/7");
  EXPECT_EQ(res.status, 404u);
  EXPECT_NE(res.body.find("7"), std::string::npos);
  res = client.Get("/v2/models/iris_classifier/versions/x1");
  EXPECT_EQ(res.status, 400u);
  EXPECT_EQ(client.Get("/v2/models/nope/ready").status, 400u);
  EXPECT_EQ(client.Get("/v2/models/iris_classifier/ready").status, 200u);
  EXPECT_EQ(client.Get("/v2/models/iris_classifier/versions/1/ready").status, 200u);
}

TEST_F(RestApiTest, JsonInferenceReturnsProbabilitiesAndLabels) {
  auto client = Client();
  auto res = client.Post("/v2/models/iris_classifier/infer", R"({
    "id": "req-42", "parameters": {"trace": "abc"},
    "inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP32",
                "data": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}]})");
  ASSERT_EQ(res.status, 200u) << res.body;
  auto doc = Json(res.body);
  EXPECT_STREQ(doc["model_name"].GetString(), "iris_classifier");
  EXPECT_STREQ(doc["model_version"].GetString(), "1");
  EXPECT_STREQ(doc["id"].GetString(), "req-42");
  const rapidjson::Value* probs = nullptr;
  const rapidjson::Value* labels = nullptr;
  for (const auto& out : doc["outputs"].GetArray()) {
    if (std::string(out["name"].GetString()) == "probabilities") probs = &out;
    if (std::string(out["name"].GetString()) == "label") labels = &out;
  }
  ASSERT_NE(probs, nullptr);
  ASSERT_NE(labels, nullptr);
  EXPECT_STREQ((*probs)["datatype"].GetString(), "FP32");
  EXPECT_EQ((*probs)["shape"][0].GetInt(), 2);
  EXPECT_EQ((*probs)["shape"][1].GetInt(), 3);
  ASSERT_EQ((*probs)["data"].Size(), 6u);
  for (int row = 0; row < 2; ++row) {
    double sum = 0;
    int argmax = 0;
    for (int c = 0; c < 3; ++c) {
      double p = (*probs)["data"][row * 3 + c].GetDouble();
      EXPECT_GE(p, 0.0);
      sum += p;
      if (p > (*probs)["data"][row * 3 + argmax].GetDouble()) argmax = c;
    }
    EXPECT_NEAR(sum, 1.0, 1e-5);
    EXPECT_EQ((*labels)["data"][row].GetInt64(), argmax);
  }
  EXPECT_STREQ((*labels)["datatype"].GetString(), "INT64");
}

TEST_F(RestApiTest, BinaryTensorExtensionMatchesJsonAnswer) {
  auto client = Client();
  auto json = client.Post("/v2/models/iris_classifier/infer",
                          R"({"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[5.9,3.0,4.2,1.5]}],
                              "outputs":[{"name":"probabilities"}]})");
  ASSERT_EQ(json.status, 200u) << json.body;
  auto json_doc = Json(json.body);

  std::string header =
      R"({"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","parameters":{"binary_data_size":16}}],)"
      R"("outputs":[{"name":"probabilities","parameters":{"binary_data":true}}]})";
  std::string body = header;
  AppendRaw<float>(&body, {5.9f, 3.0f, 4.2f, 1.5f});
  auto bin = client.Post("/v2/models/iris_classifier/infer", body,
                         {{"Inference-Header-Content-Length", std::to_string(header.size())},
                          {"Content-Type", "application/octet-stream"}});
  ASSERT_EQ(bin.status, 200u) << bin.body;
  const size_t json_len = std::stoul(bin.Header("inference-header-content-length"));
  auto doc = Json(bin.body.substr(0, json_len));
  const auto& out = doc["outputs"][0];
  EXPECT_STREQ(out["name"].GetString(), "probabilities");
  EXPECT_FALSE(out.HasMember("data"));
  ASSERT_EQ(out["parameters"]["binary_data_size"].GetInt(), 12);
  ASSERT_EQ(bin.body.size(), json_len + 12);
  float probs[3];
  std::memcpy(probs, bin.body.data() + json_len, 12);
  for (int c = 0; c < 3; ++c) {
    EXPECT_FLOAT_EQ(probs[c], static_cast<float>(json_doc["outputs"][0]["data"][c].GetDouble()));
  }
}

TEST_F(RestApiTest, BinaryDataOutputMakesEveryOutputBinary) {
  auto client = Client();
  auto res = client.Post("/v2/models/iris_classifier/infer",
                         R"({"parameters":{"binary_data_output":true},
                             "inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]})");
  ASSERT_EQ(res.status, 200u) << res.body;
  const size_t json_len = std::stoul(res.Header("inference-header-content-length"));
  auto doc = Json(res.body.substr(0, json_len));
  size_t total = 0;
  for (const auto& out : doc["outputs"].GetArray()) total += out["parameters"]["binary_data_size"].GetUint();
  EXPECT_EQ(total, 3 * 4 + 8u);
  EXPECT_EQ(res.body.size(), json_len + total);
}

TEST_F(RestApiTest, RawBodyWithZeroHeaderLengthIsTheOnlyInput) {
  auto client = Client();
  std::string body;
  AppendRaw<float>(&body, {1, 2, 3, 4, 5, 6, 7, 8});
  auto res = client.Post("/v2/models/iris_classifier/infer", body, {{"Inference-Header-Content-Length", "0"}});
  ASSERT_EQ(res.status, 200u) << res.body;
  const size_t json_len = res.Header("inference-header-content-length").empty()
                              ? res.body.size()
                              : std::stoul(res.Header("inference-header-content-length"));
  auto doc = Json(res.body.substr(0, json_len));
  EXPECT_EQ(doc["outputs"][0]["shape"][0].GetInt(), 2);
}

TEST_F(RestApiTest, MultiTypeModelComputesEveryOutput) {
  auto client = Client();
  auto res = client.Post("/v2/models/multi_io/infer", R"({"inputs":[
      {"name":"a","shape":[2,3],"datatype":"FP32","data":[1.5,-2,3,0.25,5,6]},
      {"name":"b","shape":[2,3],"datatype":"INT32","data":[1,2,3,4,5,6]},
      {"name":"flag","shape":[2,1],"datatype":"BOOL","data":[true,false]}]})");
  ASSERT_EQ(res.status, 200u) << res.body;
  auto doc = Json(res.body);
  std::map<std::string, const rapidjson::Value*> outs;
  for (const auto& out : doc["outputs"].GetArray()) outs[out["name"].GetString()] = &out;
  ASSERT_EQ(outs.size(), 5u);
  EXPECT_STREQ((*outs["sum"])["datatype"].GetString(), "FP32");
  EXPECT_DOUBLE_EQ((*outs["sum"])["data"][0].GetDouble(), 2.5);
  EXPECT_DOUBLE_EQ((*outs["sum"])["data"][5].GetDouble(), 12.0);
  EXPECT_STREQ((*outs["prod_i64"])["datatype"].GetString(), "INT64");
  EXPECT_STREQ((*outs["a_fp16"])["datatype"].GetString(), "FP16");
  EXPECT_DOUBLE_EQ((*outs["a_fp16"])["data"][0].GetDouble(), 1.5);
  EXPECT_DOUBLE_EQ((*outs["a_fp16"])["data"][3].GetDouble(), 0.25);
  EXPECT_STREQ((*outs["a_f64"])["datatype"].GetString(), "FP64");
  // flag row 0 true: masked keeps a; row 1 false: zeros.
  EXPECT_DOUBLE_EQ((*outs["masked"])["data"][0].GetDouble(), 1.5);
  EXPECT_DOUBLE_EQ((*outs["masked"])["data"][3].GetDouble(), 0.0);
}

TEST_F(RestApiTest, ModelWithoutConfigIsAutoCompleted) {
  auto client = Client();
  auto res = client.Get("/v2/models/no_config_model/config");
  ASSERT_EQ(res.status, 200u) << res.body;
  auto doc = Json(res.body);
  EXPECT_STREQ(doc["name"].GetString(), "no_config_model");
  EXPECT_STREQ(doc["platform"].GetString(), "onnxruntime_onnx");
  EXPECT_GT(doc["input"].Size(), 0u);
  EXPECT_GT(doc["output"].Size(), 0u);
  EXPECT_TRUE(doc["input"][0]["dims"][0].IsInt64());
}

TEST_F(RestApiTest, ConfigEndpointIsTritonShaped) {
  auto client = Client();
  auto res = client.Get("/v2/models/iris_classifier/config");
  ASSERT_EQ(res.status, 200u);
  auto doc = Json(res.body);
  EXPECT_EQ(doc["max_batch_size"].GetInt(), 64);
  EXPECT_STREQ(doc["input"][0]["data_type"].GetString(), "TYPE_FP32");
  EXPECT_EQ(doc["input"][0]["dims"][0].GetInt(), 4);
  EXPECT_EQ(doc["dynamic_batching"]["max_queue_delay_microseconds"].GetInt(), 500);
}

TEST_F(RestApiTest, StatisticsCountSuccessesAndFailures) {
  auto client = Client();
  auto before = Json(client.Get("/v2/models/multi_io/stats").body);
  const auto count = [](const rapidjson::Document& d, const char* key) {
    return d["model_stats"][0]["inference_stats"][key]["count"].GetUint64();
  };
  const uint64_t ok0 = count(before, "success");
  const uint64_t fail0 = count(before, "fail");
  const char* good = R"({"inputs":[{"name":"a","shape":[1,3],"datatype":"FP32","data":[1,2,3]},
      {"name":"b","shape":[1,3],"datatype":"INT32","data":[1,2,3]},
      {"name":"flag","shape":[1,1],"datatype":"BOOL","data":[true]}]})";
  for (int i = 0; i < 3; ++i) ASSERT_EQ(client.Post("/v2/models/multi_io/infer", good).status, 200u);
  EXPECT_EQ(client.Post("/v2/models/multi_io/infer", R"({"inputs":[]})").status, 400u);
  // Per-batch-size statistics are recorded just after a run's answers are
  // sent: wait for them (bounded) before reading everything.
  rapidjson::Document after;
  WaitUntil([&] {
    after = Json(client.Get("/v2/models/multi_io/stats").body);
    return after["model_stats"][0]["batch_stats"].Size() > 0;
  }, 10);
  EXPECT_EQ(count(after, "success"), ok0 + 3);
  EXPECT_EQ(count(after, "fail"), fail0 + 1);
  EXPECT_STREQ(after["model_stats"][0]["name"].GetString(), "multi_io");
  EXPECT_GE(after["model_stats"][0]["execution_count"].GetUint64(), 3u);
  EXPECT_GT(after["model_stats"][0]["batch_stats"].Size(), 0u);

  auto all = Json(client.Get("/v2/models/stats").body);
  EXPECT_GE(all["model_stats"].Size(), 3u);
}

TEST_F(RestApiTest, RepositoryIndexListsEveryModelWithState) {
  auto client = Client();
  auto res = client.Post("/v2/repository/index", "");
  ASSERT_EQ(res.status, 200u);
  auto doc = Json(res.body);
  std::map<std::string, std::string> state;
  for (const auto& m : doc.GetArray()) state[m["name"].GetString()] = m["state"].GetString();
  EXPECT_EQ(state["iris_classifier"], "READY");
  EXPECT_EQ(state["multi_io"], "READY");
  EXPECT_EQ(state["no_config_model"], "READY");
}

struct BadRequest {
  const char* name;
  const char* model;
  const char* body;
  unsigned status;
  const char* message_part;
};

class RestApiBadRequestTest : public RestApiTest, public ::testing::WithParamInterface<BadRequest> {};

TEST_P(RestApiBadRequestTest, AnswersClearErrorAndKeepsServing) {
  const BadRequest& bad = GetParam();
  auto client = Client();
  auto res = client.Post(std::string("/v2/models/") + bad.model + "/infer", bad.body);
  EXPECT_EQ(res.status, bad.status) << res.body;
  auto doc = Json(res.body);
  ASSERT_TRUE(doc.IsObject() && doc.HasMember("error")) << res.body;
  EXPECT_NE(std::string(doc["error"].GetString()).find(bad.message_part), std::string::npos)
      << doc["error"].GetString();
  // The server is unaffected.
  auto good = client.Post("/v2/models/iris_classifier/infer",
                          R"({"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]})");
  EXPECT_EQ(good.status, 200u);
}

INSTANTIATE_TEST_SUITE_P(
    Errors, RestApiBadRequestTest,
    ::testing::Values(
        BadRequest{"MalformedJson", "iris_classifier", R"({"inputs": [)", 400, ""},
        BadRequest{"NotAnObject", "iris_classifier", R"([1,2])", 400, ""},
        BadRequest{"WrongShape", "iris_classifier",
                   R"({"inputs":[{"name":"input","shape":[1,5],"datatype":"FP32","data":[1,2,3,4,5]}]})", 400,
                   "input"},
        BadRequest{"WrongDatatype", "iris_classifier",
                   R"({"inputs":[{"name":"input","shape":[1,4],"datatype":"INT32","data":[1,2,3,4]}]})", 400,
                   "INT32"},
        BadRequest{"CountMismatch", "iris_classifier",
                   R"({"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[1,2,3]}]})", 400, "input"},
        BadRequest{"UnknownInput", "iris_classifier",
                   R"({"inputs":[{"name":"bogus","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]})", 400,
                   "bogus"},
        BadRequest{"MissingInput", "multi_io",
                   R"({"inputs":[{"name":"a","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]})", 400, "b"},
        BadRequest{"UnknownOutput", "iris_classifier",
                   R"({"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}],
                       "outputs":[{"name":"nope"}]})",
                   400, "nope"},
        BadRequest{"BatchTooLarge", "multi_io",
                   R"({"inputs":[{"name":"a","shape":[9,3],"datatype":"FP32","data":[1,2,3,4,5,6,7,8,9,1,2,3,4,5,6,7,8,9,1,2,3,4,5,6,7,8,9]},
                      {"name":"b","shape":[9,3],"datatype":"INT32","data":[1,2,3,4,5,6,7,8,9,1,2,3,4,5,6,7,8,9,1,2,3,4,5,6,7,8,9]},
                      {"name":"flag","shape":[9,1],"datatype":"BOOL","data":[true,true,true,true,true,true,true,true,true]}]})",
                   400, "batch size 9"},
        BadRequest{"UnknownDatatype", "iris_classifier",
                   R"({"inputs":[{"name":"input","shape":[1,4],"datatype":"FLOAT","data":[1,2,3,4]}]})", 400,
                   "FLOAT"},
        BadRequest{"UnknownModel", "ghost",
                   R"({"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]})", 404,
                   "ghost"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST_F(RestApiTest, BinaryBodyShorterThanDeclaredIsRejected) {
  auto client = Client();
  std::string header =
      R"({"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","parameters":{"binary_data_size":16}}]})";
  std::string body = header;
  AppendRaw<float>(&body, {1, 2, 3});  // 12 bytes, 16 declared.
  auto res = client.Post("/v2/models/iris_classifier/infer", body,
                         {{"Inference-Header-Content-Length", std::to_string(header.size())}});
  EXPECT_EQ(res.status, 400u) << res.body;
  res = client.Post("/v2/models/iris_classifier/infer", body, {{"Inference-Header-Content-Length", "abc"}});
  EXPECT_EQ(res.status, 400u);
  EXPECT_NE(res.body.find("Inference-Header-Content-Length"), std::string::npos);
}

TEST_F(RestApiTest, WrongMethodAndUnknownPathAreRejected) {
  auto client = Client();
  EXPECT_EQ(client.Get("/v2/models/iris_classifier/infer").status, 405u);
  EXPECT_EQ(client.Post("/v2/health/live", "").status, 405u);
  EXPECT_EQ(client.Get("/v3/anything").status, 404u);
  EXPECT_EQ(client.Get("/v2/models/iris_classifier/bogus").status, 404u);
}

TEST_F(RestApiTest, ConcurrentClientsAllGetCorrectAnswers) {
  constexpr int kThreads = 8;
  constexpr int kRequests = 40;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      HttpClient client(server_->http_port());
      for (int i = 0; i < kRequests; ++i) {
        const int a = t * 100 + i;
        auto res = client.Post("/v2/models/multi_io/infer",
                               "{\"inputs\":[{\"name\":\"a\",\"shape\":[1,3],\"datatype\":\"FP32\",\"data\":[" +
                                   std::to_string(a) + ",0,0]},"
                                   "{\"name\":\"b\",\"shape\":[1,3],\"datatype\":\"INT32\",\"data\":[1,0,0]},"
                                   "{\"name\":\"flag\",\"shape\":[1,1],\"datatype\":\"BOOL\",\"data\":[true]}],"
                                   "\"outputs\":[{\"name\":\"sum\"}]}");
        if (res.status != 200) continue;
        auto doc = Json(res.body);
        if (doc["outputs"][0]["data"][0].GetDouble() == a + 1) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kThreads * kRequests);
}

TEST(RestApiBatchingTest, ALoneRequestDoesNotWaitForCompanyUnlessTheConfigSaysSo) {
  // Two models whose batchers may wait 2 s for company: the default runs a
  // request that finds the queue empty and the instance idle at once;
  // wait_when_idle makes it wait the whole delay, as Triton does.
  TempDir repo;
  ASSERT_TRUE(RunPython(R"(
import os, onnx
from onnx import helper, TensorProto
root = ')" + repo.path() + R"('
x = helper.make_tensor_value_info('x', TensorProto.FLOAT, ['N', 2])
y = helper.make_tensor_value_info('y', TensorProto.FLOAT, ['N', 2])
g = helper.make_graph([helper.make_node('Neg', ['x'], ['y'])], 'g', [x], [y])
m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)]); m.ir_version = 8
for name, extra in (('eager', ''), ('patient', ' wait_when_idle: true')):
    os.makedirs(root + '/' + name + '/1')
    onnx.save(m, root + '/' + name + '/1/model.onnx')
    open(root + '/' + name + '/config.pbtxt', 'w').write(
        'max_batch_size: 16\ndynamic_batching { max_queue_delay_microseconds: 2000000' + extra + ' }\n')
)")
                  .ok());
  auto server = ServerProcess::Start({"--model-repository", repo.path()});
  ASSERT_TRUE(server.ok()) << server.status();
  HttpClient client((*server)->http_port());
  const std::string body = R"({"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[1,2]}]})";
  auto timed = [&](const std::string& model) {
    const auto start = std::chrono::steady_clock::now();
    auto res = client.Post("/v2/models/" + model + "/infer", body);
    EXPECT_EQ(res.status, 200u) << res.body;
    EXPECT_EQ(Json(res.body)["outputs"][0]["data"][1].GetDouble(), -2);
    return std::chrono::steady_clock::now() - start;
  };
  for (int i = 0; i < 3; ++i) {
    EXPECT_LT(timed("eager"), std::chrono::seconds(1)) << "request " << i << " waited for company";
  }
  EXPECT_GE(timed("patient"), std::chrono::milliseconds(1900));
  auto stats = Json(client.Get("/v2/models/eager/stats").body);
  EXPECT_EQ(stats["model_stats"][0]["execution_count"].GetUint64(), 3u);
}

TEST(RestApiBatchingTest, ConcurrentRequestsRunAsBatches) {
  // A model whose batcher waits up to 200 ms for company: concurrent requests
  // must share runs, which the statistics extension shows.
  TempDir repo;
  ASSERT_TRUE(RunPython(R"(
import os, onnx
from onnx import helper, TensorProto
root = ')" + repo.path() + R"('
os.makedirs(root + '/batched/1')
x = helper.make_tensor_value_info('x', TensorProto.FLOAT, ['N', 2])
y = helper.make_tensor_value_info('y', TensorProto.FLOAT, ['N', 2])
g = helper.make_graph([helper.make_node('Neg', ['x'], ['y'])], 'g', [x], [y])
m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)]); m.ir_version = 8
onnx.save(m, root + '/batched/1/model.onnx')
open(root + '/batched/config.pbtxt', 'w').write(
    'max_batch_size: 16\ndynamic_batching { max_queue_delay_microseconds: 200000 preferred_batch_size: [ 8 ] wait_when_idle: true }\n')
)")
                  .ok());
  auto server = ServerProcess::Start({"--model-repository", repo.path()});
  ASSERT_TRUE(server.ok()) << server.status();
  constexpr int kClients = 8;
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      HttpClient client((*server)->http_port());
      auto res = client.Post("/v2/models/batched/infer",
                             "{\"inputs\":[{\"name\":\"x\",\"shape\":[1,2],\"datatype\":\"FP32\",\"data\":[" +
                                 std::to_string(c) + ",1]}]}");
      // Each client gets its own row back, negated.
      if (res.status == 200 && Json(res.body)["outputs"][0]["data"][0].GetDouble() == -c) ++ok;
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), kClients);
  HttpClient client((*server)->http_port());
  // A run's per-batch-size statistics are recorded after its answers are
  // sent, so a client can read the stats just before them: poll briefly.
  rapidjson::Document stats;
  uint64_t largest = 0;
  WaitUntil([&] {
    stats = Json(client.Get("/v2/models/batched/stats").body);
    largest = 0;
    for (const auto& b : stats["model_stats"][0]["batch_stats"].GetArray()) {
      largest = std::max<uint64_t>(largest, b["batch_size"].GetUint64());
    }
    return largest > 1;
  }, 10);
  const auto& s = stats["model_stats"][0];
  EXPECT_EQ(s["inference_count"].GetUint64(), static_cast<uint64_t>(kClients));
  EXPECT_LT(s["execution_count"].GetUint64(), static_cast<uint64_t>(kClients)) << "requests were not batched";
  EXPECT_GT(largest, 1u);
}

TEST(RestApiLimitsTest, OversizedBodyGets413AndServerKeepsServing) {
  auto server = ServerProcess::Start({"--model-repository", SourceDir() + "/models", "--http-max-input-size", "512"});
  ASSERT_TRUE(server.ok()) << server.status();
  HttpClient client((*server)->http_port());
  std::string data;
  for (int i = 0; i < 200; ++i) data += "1.0,";
  auto res = client.Post("/v2/models/iris_classifier/infer",
                         "{\"inputs\":[{\"name\":\"input\",\"shape\":[50,4],\"datatype\":\"FP32\",\"data\":[" + data +
                             "1]}]}");
  EXPECT_EQ(res.status, 413u) << res.body;
  EXPECT_NE(res.body.find("512"), std::string::npos);
  HttpClient fresh((*server)->http_port());
  EXPECT_EQ(fresh.Get("/v2/health/live").status, 200u);
}

TEST(RestApiRepositoryTest, BrokenModelIsReportedAndOthersStillServe) {
  TempDir repo;
  ASSERT_TRUE(RunPython(R"(
import os, onnx
from onnx import helper, TensorProto
root = ')" + repo.path() + R"('
os.makedirs(root + '/good/1'); os.makedirs(root + '/corrupt/1'); os.makedirs(root + '/badconfig/1')
x = helper.make_tensor_value_info('x', TensorProto.FLOAT, [2])
y = helper.make_tensor_value_info('y', TensorProto.FLOAT, [2])
g = helper.make_graph([helper.make_node('Neg', ['x'], ['y'])], 'g', [x], [y])
m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)]); m.ir_version = 8
onnx.save(m, root + '/good/1/model.onnx')
onnx.save(m, root + '/badconfig/1/model.onnx')
open(root + '/corrupt/1/model.onnx', 'wb').write(b'not an onnx file')
open(root + '/badconfig/config.pbtxt', 'w').write('max_batch_size: "many"')
open(root + '/good/config.pbtxt', 'w').write('name: "good"\nsequence_batching { }\nsome_future_field: 3\n')
)")
                  .ok());
  auto server = ServerProcess::Start({"--model-repository", repo.path()});
  ASSERT_TRUE(server.ok()) << server.status();
  HttpClient client((*server)->http_port());
  auto index = Json(client.Post("/v2/repository/index", "").body);
  std::map<std::string, std::pair<std::string, std::string>> state;
  for (const auto& m : index.GetArray()) {
    state[m["name"].GetString()] = {m["state"].GetString(), m["reason"].GetString()};
  }
  EXPECT_EQ(state["good"].first, "READY");
  EXPECT_EQ(state["corrupt"].first, "UNAVAILABLE");
  EXPECT_NE(state["corrupt"].second, "");
  EXPECT_EQ(state["badconfig"].first, "UNAVAILABLE");
  EXPECT_NE(state["badconfig"].second.find("config.pbtxt"), std::string::npos) << state["badconfig"].second;

  auto meta = client.Get("/v2/models/corrupt");
  EXPECT_EQ(meta.status, 503u);
  EXPECT_NE(meta.body.find("corrupt"), std::string::npos);
  auto res = client.Post("/v2/models/good/infer", R"({"inputs":[{"name":"x","shape":[2],"datatype":"FP32","data":[1,-2]}]})");
  ASSERT_EQ(res.status, 200u) << res.body;
  EXPECT_NE(res.body.find("[-1.0,2.0]"), std::string::npos) << res.body;
  // Unsupported and unknown config fields are reported by name.
  const std::string log = (*server)->Output();
  EXPECT_NE(log.find("sequence_batching"), std::string::npos) << log;
  EXPECT_NE(log.find("some_future_field"), std::string::npos) << log;
}

}  // namespace
}  // namespace ortserve::testing
