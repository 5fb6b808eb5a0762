// SPDX-License-Identifier: Apache-2.0
// Rate limits and circuit breakers on the real ortserve binary: per-client
// 429s with Retry-After over HTTP, RESOURCE_EXHAUSTED over gRPC (one bucket
// for a client's connections); the global limit shared through a real redis-server
// that is killed in the middle of the run (requests keep being served under
// the local limit, the fallback is counted) and restarted; a model version
// that fails on some inputs opening its breaker, sending traffic to the
// fallback model (or 503 without one), and closing again.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "admission/api_keys.h"
#include "common/redis_process.h"
#include "core/strings.h"
#include "integration/grpc_test_util.h"
#include "integration/server_harness.h"

namespace ortserve::testing {
namespace {
namespace fs = std::filesystem;

void WriteConfig(const std::string& repo, const std::string& model, const std::string& extra) {
  fs::create_directories(fs::path(repo) / model);
  std::ofstream(fs::path(repo) / model / "config.pbtxt")
      << "max_batch_size: 8\n"
         "input { name: \"x\" data_type: TYPE_FP32 dims: [2] }\n"
         "output { name: \"y\" data_type: TYPE_FP32 dims: [2] }\n"
         "dynamic_batching { max_queue_delay_microseconds: 0 }\n"
      << extra;
}

// y = x reshaped to [-1, w], where w is 2 while every x <= 5 and 3 once one
// is larger: a row of two values cannot be reshaped into threes, so ONNX
// Runtime fails the run (an internal error, 500, not a bad request). A test
// picks per request whether the version fails.
absl::Status WriteFlakyModel(const std::string& path) {
  return RunPython(StrCat(R"(
import os
import onnx
from onnx import helper, TensorProto
x = helper.make_tensor_value_info('x', TensorProto.FLOAT, ['N', 2])
y = helper.make_tensor_value_info('y', TensorProto.FLOAT, ['N', 2])
consts = [helper.make_tensor('five', TensorProto.FLOAT, [], [5.0]),
          helper.make_tensor('three', TensorProto.INT64, [1], [3]),
          helper.make_tensor('two', TensorProto.INT64, [1], [2]),
          helper.make_tensor('minus_one', TensorProto.INT64, [1], [-1])]
nodes = [helper.make_node('ReduceMax', ['x'], ['m'], keepdims=0),
         helper.make_node('Greater', ['m', 'five'], ['big']),
         helper.make_node('Where', ['big', 'three', 'two'], ['w']),
         helper.make_node('Concat', ['minus_one', 'w'], ['shape'], axis=0),
         helper.make_node('Reshape', ['x', 'shape'], ['y'])]
graph = helper.make_graph(nodes, 'flaky', [x], [y], consts)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)])
model.ir_version = 8
path = ')", path, R"('
os.makedirs(os.path.dirname(path), exist_ok=True)
onnx.save(model, path)
)"));
}

std::string Body(float a) {
  return StrCat(R"({"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[)", a, ",", a, "]}]}");
}

std::string Scrape(uint16_t port) { return HttpClient(port).Get("/metrics").body; }

TEST(RateLimitTest, PerClientLimitAnswers429WithRetryAfter) {
  TempDir repo;
  ASSERT_TRUE(WriteAddModels({{repo.path() + "/add/1/model.onnx", 1}}).ok());
  WriteConfig(repo.path(), "add", "");
  // One request per 4 s, two at once.
  auto server = ServerProcess::Start({"--model-repository", repo.path(), "--metrics-port", "0",
                                      "--rate-limit-per-client", "0.25:2"});
  ASSERT_TRUE(server.ok()) << server.status();
  HttpClient client((*server)->http_port());
  EXPECT_EQ(client.Post("/v2/models/add/infer", Body(1)).status, 200u);
  EXPECT_EQ(client.Post("/v2/models/add/infer", Body(1)).status, 200u);
  HttpClient fresh((*server)->http_port());  // Another connection of the same client address.
  auto refused = fresh.Post("/v2/models/add/infer", Body(1));
  EXPECT_EQ(refused.status, 429u) << refused.body;
  const int retry = std::atoi(refused.Header("retry-after").c_str());
  EXPECT_GE(retry, 3);
  EXPECT_LE(retry, 4);
  EXPECT_NE(refused.body.find("--rate-limit-per-client"), std::string::npos) << refused.body;
  // Health and metadata are not rate limited.
  EXPECT_EQ(fresh.Get("/v2/health/ready").status, 200u);
  const std::string m = Scrape((*server)->metrics_port());
  EXPECT_EQ(MetricValue(m, "ortserve_admission_refused_total", {R"(reason="rate_client")"}), 1);
}

