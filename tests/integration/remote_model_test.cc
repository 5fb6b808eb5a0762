// SPDX-License-Identifier: Apache-2.0
// Remote models (issue 26) end to end: a gateway ortserve in front of other
// ortserve processes (KServe v2 over HTTP and gRPC) and in front of a small
// TF Serving REST stand-in written here (a real socket server). Failure
// injection: remote unreachable at load, killed under load, slow (timeout),
// answering 500s (status mapping, breaker and fallback); and what local
// models get: shadow traffic from a local model to a remote one, the
// response cache, the text pipeline in front of a remote encoder.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "integration/server_harness.h"

namespace ortserve::testing {
namespace {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// A stand-in for TF Serving's REST API on 127.0.0.1: GET /v1/models/tfm
// answers the version status, POST /v1/models/tfm:predict takes the
// columnar format {"inputs": {"x": [[a, b], ...]}} and answers
// {"outputs": {"y": [[2a, 2b], ...]}}. It can be made slow or to fail.
// One thread per connection (keep-alive), all joined at destruction.
class TfServingStandIn {
 public:
  TfServingStandIn() {
    listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(listen(listen_fd_, 64), 0);
    socklen_t len = sizeof addr;
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }
  ~TfServingStandIn() {
    stopping_ = true;
    shutdown(listen_fd_, SHUT_RDWR);
    close(listen_fd_);
    acceptor_.join();
    {
      std::lock_guard lock(mu_);
      for (int fd : conns_) shutdown(fd, SHUT_RDWR);
    }
    for (auto& t : workers_) t.join();
  }
  uint16_t port() const { return port_; }
  std::atomic<int> delay_ms{0};
  std::atomic<bool> fail{false};
  std::atomic<int> predicts{0};
  std::string last_body() {
    std::lock_guard lock(mu_);
    return last_body_;
  }

 private:
  void AcceptLoop() {
    for (;;) {
      const int fd = accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) return;
      std::lock_guard lock(mu_);
      if (stopping_) {
        close(fd);
        return;
      }
      conns_.push_back(fd);
      workers_.emplace_back([this, fd] { Serve(fd); });
    }
  }
  void Serve(int fd) {
    std::string in;
    char buf[8192];
    for (;;) {
      size_t head_end;
      while ((head_end = in.find("\r\n\r\n")) == std::string::npos) {
        const ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) return;
        in.append(buf, n);
      }
      const std::string head = in.substr(0, head_end);
      size_t length = 0;
      const size_t cl = head.find("Content-Length: ");
      const size_t cl_lower = head.find("content-length: ");
      const size_t at = cl != std::string::npos ? cl : cl_lower;
      if (at != std::string::npos) length = std::stoul(head.substr(at + 16));
      while (in.size() < head_end + 4 + length) {
        const ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) return;
        in.append(buf, n);
      }
      const std::string body = in.substr(head_end + 4, length);
      in.erase(0, head_end + 4 + length);
      const std::string line = head.substr(0, head.find("\r\n"));
      unsigned status = 200;
      std::string reply;
      if (line.rfind("GET /v1/models/tfm ", 0) == 0) {
        reply = R"({"model_version_status":[{"version":"1","state":"AVAILABLE","status":{"error_code":"OK"}}]})";
      } else if (line.rfind("POST /v1/models/tfm:predict ", 0) == 0) {
        ++predicts;
        {
          std::lock_guard lock(mu_);
          last_body_ = body;
        }
        if (delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms.load()));
        if (fail) {
          status = 500;
          reply = R"({"error":"tfm: the model exploded"})";
        } else {
          std::tie(status, reply) = Predict(body);
        }
      } else {
        status = 404;
        reply = R"({"error":"no such route"})";
      }
      const std::string out = "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: application/json\r\n" +
                              "Content-Length: " + std::to_string(reply.size()) + "\r\n\r\n" + reply;
      if (send(fd, out.data(), out.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(out.size())) return;
    }
  }
  static std::pair<unsigned, std::string> Predict(const std::string& body) {
    rapidjson::Document doc;
    doc.Parse(body.c_str());
    if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("inputs") || !doc["inputs"].IsObject() ||
        !doc["inputs"].HasMember("x") || !doc["inputs"]["x"].IsArray()) {
      return {400, R"({"error":"expected {\"inputs\": {\"x\": [...]}}"})"};
    }
    rapidjson::StringBuffer sb;
    rapidjson::Writer<rapidjson::StringBuffer> w(sb);
    w.StartObject();
    w.Key("outputs");
    w.StartObject();
    w.Key("y");
    w.StartArray();
    for (const auto& row : doc["inputs"]["x"].GetArray()) {
      if (!row.IsArray()) return {400, R"({"error":"x must be a matrix"})"};
      w.StartArray();
      for (const auto& v : row.GetArray()) w.Double(2 * v.GetDouble());
      w.EndArray();
    }
    w.EndArray();
    w.EndObject();
    w.EndObject();
    return {200, sb.GetString()};
  }

  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<int> conns_;
  std::vector<std::thread> workers_;
  std::string last_body_;
};

