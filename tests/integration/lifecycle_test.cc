// SPDX-License-Identifier: Apache-2.0
// Model lifecycle end to end: the real ortserve binary with explicit and poll
// model control, config overrides, rollback of corrupt versions, path
// traversal attempts, and version swaps under continuous HTTP load.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "integration/server_harness.h"

namespace ortserve::testing {
namespace {
namespace fs = std::filesystem;

void MakeAddModels(const std::vector<std::pair<std::string, float>>& models) {
  absl::Status status = WriteAddModels(models);
  ASSERT_TRUE(status.ok()) << status;
}

// Moves a finished version folder into place in one rename, as a deploy
// script should, so the server never reads a half-copied file.
void PublishVersion(const fs::path& staged, const fs::path& model_dir, int version) {
  fs::rename(staged, model_dir / std::to_string(version));
}

void WriteCorruptVersion(const fs::path& staging, const fs::path& model_dir, int version) {
  const fs::path dir = staging / ("corrupt-" + std::to_string(version));
  fs::create_directories(dir);
  std::ofstream(dir / "model.onnx", std::ios::binary) << "this is not an onnx protobuf \x01\x02\x03";
  PublishVersion(dir, model_dir, version);
}

constexpr char kInferBody[] =
    R"({"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1.0, 2.0]}]})";

// The version that answered and whether its output was x + version.
struct Answer {
  unsigned status = 0;
  std::string version;
  bool consistent = false;
  std::string body;
};
Answer Infer(HttpClient& client, const std::string& model) {
  Answer answer;
  auto res = client.Post("/v2/models/" + model + "/infer", kInferBody);
  answer.status = res.status;
  answer.body = res.body;
  if (res.status != 200) return answer;
  auto doc = Json(res.body);
  if (doc.HasParseError() || !doc.HasMember("model_version")) return answer;
  answer.version = doc["model_version"].GetString();
  const auto& data = doc["outputs"][0]["data"];
  const float addend = std::stof(answer.version);
  answer.consistent = data.Size() == 2 && std::abs(data[0].GetFloat() - (1.f + addend)) < 1e-4 &&
                      std::abs(data[1].GetFloat() - (2.f + addend)) < 1e-4;
  return answer;
}


// The index entry of model/version: {state, reason}, or empty strings.
std::pair<std::string, std::string> IndexEntry(HttpClient& client, const std::string& model,
                                               const std::string& version) {
  auto res = client.Post("/v2/repository/index", "");
  auto doc = Json(res.body);
  if (doc.HasParseError() || !doc.IsArray()) return {};
  for (const auto& e : doc.GetArray()) {
    if (model != e["name"].GetString()) continue;
    if (!e.HasMember("version") || version != e["version"].GetString()) continue;
    return {e.HasMember("state") ? e["state"].GetString() : "", e.HasMember("reason") ? e["reason"].GetString() : ""};
  }
  return {};
}

std::string LoadBody(const std::string& config_json) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartObject();
  w.Key("parameters");
  w.StartObject();
  w.Key("config");
  w.String(config_json.c_str());
  w.EndObject();
  w.EndObject();
  return buffer.GetString();
}