TEST(RateLimitTest, GrpcClientsShareOneBucketAcrossTheirConnections) {
  TempDir repo;
  ASSERT_TRUE(WriteAddModels({{repo.path() + "/add/1/model.onnx", 1}}).ok());
  WriteConfig(repo.path(), "add", "");
  auto server = ServerProcess::Start({"--model-repository", repo.path(), "--grpc-port", "0", "--metrics-port", "0",
                                      "--rate-limit-per-client", "0.25:2"});
  ASSERT_TRUE(server.ok()) << server.status();
  std::vector<grpc::StatusCode> codes;
  std::string refusal;
  for (int i = 0; i < 3; ++i) {
    // A connection of its own each time (no shared subchannel): the key is
    // the address without the port.
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    auto stub = inference::GRPCInferenceService::NewStub(grpc::CreateCustomChannel(
        "127.0.0.1:" + std::to_string((*server)->grpc_port()), grpc::InsecureChannelCredentials(), args));
    inference::ModelInferRequest request;
    request.set_model_name("add");
    AddRawInput<float>(&request, "x", "FP32", {1, 2}, {1, 2});
    inference::ModelInferResponse response;
    const grpc::Status status = stub->ModelInfer(Context().get(), request, &response);
    codes.push_back(status.error_code());
    if (!status.ok()) refusal = status.error_message();
  }
  EXPECT_EQ(codes, (std::vector<grpc::StatusCode>{grpc::StatusCode::OK, grpc::StatusCode::OK,
                                                  grpc::StatusCode::RESOURCE_EXHAUSTED}));
  EXPECT_NE(refusal.find("--rate-limit-per-client"), std::string::npos) << refusal;
  EXPECT_NE(refusal.find("'ipv4:127.0.0.1'"), std::string::npos) << refusal;
}