// A loopback port nothing listens on (bound, then released).
uint16_t ClosedPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

void WriteFile(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

// A remote model folder: its config and an empty version folder.
void WriteRemote(const std::string& repo, const std::string& model, const std::string& config) {
  WriteFile(fs::path(repo) / model / "config.pbtxt", "platform: \"remote\"\n" + config);
  fs::create_directories(fs::path(repo) / model / "1");
}

constexpr char kAddConfig[] =
    "max_batch_size: 8\n"
    "input { name: \"x\" data_type: TYPE_FP32 dims: [2] }\n"
    "output { name: \"y\" data_type: TYPE_FP32 dims: [2] }\n";

// An ortserve serving `add` (y = x + 1), with gRPC on.
std::unique_ptr<ServerProcess> StartRemote(const TempDir& dir) {
  EXPECT_TRUE(WriteAddModels({{dir.path() + "/add/1/model.onnx", 1.0f}}).ok());
  WriteFile(fs::path(dir.path()) / "add" / "config.pbtxt", kAddConfig);
  auto server = ServerProcess::Start({"--model-repository", dir.path(), "--grpc-port", "0"});
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? std::move(*server) : nullptr;
}

std::string Body(float a, float b) {
  return R"({"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[)" + std::to_string(a) + "," +
         std::to_string(b) + "]}]}";
}

std::vector<float> Ys(const HttpResponse& res) {
  std::vector<float> y;
  auto doc = Json(res.body);
  if (!doc.IsObject() || !doc.HasMember("outputs")) return y;
  for (const auto& v : doc["outputs"][0]["data"].GetArray()) y.push_back(v.GetFloat());
  return y;
}

std::string Scrape(const ServerProcess& server) { return HttpClient(server.metrics_port()).Get("/metrics").body; }

double Calls(const ServerProcess& server, const std::string& model, const std::string& outcome) {
  return MetricValue(Scrape(server), "ortserve_remote_calls_total",
                     {"model=\"" + model + "\"", "outcome=\"" + outcome + "\""});
}

TEST(RemoteModelTest, ForwardsOverHttpAndGrpcWithTheRemotesMetadataAndShadowsFromALocalModel) {
  TempDir remote_dir;
  auto remote = StartRemote(remote_dir);
  ASSERT_NE(remote, nullptr);
  TempDir dir;
  const std::string endpoint = "127.0.0.1:" + std::to_string(remote->http_port());
  // No inputs or outputs in the config: they come from the remote.
  WriteRemote(dir.path(), "remote_add",
              "max_batch_size: 8\nremote { endpoints: \"" + endpoint + "\" model_name: \"add\" }\n");
  WriteRemote(dir.path(), "remote_grpc",
              "max_batch_size: 8\nremote { protocol: KSERVE_GRPC endpoints: \"127.0.0.1:" +
                  std::to_string(remote->grpc_port()) + "\" model_name: \"add\" }\n");
  // A team moving `local_add` to the remote server shadows it first.
  ASSERT_TRUE(WriteAddModels({{dir.path() + "/local_add/1/model.onnx", 1.0f}}).ok());
  WriteFile(fs::path(dir.path()) / "local_add" / "config.pbtxt",
            std::string(kAddConfig) + "routing { shadow { model: \"remote_add\" fraction: 1.0 } }\n");
  auto gateway = ServerProcess::Start({"--model-repository", dir.path(), "--metrics-port", "0"});
  ASSERT_TRUE(gateway.ok()) << gateway.status();
  HttpClient client((*gateway)->http_port());

  auto metadata = Json(client.Get("/v2/models/remote_add").body);
  ASSERT_TRUE(metadata.IsObject());
  EXPECT_STREQ(metadata["platform"].GetString(), "remote");
  ASSERT_EQ(metadata["inputs"].Size(), 1u);
  EXPECT_STREQ(metadata["inputs"][0]["name"].GetString(), "x");
  EXPECT_STREQ(metadata["inputs"][0]["datatype"].GetString(), "FP32");
  EXPECT_EQ(metadata["inputs"][0]["shape"][0].GetInt(), -1);
  EXPECT_EQ(metadata["inputs"][0]["shape"][1].GetInt(), 2);
  EXPECT_STREQ(metadata["outputs"][0]["name"].GetString(), "y");

  for (const std::string model : {"remote_add", "remote_grpc"}) {
    auto res = client.Post("/v2/models/" + model + "/infer", Body(1.5f, -2));
    ASSERT_EQ(res.status, 200u) << model << ": " << res.body;
    EXPECT_EQ(Ys(res), (std::vector<float>{2.5f, -1})) << model;
  }
  // A wrong shape is refused here, before any remote call.
  auto bad = client.Post("/v2/models/remote_add/infer",
                         R"({"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]})");
  EXPECT_EQ(bad.status, 400u) << bad.body;
  EXPECT_EQ(Calls(**gateway, "remote_add", "ok"), 1);
  EXPECT_EQ(Calls(**gateway, "remote_grpc", "ok"), 1);

  constexpr int kShadowed = 5;
  for (int i = 0; i < kShadowed; ++i) {
    auto res = client.Post("/v2/models/local_add/infer", Body(static_cast<float>(i), 1));
    ASSERT_EQ(res.status, 200u) << res.body;
  }
  const std::vector<std::string> labels = {R"(model="local_add")", R"(shadow_model="remote_add")"};
  EXPECT_TRUE(WaitUntil([&] {
    return MetricValue(Scrape(**gateway), "ortserve_shadow_max_abs_difference_count", labels) >= kShadowed;
  }));
  // The remote agrees with the local model exactly.
  EXPECT_EQ(MetricValue(Scrape(**gateway), "ortserve_shadow_max_abs_difference_sum", labels), 0);
  EXPECT_EQ(Calls(**gateway, "remote_add", "ok"), 1 + kShadowed);
}