TEST(LifecycleTest, ExplicitModeLoadsAndUnloadsWithAConfigOverride) {
  TempDir repo;
  MakeAddModels({{repo.path() + "/a/1/model.onnx", 1.f}, {repo.path() + "/b/1/model.onnx", 1.f}});
  auto server = ServerProcess::Start({"--model-repository", repo.path(), "--model-control-mode", "explicit",
                                      "--load-model", "a"});
  ASSERT_TRUE(server.ok()) << server.status();
  HttpClient client((*server)->http_port());
  EXPECT_EQ(Infer(client, "a").status, 200u);
  EXPECT_EQ(client.Get("/v2/models/b/ready").status, 400u);
  // The index lists what could be loaded too (Triton's explicit mode), and
  // {"ready": true} leaves it out.
  auto index = Json(client.Post("/v2/repository/index", "").body);
  bool listed = false;
  for (const auto& e : index.GetArray()) {
    if (std::string(e["name"].GetString()) != "b") continue;
    listed = true;
    EXPECT_FALSE(e.HasMember("version"));
    EXPECT_STREQ(e["state"].GetString(), "UNAVAILABLE");
    EXPECT_STREQ(e["reason"].GetString(), "unloaded");
  }
  EXPECT_TRUE(listed) << "never-loaded model 'b' missing from the index";
  auto ready_index = Json(client.Post("/v2/repository/index", R"({"ready": true})").body);
  ASSERT_EQ(ready_index.GetArray().Size(), 1u);
  EXPECT_STREQ(ready_index[0]["name"].GetString(), "a");
  EXPECT_EQ(client.Post("/v2/repository/index", R"({"ready": "yes"})").status, 400u);

  auto res = client.Post("/v2/repository/models/b/load", "");
  ASSERT_EQ(res.status, 200u) << res.body;
  Answer b = Infer(client, "b");
  EXPECT_EQ(b.status, 200u) << b.body;
  EXPECT_TRUE(b.consistent) << b.body;

  // Override: batch at most 1, with a warm-up; the config endpoint shows it.
  res = client.Post("/v2/repository/models/a/load",
                    LoadBody(R"({"max_batch_size": 1, "model_warmup": [{"name": "w", "batch_size": 1,
                                 "inputs": {"x": {"data_type": "TYPE_FP32", "dims": [2], "zero_data": true}}}]})"));
  ASSERT_EQ(res.status, 200u) << res.body;
  auto config = Json(client.Get("/v2/models/a/config").body);
  ASSERT_FALSE(config.HasParseError());
  EXPECT_EQ(config["max_batch_size"].GetInt(), 1);
  res = client.Post("/v2/models/a/infer",
                    R"({"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3, 4]}]})");
  EXPECT_EQ(res.status, 400u) << res.body;
  EXPECT_EQ(Infer(client, "a").status, 200u);

  // A bad override is refused and changes nothing.
  res = client.Post("/v2/repository/models/a/load", LoadBody(R"({"max_batch_size": "many"})"));
  EXPECT_EQ(res.status, 400u) << res.body;
  EXPECT_EQ(Json(client.Get("/v2/models/a/config").body)["max_batch_size"].GetInt(), 1);
  EXPECT_EQ(Infer(client, "a").status, 200u);

  // Unload: the model stops answering; loading it again brings it back.
  res = client.Post("/v2/repository/models/b/unload", R"({"parameters": {"unload_dependents": false}})");
  ASSERT_EQ(res.status, 200u) << res.body;
  EXPECT_EQ(Infer(client, "b").status, 503u);
  EXPECT_EQ(client.Get("/v2/models/b/ready").status, 400u);
  EXPECT_EQ(IndexEntry(client, "b", "1").first, "UNAVAILABLE");
  EXPECT_EQ(client.Get("/v2/health/ready").status, 200u);
  ASSERT_EQ(client.Post("/v2/repository/models/b/load", "{}").status, 200u);
  EXPECT_EQ(Infer(client, "b").status, 200u);
  EXPECT_EQ(client.Get("/v2/repository/models/b/load").status, 405u);
}

TEST(LifecycleTest, LoadAndUnloadAreRefusedOutsideExplicitMode) {
  TempDir repo;
  MakeAddModels({{repo.path() + "/a/1/model.onnx", 1.f}});
  auto server = ServerProcess::Start({"--model-repository", repo.path()});
  ASSERT_TRUE(server.ok()) << server.status();
  HttpClient client((*server)->http_port());
  auto res = client.Post("/v2/repository/models/a/unload", "");
  EXPECT_EQ(res.status, 400u);
  EXPECT_NE(res.body.find("explicit"), std::string::npos) << res.body;
  EXPECT_EQ(Infer(client, "a").status, 200u);
}