// Authentication and rate limits together: each API key has a bucket of its
// own wherever its requests come from (HTTP or gRPC, any connection), keys
// behind one address do not starve each other, and requests that fail
// authentication are refused before they reach a bucket, so an anonymous
// flood or a guessed key cannot spend a real client's budget.
TEST(RateLimitTest, WithApiKeysEachKeyHasItsOwnBucketAndBadCredentialsSpendNone) {
  TempDir repo;
  ASSERT_TRUE(WriteAddModels({{repo.path() + "/add/1/model.onnx", 1}}).ok());
  WriteConfig(repo.path(), "add", "");
  std::string key_file;
  std::map<std::string, std::string> keys;
  for (const std::string id : {"ward-a", "ward-b"}) {
    admission::ApiKeySpec spec;
    spec.id = id;
    spec.scopes.Add(admission::Scope::kInfer);
    auto key = admission::GenerateApiKey(spec);
    ASSERT_TRUE(key.ok()) << key.status();
    key_file += key->line + "\n";
    keys[id] = key->key;
  }
  const std::string keys_path = repo.path() + "/keys";
  std::ofstream(keys_path) << key_file;
  // One request per 4 s per client, two at once.
  auto server = ServerProcess::Start({"--model-repository", repo.path(), "--grpc-port", "0", "--metrics-port", "0",
                                      "--api-keys-file", keys_path, "--metrics-auth=false", "--rate-limit-per-client",
                                      "0.25:2"});
  ASSERT_TRUE(server.ok()) << server.status();
  auto as = [&](const std::string& id) { return std::map<std::string, std::string>{{"X-API-Key", keys[id]}}; };
  HttpClient client((*server)->http_port());

  // Anonymous and wrong-secret requests: 401 each time, never 429.
  std::string wrong = keys["ward-a"];
  wrong.replace(wrong.size() - 4, 4, wrong.ends_with("AAAA") ? "BBBB" : "AAAA");
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(client.Post("/v2/models/add/infer", Body(1)).status, 401u);
    EXPECT_EQ(client.Post("/v2/models/add/infer", Body(1), {{"X-API-Key", wrong}}).status, 401u);
  }

  // ward-a spends its burst, over HTTP then gRPC: they share the key's bucket.
  EXPECT_EQ(client.Post("/v2/models/add/infer", Body(1), as("ward-a")).status, 200u);
  auto stub = inference::GRPCInferenceService::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string((*server)->grpc_port()), grpc::InsecureChannelCredentials()));
  auto grpc_infer = [&](const std::string& id) {
    auto context = Context();
    context->AddMetadata("x-api-key", keys[id]);
    inference::ModelInferRequest request;
    request.set_model_name("add");
    AddRawInput<float>(&request, "x", "FP32", {1, 2}, {1, 2});
    inference::ModelInferResponse response;
    return stub->ModelInfer(context.get(), request, &response);
  };
  EXPECT_TRUE(grpc_infer("ward-a").ok());
  const grpc::Status exhausted = grpc_infer("ward-a");
  EXPECT_EQ(exhausted.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << exhausted.error_message();
  EXPECT_NE(exhausted.error_message().find("'id:ward-a'"), std::string::npos) << exhausted.error_message();
  HttpClient other_connection((*server)->http_port());
  auto refused = other_connection.Post("/v2/models/add/infer", Body(1), as("ward-a"));
  EXPECT_EQ(refused.status, 429u) << refused.body;
  EXPECT_FALSE(refused.Header("retry-after").empty());

  // ward-b, from the same address, still has its whole burst.
  EXPECT_EQ(client.Post("/v2/models/add/infer", Body(1), as("ward-b")).status, 200u);
  EXPECT_TRUE(grpc_infer("ward-b").ok());
  EXPECT_EQ(client.Post("/v2/models/add/infer", Body(1), as("ward-b")).status, 429u);

  const std::string m = Scrape((*server)->metrics_port());
  EXPECT_EQ(MetricValue(m, "ortserve_admission_refused_total", {R"(reason="rate_client")"}), 3);
}