TEST(RemoteModelTest, TheTextPipelineRunsInFrontOfARemoteModel) {
  // The remote serves the demo embedding model's encoder as a plain tensor
  // model (`encoder`, no text pipeline), and the demo model itself to compare
  // with; the gateway tokenizes and pools, and only the encoder runs remotely.
  TempDir remote_dir;
  fs::copy(SourceDir() + "/models/text_embedding", remote_dir.path() + "/text_embedding", fs::copy_options::recursive);
  fs::create_directories(remote_dir.path() + "/encoder/1");
  fs::copy(SourceDir() + "/models/text_embedding/1/model.onnx", remote_dir.path() + "/encoder/1/model.onnx");
  WriteFile(fs::path(remote_dir.path()) / "encoder" / "config.pbtxt",
            "max_batch_size: 64\n"
            "dynamic_batching { max_queue_delay_microseconds: 2000 pad_variable_dims: true }\n");
  auto remote = ServerProcess::Start({"--model-repository", remote_dir.path()});
  ASSERT_TRUE(remote.ok()) << remote.status();
  TempDir dir;
  fs::create_directories(dir.path() + "/text_embedding/1");
  fs::copy(SourceDir() + "/models/text_embedding/vocab.txt", dir.path() + "/text_embedding/vocab.txt");
  std::ifstream in(SourceDir() + "/models/text_embedding/config.pbtxt");
  std::string config((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  config.replace(config.find("platform: \"onnxruntime_onnx\""), 28, "platform: \"remote\"");
  config += "remote { endpoints: \"127.0.0.1:" + std::to_string((*remote)->http_port()) +
            "\" model_name: \"encoder\" }\n";
  WriteFile(fs::path(dir.path()) / "text_embedding" / "config.pbtxt", config);
  auto gateway = ServerProcess::Start({"--model-repository", dir.path()});
  ASSERT_TRUE(gateway.ok()) << gateway.status();

  const std::string body = R"({"input": ["hello there", "my arm is sore"], "model": "text_embedding"})";
  auto direct = HttpClient((*remote)->http_port()).Post("/v1/embeddings", body);
  auto through = HttpClient((*gateway)->http_port()).Post("/v1/embeddings", body);
  ASSERT_EQ(direct.status, 200u) << direct.body;
  ASSERT_EQ(through.status, 200u) << through.body;
  auto a = Json(direct.body);
  auto b = Json(through.body);
  ASSERT_EQ(a["data"].Size(), 2u);
  ASSERT_EQ(b["data"].Size(), 2u);
  for (unsigned i = 0; i < 2; ++i) {
    const auto& va = a["data"][i]["embedding"];
    const auto& vb = b["data"][i]["embedding"];
    ASSERT_EQ(va.Size(), vb.Size());
    ASSERT_GT(va.Size(), 0u);
    for (unsigned k = 0; k < va.Size(); ++k) EXPECT_NEAR(va[k].GetDouble(), vb[k].GetDouble(), 1e-5) << i << "," << k;
  }
}

TEST(RemoteModelTest, LoadFailsClearlyWhenNoEndpointIsReachable) {
  TempDir dir;
  const std::string endpoint = "127.0.0.1:" + std::to_string(ClosedPort());
  WriteRemote(dir.path(), "gone", "remote { endpoints: \"" + endpoint + "\" timeout_ms: 2000 }\n");
  auto gateway = ServerProcess::Start({"--model-repository", dir.path()});
  ASSERT_TRUE(gateway.ok()) << gateway.status();
  HttpClient client((*gateway)->http_port());
  auto index = Json(client.Post("/v2/repository/index", "").body);
  ASSERT_TRUE(index.IsArray());
  ASSERT_EQ(index.Size(), 1u);
  EXPECT_STREQ(index[0]["state"].GetString(), "UNAVAILABLE");
  const std::string reason = index[0]["reason"].GetString();
  EXPECT_NE(reason.find("not ready on any endpoint"), std::string::npos) << reason;
  EXPECT_NE(reason.find(endpoint), std::string::npos) << reason;
  EXPECT_EQ(client.Post("/v2/models/gone/infer", Body(1, 2)).status, 503u);
}

TEST(RemoteModelTest, TfServingRestPredictAndTheResponseCache) {
  TfServingStandIn tf;
  TempDir dir;
  WriteRemote(dir.path(), "tf",
              std::string(kAddConfig) + "response_cache { enable: true }\nremote { protocol: TFSERVING_REST "
              "endpoints: \"127.0.0.1:" + std::to_string(tf.port()) + "\" model_name: \"tfm\" }\n");
  auto gateway = ServerProcess::Start({"--model-repository", dir.path(), "--metrics-port", "0"});
  ASSERT_TRUE(gateway.ok()) << gateway.status();
  HttpClient client((*gateway)->http_port());
  auto res = client.Post("/v2/models/tf/infer", Body(1.5f, -3));
  ASSERT_EQ(res.status, 200u) << res.body;
  EXPECT_EQ(Ys(res), (std::vector<float>{3, -6}));
  auto sent = Json(tf.last_body());  // The columnar request format, nested by shape.
  ASSERT_TRUE(sent.IsObject() && sent["inputs"]["x"].IsArray());
  EXPECT_EQ(sent["inputs"]["x"][0][1].GetDouble(), -3);
  // The same request again comes from the cache: the remote sees one predict.
  auto again = client.Post("/v2/models/tf/infer", Body(1.5f, -3));
  ASSERT_EQ(again.status, 200u);
  EXPECT_EQ(Ys(again), Ys(res));
  EXPECT_EQ(tf.predicts.load(), 1);
  EXPECT_EQ(MetricValue(Scrape(**gateway), "ortserve_cache_lookups_total", {R"(model="tf")", R"(result="hit")"}), 1);
}

TEST(RemoteModelTest, SlowRemoteIsCutByItsTimeoutAndCounted) {
  TfServingStandIn tf;
  tf.delay_ms = 3000;
  TempDir dir;
  WriteRemote(dir.path(), "slow",
              std::string(kAddConfig) + "remote { protocol: TFSERVING_REST endpoints: \"127.0.0.1:" +
                  std::to_string(tf.port()) + "\" model_name: \"tfm\" timeout_ms: 300 }\n");
  auto gateway = ServerProcess::Start({"--model-repository", dir.path(), "--metrics-port", "0"});
  ASSERT_TRUE(gateway.ok()) << gateway.status();
  HttpClient client((*gateway)->http_port());
  const auto start = Clock::now();
  auto res = client.Post("/v2/models/slow/infer", Body(1, 2));
  const auto took = Clock::now() - start;
  EXPECT_EQ(res.status, 504u) << res.body;
  EXPECT_NE(res.body.find("remote model 'tfm'"), std::string::npos) << res.body;
  EXPECT_LT(took, std::chrono::milliseconds(2500));  // Cut at 300 ms, not the remote's 3 s.
  EXPECT_EQ(Calls(**gateway, "slow", "timeout"), 1);
}

TEST(RemoteModelTest, Remote500sKeepTheirMessageAndOpenTheBreakerOntoTheFallback) {
  TfServingStandIn tf;
  tf.fail = true;
  TempDir dir;
  const std::string remote = "remote { protocol: TFSERVING_REST endpoints: \"127.0.0.1:" + std::to_string(tf.port()) +
                             "\" model_name: \"tfm\" eject_after_failures: 1000 }\n";
  WriteRemote(dir.path(), "flaky", std::string(kAddConfig) + remote);
  WriteRemote(dir.path(), "guarded",
              std::string(kAddConfig) + remote +
                  "routing { fallback_model: \"local\" circuit_breaker { enable: true min_requests: 4 "
                  "error_rate: 0.5 open_ms: 60000 } }\n");
  ASSERT_TRUE(WriteAddModels({{dir.path() + "/local/1/model.onnx", 100.0f}}).ok());
  WriteFile(fs::path(dir.path()) / "local" / "config.pbtxt", kAddConfig);
  auto gateway = ServerProcess::Start({"--model-repository", dir.path(), "--metrics-port", "0"});
  ASSERT_TRUE(gateway.ok()) << gateway.status();
  HttpClient client((*gateway)->http_port());

  auto res = client.Post("/v2/models/flaky/infer", Body(1, 2));
  EXPECT_EQ(res.status, 500u);
  EXPECT_NE(res.body.find("the model exploded"), std::string::npos) << res.body;

  const int before = tf.predicts.load();
  for (int i = 0; i < 20; ++i) {
    auto answer = client.Post("/v2/models/guarded/infer", Body(1, 2));
    ASSERT_EQ(answer.status, 200u) << answer.body;
    EXPECT_EQ(Ys(answer), (std::vector<float>{101, 102}));  // The local fallback's answer.
    EXPECT_NE(answer.body.find("fallback_from"), std::string::npos);
  }
  // The breaker opened after a few failures: most requests never reached the remote.
  EXPECT_LE(tf.predicts.load() - before, 6);
  EXPECT_EQ(MetricValue(Scrape(**gateway), "ortserve_circuit_breaker_state", {R"(model="guarded")"}), 1);
  EXPECT_GE(Calls(**gateway, "guarded", "error"), 4);
}

TEST(RemoteModelTest, KilledRemoteUnderLoadIsRetriedEjectedAndThenFailsFast) {
  TempDir dir_a, dir_b;
  auto a = StartRemote(dir_a);
  auto b = StartRemote(dir_b);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  const std::string ep_a = "127.0.0.1:" + std::to_string(a->http_port());
  const std::string ep_b = "127.0.0.1:" + std::to_string(b->http_port());
  TempDir dir;
  WriteRemote(dir.path(), "pair",
              "max_batch_size: 8\nremote { endpoints: [\"" + ep_a + "\", \"" + ep_b +
                  "\"] model_name: \"add\" max_retries: 1 eject_after_failures: 2 eject_ms: 60000 "
                  "health_check_interval_ms: 200 timeout_ms: 5000 }\n");
  auto gateway = ServerProcess::Start({"--model-repository", dir.path(), "--metrics-port", "0"});
  ASSERT_TRUE(gateway.ok()) << gateway.status();

  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::mutex mu;
  std::string failure;
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&] {
      HttpClient client((*gateway)->http_port());
      while (!stop) {
        auto res = client.Post("/v2/models/pair/infer", Body(1, 2));
        if (res.status == 200 && Ys(res) == std::vector<float>{2, 3}) {
          ++ok;
        } else {
          ++failed;
          std::lock_guard lock(mu);
          failure = std::to_string(res.status) + " " + res.body;
        }
      }
    });
  }
  ASSERT_TRUE(WaitUntil([&] { return ok >= 50; }, 60));
  a->Stop(9);  // Killed mid-load.
  const int at_kill = ok.load();
  ASSERT_TRUE(WaitUntil([&] { return ok >= at_kill + 100; }, 60));
  stop = true;
  for (auto& t : clients) t.join();
  // Calls that found `a` gone were retried on `b`.
  EXPECT_EQ(failed.load(), 0) << failure;
  const std::string m = Scrape(**gateway);
  const std::vector<std::string> on_a = {R"(model="pair")", "endpoint=\"" + ep_a + "\""};
  EXPECT_GE(MetricValue(m, "ortserve_remote_retries_total", {R"(model="pair")"}), 1);
  EXPECT_TRUE(WaitUntil([&] { return MetricValue(Scrape(**gateway), "ortserve_remote_endpoint_healthy", on_a) == 0; }));
  EXPECT_EQ(MetricValue(m, "ortserve_remote_calls_total", {R"(model="pair")", "endpoint=\"" + ep_b + "\"",
                                                          R"(outcome="ok")"}) +
                MetricValue(m, "ortserve_remote_calls_total", {R"(model="pair")", "endpoint=\"" + ep_a + "\"",
                                                              R"(outcome="ok")"}),
            ok.load());

  // Both gone: a prompt 503 naming the remote, never a hang.
  b->Stop(9);
  HttpClient client((*gateway)->http_port());
  for (int i = 0; i < 5; ++i) {
    const auto start = Clock::now();
    auto res = client.Post("/v2/models/pair/infer", Body(1, 2));
    EXPECT_EQ(res.status, 503u) << res.body;
    EXPECT_NE(res.body.find("remote model 'add'"), std::string::npos) << res.body;
    EXPECT_LT(Clock::now() - start, std::chrono::seconds(3));
  }
}

}  // namespace
}  // namespace ortserve::testing