TEST(LifecycleTest, PathTraversalAttemptsAreRejected) {
  TempDir root;
  const std::string repo = root.path() + "/repo";
  MakeAddModels({{repo + "/a/1/model.onnx", 1.f}, {root.path() + "/secret/1/model.onnx", 9.f}});
  fs::create_symlink(root.path() + "/secret", repo + "/link");
  auto server = ServerProcess::Start({"--model-repository", repo, "--model-control-mode", "explicit"});
  ASSERT_TRUE(server.ok()) << server.status();
  HttpClient client((*server)->http_port());
  for (std::string name : {"..", "..%2Fsecret", "%2E%2E%2Fsecret", "a%2F..%2F..%2Fsecret", "%2Fetc",
                           "a%00b", ".hidden", "link", "a%5C..%5C..%5Csecret"}) {
    for (std::string action : {"load", "unload"}) {
      auto res = client.Post("/v2/repository/models/" + name + "/" + action, "");
      EXPECT_EQ(res.status, 400u) << name << " " << action << ": " << res.body;
    }
  }
  // Config file names are checked too.
  auto res = client.Post("/v2/repository/models/a/load",
                         LoadBody(R"({"default_model_filename": "../../secret/1/model.onnx"})"));
  EXPECT_EQ(res.status, 400u) << res.body;
  EXPECT_EQ(Infer(client, "secret").status, 404u);
  EXPECT_EQ(Infer(client, "link").status, 404u);
  ASSERT_EQ(client.Post("/v2/repository/models/a/load", "").status, 200u);
  EXPECT_EQ(Infer(client, "a").status, 200u);
}

TEST(LifecycleTest, PollModePicksUpANewVersionAndKeepsServingThroughACorruptOne) {
  TempDir root;
  const fs::path repo = fs::path(root.path()) / "repo";
  const fs::path staging = fs::path(root.path()) / "staging";
  MakeAddModels({{(repo / "m/1/model.onnx").string(), 1.f}, {(staging / "v2/model.onnx").string(), 2.f}});
  auto server = ServerProcess::Start({"--model-repository", repo.string(), "--model-control-mode", "poll",
                                      "--repository-poll-secs", "1"});
  ASSERT_TRUE(server.ok()) << server.status();
  HttpClient client((*server)->http_port());
  ASSERT_EQ(Infer(client, "m").version, "1");

  PublishVersion(staging / "v2", repo / "m", 2);
  ASSERT_TRUE(WaitUntil([&] { return Infer(client, "m").version == "2"; }, 30)) << (*server)->Output();
  EXPECT_EQ(IndexEntry(client, "m", "2").first, "READY");
  EXPECT_TRUE(Infer(client, "m").consistent);

  WriteCorruptVersion(staging, repo / "m", 3);
  ASSERT_TRUE(WaitUntil([&] { return IndexEntry(client, "m", "3").first == "UNAVAILABLE"; }, 30))
      << (*server)->Output();
  auto [state, reason] = IndexEntry(client, "m", "3");
  EXPECT_FALSE(reason.empty());
  Answer answer = Infer(client, "m");
  EXPECT_EQ(answer.version, "2");
  EXPECT_TRUE(answer.consistent);
  EXPECT_EQ(client.Get("/v2/health/ready").status, 200u);
  auto metadata = Json(client.Get("/v2/models/m").body);
  ASSERT_TRUE(metadata.HasMember("last_load_error"));
  {
    EXPECT_NE(std::string(metadata["last_load_error"].GetString()).find("version 3"), std::string::npos);
  }
  EXPECT_NE((*server)->Output().find("version 3"), std::string::npos);
}