TEST(RateLimitTest, GlobalLimitThroughRedisSurvivesRedisGoingAwayAndComingBack) {
  if (!RedisProcess::Available()) GTEST_SKIP() << "redis-server is not installed (scripts/setup.sh)";
  RedisProcess redis;
  ASSERT_TRUE(redis.Start());
  TempDir repo;
  ASSERT_TRUE(WriteAddModels({{repo.path() + "/add/1/model.onnx", 1}}).ok());
  WriteConfig(repo.path(), "add", "");
  auto server = ServerProcess::Start({"--model-repository", repo.path(), "--metrics-port", "0",
                                      "--rate-limit-global", "20:20", "--rate-limit-redis", redis.address(),
                                      "--rate-limit-redis-key", "it:global"});
  ASSERT_TRUE(server.ok()) << server.status();
  const uint16_t metrics = (*server)->metrics_port();
  ASSERT_TRUE(WaitUntil([&] { return MetricValue(Scrape(metrics), "ortserve_rate_limit_redis_up") == 1; }));

  // Sends requests for `seconds`; counts the answers by status.
  auto run = [&](double seconds) {
    std::map<unsigned, int> by_status;
    HttpClient client((*server)->http_port());
    const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < until) {
      auto res = client.Post("/v2/models/add/infer", Body(1));
      ++by_status[res.status];
      if (res.status == 429) EXPECT_FALSE(res.Header("retry-after").empty());
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return by_status;
  };
  auto shared = run(1.0);
  EXPECT_GT(shared[429], 0);
  EXPECT_GE(shared[200], 10);
  EXPECT_LE(shared[200], 20 + 20 * 1 + 5);  // The burst plus a second of refill.
  EXPECT_EQ(shared.size(), 2u) << "only 200 and 429";
  std::string m = Scrape(metrics);
  EXPECT_GT(MetricValue(m, "ortserve_rate_limit_redis_leased_tokens_total"), 0);
  EXPECT_EQ(MetricValue(m, "ortserve_rate_limit_redis_fallback_total"), 0);

  // Redis goes away mid-run: requests are still served, under the local limit.
  redis.Stop();
  auto local = run(1.5);
  EXPECT_GT(local[200], 0);
  EXPECT_EQ(local[500] + local[502] + local[503], 0);
  EXPECT_LE(local[200], 20 + 20 * 2 + 5);
  m = Scrape(metrics);
  EXPECT_EQ(MetricValue(m, "ortserve_rate_limit_redis_up"), 0);
  EXPECT_GT(MetricValue(m, "ortserve_rate_limit_redis_fallback_total"), 0);
  EXPECT_GT(MetricValue(m, "ortserve_rate_limit_redis_errors_total"), 0);
  const std::string output = (*server)->Output();
  size_t warnings = 0;
  for (size_t at = output.find("is unreachable"); at != std::string::npos; at = output.find("is unreachable", at + 1)) {
    ++warnings;
  }
  EXPECT_EQ(warnings, 1u) << "the outage is logged once";

  // Back: the shared bucket takes over again.
  ASSERT_TRUE(redis.Start());
  ASSERT_TRUE(WaitUntil([&] { return MetricValue(Scrape(metrics), "ortserve_rate_limit_redis_up") == 1; }));
  const double fallbacks = MetricValue(Scrape(metrics), "ortserve_rate_limit_redis_fallback_total");
  auto again = run(0.5);
  EXPECT_GT(again[200], 0);
  EXPECT_EQ(MetricValue(Scrape(metrics), "ortserve_rate_limit_redis_fallback_total"), fallbacks);
}

class BreakerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    repo_ = new TempDir();
    const std::string& r = repo_->path();
    ASSERT_TRUE(WriteFlakyModel(r + "/flaky/1/model.onnx").ok());
    ASSERT_TRUE(WriteFlakyModel(r + "/lonely/1/model.onnx").ok());
    ASSERT_TRUE(WriteAddModels({{r + "/backup/1/model.onnx", 100}}).ok());
    const std::string breaker =
        "circuit_breaker { enable: true min_requests: 4 error_rate: 0.5 open_ms: 1500 half_open_requests: 2 }";
    WriteConfig(r, "flaky", "routing { fallback_model: \"backup\" " + breaker + " }\n");
    WriteConfig(r, "lonely", "routing { " + breaker + " }\n");
    WriteConfig(r, "backup", "");
    auto server = ServerProcess::Start({"--model-repository", r, "--metrics-port", "0"});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();
  }
  static void TearDownTestSuite() {
    delete server_;
    delete repo_;
  }
  struct Answer {
    unsigned status = 0;
    std::string model;
    std::string retry_after;
    std::string body;
  };
  static Answer Infer(const std::string& model, float x) {
    HttpClient client(server_->http_port());
    auto res = client.Post("/v2/models/" + model + "/infer", Body(x));
    Answer answer{res.status, "", res.Header("retry-after"), res.body};
    if (res.status == 200) answer.model = Json(res.body)["model_name"].GetString();
    return answer;
  }
  static double State(const std::string& model) {
    return MetricValue(Scrape(server_->metrics_port()), "ortserve_circuit_breaker_state",
                       {"model=\"" + model + "\"", R"(version="1")"});
  }
  static double Transitions(const std::string& model, const std::string& to) {
    return MetricValue(Scrape(server_->metrics_port()), "ortserve_circuit_breaker_transitions_total",
                       {"model=\"" + model + "\"", "to=\"" + to + "\""});
  }
  static TempDir* repo_;
  static ServerProcess* server_;
};
TempDir* BreakerTest::repo_ = nullptr;
ServerProcess* BreakerTest::server_ = nullptr;

TEST_F(BreakerTest, OpensOnAFailingVersionFallsBackAndClosesAgain) {
  // Healthy: the version's own answer.
  Answer healthy = Infer("flaky", 1);
  ASSERT_EQ(healthy.status, 200u) << healthy.body;
  EXPECT_EQ(healthy.model, "flaky");
  EXPECT_EQ(State("flaky"), 0);
  // Failing runs: each is rescued by the fallback; after 4 of 5 failed, the breaker opens.
  for (int i = 0; i < 4; ++i) {
    Answer failed = Infer("flaky", 100);
    ASSERT_EQ(failed.status, 200u) << failed.body;
    EXPECT_EQ(failed.model, "backup");
  }
  EXPECT_EQ(State("flaky"), 1);
  EXPECT_EQ(Transitions("flaky", "open"), 1);
  // Open: even a request the version could answer goes to the fallback.
  Answer skipped = Infer("flaky", 1);
  ASSERT_EQ(skipped.status, 200u);
  EXPECT_EQ(skipped.model, "backup");
  EXPECT_NE(skipped.body.find("circuit breaker is open"), std::string::npos) << skipped.body;
  EXPECT_GE(MetricValue(Scrape(server_->metrics_port()), "ortserve_circuit_breaker_rejected_total",
                        {R"(model="flaky")"}),
            1);
  // After open_ms, two good probes close it: the version answers again.
  std::this_thread::sleep_for(std::chrono::milliseconds(1600));
  for (int i = 0; i < 2; ++i) {
    Answer probe = Infer("flaky", 2);
    ASSERT_EQ(probe.status, 200u);
    EXPECT_EQ(probe.model, "flaky");
  }
  EXPECT_EQ(State("flaky"), 0);
  EXPECT_EQ(Transitions("flaky", "half_open"), 1);
  EXPECT_EQ(Transitions("flaky", "closed"), 1);
  EXPECT_EQ(Infer("flaky", 3).model, "flaky");
}

TEST_F(BreakerTest, WithoutAFallbackAnOpenBreakerAnswers503WithRetryAfter) {
  for (int i = 0; i < 4; ++i) {
    Answer failed = Infer("lonely", 100);
    EXPECT_EQ(failed.status, 500u) << failed.body;  // The run's own error while closed.
  }
  Answer refused = Infer("lonely", 1);
  EXPECT_EQ(refused.status, 503u) << refused.body;
  EXPECT_NE(refused.body.find("circuit breaker is open"), std::string::npos) << refused.body;
  EXPECT_EQ(refused.retry_after, "2");  // 1.5 s, rounded up.
  // A probe that fails opens it again.
  std::this_thread::sleep_for(std::chrono::milliseconds(1600));
  EXPECT_EQ(Infer("lonely", 100).status, 500u);
  EXPECT_EQ(Infer("lonely", 1).status, 503u);
  EXPECT_EQ(Transitions("lonely", "open"), 2);
  std::this_thread::sleep_for(std::chrono::milliseconds(1600));
  EXPECT_EQ(Infer("lonely", 1).status, 200u);
  EXPECT_EQ(Infer("lonely", 1).status, 200u);
  EXPECT_EQ(State("lonely"), 0);
}

}  // namespace
}  // namespace ortserve::testing