// The issue's acceptance test: continuous HTTP load from several clients
// while 20 good versions swap in and 5 corrupt ones fail to; no request may
// fail, and the last good version must be the one answering at the end.
TEST(LifecycleTest, SwapsAndFailedVersionsUnderLoadFailNoRequest) {
  TempDir root;
  const fs::path repo = fs::path(root.path()) / "repo";
  const fs::path staging = fs::path(root.path()) / "staging";
  constexpr int kGoodVersions = 21;  // Version 1 plus 20 swaps.
  std::vector<std::pair<std::string, float>> models = {{(repo / "m/1/model.onnx").string(), 1.f}};
  // Versions 2..: every fifth step a corrupt one; the addend equals the version.
  std::vector<std::pair<int, bool>> plan;  // (version, good)
  int version = 1;
  int corrupt = 0;
  for (int good = 1; good < kGoodVersions;) {
    ++version;
    if (corrupt < 5 && version % 4 == 0) {
      plan.push_back({version, false});
      ++corrupt;
      continue;
    }
    plan.push_back({version, true});
    models.push_back({(staging / std::to_string(version) / "model.onnx").string(), static_cast<float>(version)});
    ++good;
  }
  ASSERT_EQ(corrupt, 5);
  MakeAddModels(models);
  auto server = ServerProcess::Start({"--model-repository", repo.string(), "--model-control-mode", "explicit",
                                      "--load-model", "m", "--model-load-thread-count", "2"});
  ASSERT_TRUE(server.ok()) << server.status();
  const uint16_t port = (*server)->http_port();

  std::atomic<bool> stop{false};
  std::atomic<int> ok{0};
  std::atomic<int> failed{0};
  std::atomic<int> inconsistent{0};
  std::mutex first_failure_mu;
  std::string first_failure;
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([&] {
      HttpClient client(port);
      while (!stop.load()) {
        Answer answer = Infer(client, "m");
        if (answer.status != 200) {
          ++failed;
          std::lock_guard<std::mutex> lock(first_failure_mu);
          if (first_failure.empty()) first_failure = std::to_string(answer.status) + " " + answer.body;
          continue;
        }
        answer.consistent ? ++ok : ++inconsistent;
      }
    });
  }

  // And the load generator, in back-to-back one-second runs (closed loop,
  // four connections), whose reports must count no failed request.
  std::atomic<int> loadgen_runs{0};
  std::atomic<int> loadgen_failed{0};
  std::atomic<int> loadgen_ok{0};
  std::thread loadgen([&] {
    const std::string report = root.path() + "/loadgen.json";
    while (!stop.load()) {
      const std::string command = BinaryDir() + "/tools/loadgen/ortserve-loadgen --protocol http-json --port " +
                                  std::to_string(port) + " -m m -c 4 --duration 1 --warmup 0 -q --json-out " +
                                  report + " > /dev/null 2>&1";
      if (std::system(command.c_str()) != 0) {
        ++loadgen_failed;
        continue;
      }
      std::ifstream in(report);
      std::stringstream text;
      text << in.rdbuf();
      auto doc = Json(text.str());
      if (doc.HasParseError() || !doc.HasMember("requests_failed")) {
        ++loadgen_failed;
        continue;
      }
      ++loadgen_runs;
      loadgen_failed += doc["requests_failed"].GetInt();
      loadgen_ok += doc["requests_ok"].GetInt();
    }
  });

  HttpClient control(port);
  int last_good = 1;
  int swaps = 0;
  int failures = 0;
  for (const auto& [v, good] : plan) {
    if (good) {
      PublishVersion(staging / std::to_string(v), repo / "m", v);
    } else {
      WriteCorruptVersion(staging, repo / "m", v);
    }
    auto res = control.Post("/v2/repository/models/m/load", "");
    if (good) {
      ASSERT_EQ(res.status, 200u) << "version " << v << ": " << res.body;
      last_good = v;
      ++swaps;
    } else {
      EXPECT_NE(res.status, 200u) << "corrupt version " << v << " loaded";
      EXPECT_EQ(IndexEntry(control, "m", std::to_string(v)).first, "UNAVAILABLE");
      ++failures;
    }
    EXPECT_EQ(control.Get("/v2/health/ready").status, 200u);
    EXPECT_EQ(Infer(control, "m").version, std::to_string(last_good));
    (void)(*server)->Output();  // Keep the server's log pipe drained.
  }
  stop = true;
  for (auto& t : clients) t.join();
  loadgen.join();
  EXPECT_GE(loadgen_runs.load(), 1);
  EXPECT_GT(loadgen_ok.load(), 0);
  EXPECT_EQ(loadgen_failed.load(), 0) << "failed requests (or runs) reported by ortserve-loadgen";
  EXPECT_EQ(swaps, 20);
  EXPECT_EQ(failures, 5);
  EXPECT_EQ(failed.load(), 0) << first_failure;
  EXPECT_EQ(inconsistent.load(), 0);
  EXPECT_GT(ok.load(), 100);
  Answer last = Infer(control, "m");
  EXPECT_EQ(last.version, std::to_string(last_good));
  EXPECT_TRUE(last.consistent);
  std::cout << "requests answered during swaps: " << ok.load() << "\n";
}

// A model slow enough that a warm-up of count 1000 would run for minutes:
// y = x multiplied by itself six times, x: FP32 [N, 384, 384] (about 0.3
// GFLOP per run).
void MakeSlowModel(const std::string& path) {
  absl::Status status = RunPython(R"(
import os
import onnx
from onnx import helper, TensorProto
x = helper.make_tensor_value_info('x', TensorProto.FLOAT, ['N', 384, 384])
y = helper.make_tensor_value_info('y', TensorProto.FLOAT, ['N', 384, 384])
nodes = []
prev = 'x'
for i in range(6):
    out = 'y' if i == 5 else 'm%d' % i
    nodes.append(helper.make_node('MatMul', [prev, 'x'], [out]))
    prev = out
graph = helper.make_graph(nodes, 'slow', [x], [y])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)])
model.ir_version = 8
path = ')" + path + R"('
os.makedirs(os.path.dirname(path), exist_ok=True)
onnx.save(model, path)
)");
  ASSERT_TRUE(status.ok()) << status;
}

// The issue #14.3 override: the largest warm-up count the bounds allow.
constexpr char kLongWarmup[] = R"({"max_batch_size": 1, "model_warmup": [{"name": "long", "batch_size": 1,
    "count": 1000, "inputs": {"x": {"data_type": "TYPE_FP32", "dims": [384, 384], "zero_data": true}}}]})";

// Issue #14.3: unloading a model in the middle of a very long warm-up
// cancels it (ORT's terminate flag) instead of waiting for 1000 runs.
TEST(LifecycleTest, UnloadDuringALongWarmupReturnsPromptly) {
  TempDir repo;
  MakeSlowModel(repo.path() + "/slow/1/model.onnx");
  MakeAddModels({{repo.path() + "/a/1/model.onnx", 1.f}});
  auto server = ServerProcess::Start({"--model-repository", repo.path(), "--model-control-mode", "explicit",
                                      "--load-model", "a"});
  ASSERT_TRUE(server.ok()) << server.status();
  const uint16_t port = (*server)->http_port();
  HttpResponse load;
  std::thread loader([&] {
    HttpClient c(port);
    load = c.Post("/v2/repository/models/slow/load", LoadBody(kLongWarmup));
  });
  HttpClient client(port);
  ASSERT_TRUE(WaitUntil([&] { return IndexEntry(client, "slow", "1").first == "LOADING"; }, 30))
      << (*server)->Output();
  const auto start = std::chrono::steady_clock::now();
  auto res = client.Post("/v2/repository/models/slow/unload", "");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  loader.join();
  EXPECT_EQ(res.status, 200u) << res.body;
  EXPECT_LT(seconds, 10.0) << "the unload waited for the warm-up";
  EXPECT_NE(load.status, 200u) << load.body;
  EXPECT_NE(load.body.find("unloaded during its load"), std::string::npos) << load.body;
  EXPECT_EQ(client.Get("/v2/models/slow/ready").status, 400u);
  EXPECT_EQ(Infer(client, "a").status, 200u);
  EXPECT_EQ((*server)->Stop(), 0);
}

// Issue #14.3: SIGTERM while a load is in a very long warm-up: the process
// exits within its shutdown deadline (delay + grace, plus the loads' stop).
TEST(LifecycleTest, SigtermDuringALongWarmupExitsWithinTheShutdownDeadline) {
  TempDir repo;
  MakeSlowModel(repo.path() + "/slow/1/model.onnx");
  auto server = ServerProcess::Start({"--model-repository", repo.path(), "--model-control-mode", "explicit",
                                      "--shutdown-grace-seconds", "1"});
  ASSERT_TRUE(server.ok()) << server.status();
  const uint16_t port = (*server)->http_port();
  std::thread loader([port] {
    HttpClient c(port);
    (void)c.Post("/v2/repository/models/slow/load", LoadBody(kLongWarmup));  // Cut off by the shutdown.
  });
  {
    HttpClient client(port);
    ASSERT_TRUE(WaitUntil([&] { return IndexEntry(client, "slow", "1").first == "LOADING"; }, 30))
        << (*server)->Output();
  }
  const auto start = std::chrono::steady_clock::now();
  const int code = (*server)->Stop(SIGTERM, 60);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  loader.join();
  EXPECT_EQ(code, 0) << (*server)->Output();
  EXPECT_LT(seconds, 10.0) << "shutdown waited for the warm-up";
}

}  // namespace
}  // namespace ortserve::testing
