// SPDX-License-Identifier: Apache-2.0
// Remote models (issue 26), the gateway's side of a hop to another ortserve,
// with real processes: the hop as its own span with the W3C trace context
// carried to the remote (over HTTP and gRPC), each exporting to its own OTLP
// collector stand-in; local and remote versions of one model under the
// router's split (sticky keys included) and shadow; TLS toward the remote
// (HTTPS and gRPC over TLS, mTLS, a wrong CA or server name failing clearly).
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <sys/socket.h>
#include <sys/time.h>

#include <boost/asio/ssl.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "integration/otlp_collector.h"
#include "unit/admission/test_support.h"
#include "integration/server_harness.h"

namespace ortserve::testing {
namespace {
namespace fs = std::filesystem;

void WriteFile(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

constexpr char kAddConfig[] =
    "max_batch_size: 8\n"
    "input { name: \"x\" data_type: TYPE_FP32 dims: [2] }\n"
    "output { name: \"y\" data_type: TYPE_FP32 dims: [2] }\n";

std::string Body(float a, float b) {
  return R"({"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[)" + std::to_string(a) + "," +
         std::to_string(b) + "]}]}";
}

std::string CollectorUrl(const Collector& collector) {
  return "http://127.0.0.1:" + std::to_string(collector.port()) + "/v1/traces";
}

// The spans in `spans` of trace `trace_id` whose parent is `parent`.
std::vector<const rapidjson::Value*> ChildrenOf(const SpanSet& spans, const std::string& trace_id,
                                                const std::string& parent) {
  std::vector<const rapidjson::Value*> out;
  for (const auto* span : spans.all()) {
    if ((*span)["traceId"].GetString() != trace_id || !span->HasMember("parentSpanId")) continue;
    if ((*span)["parentSpanId"].GetString() == parent) out.push_back(span);
  }
  return out;
}

TEST(RemoteGatewayTest, TheRemoteHopIsAClientSpanAndTheRemotesServerSpanIsItsChild) {
  Collector gateway_collector, remote_collector;
  TempDir remote_dir;
  ASSERT_TRUE(WriteAddModels({{remote_dir.path() + "/add/1/model.onnx", 1.0f}}).ok());
  WriteFile(fs::path(remote_dir.path()) / "add" / "config.pbtxt", kAddConfig);
  // Ratio 0 on both: only a caller's sampled flag samples a trace, so the
  // remote exports spans only when the gateway's traceparent reached it.
  auto remote = ServerProcess::Start({"--model-repository", remote_dir.path(), "--grpc-port", "0", "--otlp-endpoint",
                                      CollectorUrl(remote_collector), "--trace-sampling-ratio", "0"});
  ASSERT_TRUE(remote.ok()) << remote.status();
  TempDir dir;
  const std::string http_endpoint = "127.0.0.1:" + std::to_string((*remote)->http_port());
  const std::string grpc_endpoint = "127.0.0.1:" + std::to_string((*remote)->grpc_port());
  WriteFile(fs::path(dir.path()) / "over_http" / "config.pbtxt",
            "platform: \"remote\"\nmax_batch_size: 8\nremote { endpoints: \"" + http_endpoint +
                "\" model_name: \"add\" }\n");
  WriteFile(fs::path(dir.path()) / "over_grpc" / "config.pbtxt",
            "platform: \"remote\"\nmax_batch_size: 8\nremote { protocol: KSERVE_GRPC endpoints: \"" + grpc_endpoint +
                "\" model_name: \"add\" }\n");
  fs::create_directories(dir.path() + "/over_http/1");
  fs::create_directories(dir.path() + "/over_grpc/1");
  auto gateway = ServerProcess::Start({"--model-repository", dir.path(), "--otlp-endpoint",
                                       CollectorUrl(gateway_collector), "--trace-sampling-ratio", "0"});
  ASSERT_TRUE(gateway.ok()) << gateway.status();
  HttpClient client((*gateway)->http_port());

  struct Case {
    std::string model, endpoint, trace_id;
  };
  for (const Case& c : {Case{"over_http", http_endpoint, "4bf92f3577b34da6a3ce929d0e0e4736"},
                        Case{"over_grpc", grpc_endpoint, "0af7651916cd43dd8448eb211c80319c"}}) {
    SCOPED_TRACE(c.model);
    auto res = client.Post("/v2/models/" + c.model + "/infer", Body(1, 2),
                           {{"traceparent", "00-" + c.trace_id + "-00f067aa0ba902b7-01"}});
    ASSERT_EQ(res.status, 200u) << res.body;
    const std::string back = res.Header("traceparent");
    ASSERT_EQ(back.size(), 55u) << back;
    const std::string server_span = back.substr(36, 16);  // The gateway's span for this request.

    // The gateway: a client span `remote <endpoint>`, child of the request's span.
    SpanSet gateway_spans;
    ASSERT_TRUE(WaitUntil([&] {
      gateway_spans.Load(gateway_collector.WaitForPayloads(0, std::chrono::seconds(0)));
      return gateway_spans.Operation("remote", c.trace_id).size() == 1;
    })) << gateway_spans.all().size() << " spans";
    const rapidjson::Value& hop = *gateway_spans.Operation("remote", c.trace_id)[0];
    ASSERT_TRUE(hop.HasMember("parentSpanId"));
    EXPECT_EQ(std::string(hop["parentSpanId"].GetString()), server_span);
    EXPECT_EQ(std::string(hop["name"].GetString()), "remote " + c.endpoint);
    EXPECT_EQ(hop["kind"].GetInt(), 3);  // SPAN_KIND_CLIENT.
    EXPECT_EQ(StringAttribute(hop, "ai.remote.endpoint"), c.endpoint);
    EXPECT_EQ(StringAttribute(hop, "ai.remote.model"), "add");
    EXPECT_EQ(StringAttribute(hop, "ai.remote.status"), "OK");
    EXPECT_EQ(IntAttribute(hop, "ai.remote.retries"), 0);
    EXPECT_EQ(StringAttribute(hop, "ai.model.name"), c.model);
    EXPECT_EQ(hop["status"]["code"].GetInt(), 1);
    const std::string hop_id = hop["spanId"].GetString();

    // The remote: its server span is in the same trace, a child of the hop.
    SpanSet remote_spans;
    ASSERT_TRUE(WaitUntil([&] {
      remote_spans.Load(remote_collector.WaitForPayloads(0, std::chrono::seconds(0)));
      return !ChildrenOf(remote_spans, c.trace_id, hop_id).empty();
    })) << remote_spans.all().size() << " spans at the remote";
    const auto children = ChildrenOf(remote_spans, c.trace_id, hop_id);
    ASSERT_EQ(children.size(), 1u);
    EXPECT_EQ((*children[0])["kind"].GetInt(), 2);  // SPAN_KIND_SERVER.
    EXPECT_EQ(StringAttribute(*children[0], "ai.model.name"), "add");
  }

  // An unsampled request makes no hop span and the remote samples nothing.
  auto res = client.Post("/v2/models/over_http/infer", Body(1, 2),
                         {{"traceparent", "00-11111111111111111111111111111111-00f067aa0ba902b7-00"}});
  ASSERT_EQ(res.status, 200u) << res.body;
  SpanSet remote_spans;
  remote_spans.Load(remote_collector.WaitForPayloads(0, std::chrono::seconds(0)));
  for (const auto* span : remote_spans.all()) {
    EXPECT_NE(std::string((*span)["traceId"].GetString()), "11111111111111111111111111111111");
  }
}

// An ortserve serving `add` (y = x + 1) with gRPC on, plus `extra` flags.
std::unique_ptr<ServerProcess> StartAddServer(const TempDir& dir, std::vector<std::string> extra = {}) {
  EXPECT_TRUE(WriteAddModels({{dir.path() + "/add/1/model.onnx", 1.0f}}).ok());
  WriteFile(fs::path(dir.path()) / "add" / "config.pbtxt", kAddConfig);
  std::vector<std::string> args = {"--model-repository", dir.path(), "--grpc-port", "0"};
  args.insert(args.end(), extra.begin(), extra.end());
  auto server = ServerProcess::Start(args);
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? std::move(*server) : nullptr;
}

std::string Scrape(const ServerProcess& server) { return HttpClient(server.metrics_port()).Get("/metrics").body; }

// The version that answered, and whether y = x + 1.
std::string AnsweredVersion(const HttpResponse& res, float a, float b) {
  auto doc = Json(res.body);
  if (!doc.IsObject() || !doc.HasMember("outputs") || !doc.HasMember("model_version")) return "<bad: " + res.body + ">";
  const auto& y = doc["outputs"][0]["data"];
  if (y.Size() != 2 || y[0].GetFloat() != a + 1 || y[1].GetFloat() != b + 1) return "<wrong answer: " + res.body + ">";
  return doc["model_version"].GetString();
}

TEST(RemoteGatewayTest, OneModelSplitsAndShadowsBetweenALocalAndARemoteVersion) {
  TempDir remote_dir;
  auto remote = StartAddServer(remote_dir, {"--metrics-port", "0"});
  ASSERT_NE(remote, nullptr);
  const std::string remote_file =
      "endpoints: \"127.0.0.1:" + std::to_string(remote->http_port()) + "\"\nmodel_name: \"add\"\n";
  TempDir dir;
  // `ab`: version 1 local, version 2 on the remote, half the traffic each.
  ASSERT_TRUE(WriteAddModels({{dir.path() + "/ab/1/model.onnx", 1.0f}, {dir.path() + "/mirror/1/model.onnx", 1.0f}}).ok());
  WriteFile(fs::path(dir.path()) / "ab" / "2" / "remote.pbtxt", remote_file);
  WriteFile(fs::path(dir.path()) / "ab" / "config.pbtxt",
            std::string(kAddConfig) + "version_policy { all {} }\n"
            "routing { split { version: 1 weight: 1 } split { version: 2 weight: 1 } }\n");
  // `mirror`: version 1 local answers, every request is shadowed to the remote version 2.
  WriteFile(fs::path(dir.path()) / "mirror" / "2" / "remote.pbtxt", remote_file);
  WriteFile(fs::path(dir.path()) / "mirror" / "config.pbtxt",
            std::string(kAddConfig) + "version_policy { all {} }\n"
            "routing { split { version: 1 weight: 1 } shadow { version: 2 fraction: 1.0 } }\n");
  auto gateway = ServerProcess::Start({"--model-repository", dir.path(), "--metrics-port", "0"});
  ASSERT_TRUE(gateway.ok()) << gateway.status();
  HttpClient client((*gateway)->http_port());

  // Each version reports where it runs.
  auto v1 = Json(client.Get("/v2/models/ab/versions/1/config").body);
  auto v2 = Json(client.Get("/v2/models/ab/versions/2/config").body);
  ASSERT_TRUE(v1.IsObject() && v2.IsObject());
  EXPECT_STREQ(v1["platform"].GetString(), "onnxruntime_onnx");
  EXPECT_STREQ(v2["platform"].GetString(), "remote");

  constexpr int kRequests = 200;
  std::map<std::string, int> answered;
  for (int i = 0; i < kRequests; ++i) {
    const float a = static_cast<float>(i);
    ++answered[AnsweredVersion(client.Post("/v2/models/ab/infer", Body(a, -a)), a, -a)];
  }
  ASSERT_EQ(answered.size(), 2u) << answered.begin()->first;
  // 50/50 over 200: each side within 100 +- 35 (about 5 sigma).
  EXPECT_GT(answered["1"], 65);
  EXPECT_GT(answered["2"], 65);
  std::string metrics = Scrape(**gateway);
  EXPECT_EQ(MetricValue(metrics, "ortserve_route_total", {R"(model="ab")", R"(version="1")", R"(reason="split")"}),
            answered["1"]);
  EXPECT_EQ(MetricValue(metrics, "ortserve_route_total", {R"(model="ab")", R"(version="2")", R"(reason="split")"}),
            answered["2"]);
  // Every request routed to version 2 was one remote call.
  EXPECT_EQ(MetricValue(metrics, "ortserve_remote_calls_total",
                        {R"(model="ab")", R"(version="2")", R"(outcome="ok")"}),
            answered["2"]);
  EXPECT_EQ(MetricValue(Scrape(*remote), "ortserve_request_total", {R"(model="add")", R"(protocol="http")", R"(outcome="success")"}), answered["2"]);

  // A sticky key keeps its version, local or remote.
  for (const std::string key : {"patient-1", "patient-2", "patient-3", "patient-4"}) {
    std::set<std::string> seen;
    for (int i = 0; i < 10; ++i) {
      auto res = client.Post("/v2/models/ab/infer",
                             R"({"parameters":{"sticky_key":")" + key +
                                 R"("},"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[1,2]}]})");
      seen.insert(AnsweredVersion(res, 1, 2));
    }
    EXPECT_EQ(seen.size(), 1u) << key;
  }

  // Shadow: the local version answers, the remote one sees every request and agrees.
  constexpr int kShadowed = 20;
  for (int i = 0; i < kShadowed; ++i) {
    const float a = static_cast<float>(i) / 4;
    EXPECT_EQ(AnsweredVersion(client.Post("/v2/models/mirror/infer", Body(a, 3)), a, 3), "1");
  }
  const std::vector<std::string> shadow = {R"(model="mirror")", R"(shadow_model="mirror")", R"(shadow_version="2")"};
  EXPECT_TRUE(WaitUntil([&] {
    return MetricValue(Scrape(**gateway), "ortserve_shadow_max_abs_difference_count", shadow) >= kShadowed;
  }));
  metrics = Scrape(**gateway);
  EXPECT_EQ(MetricValue(metrics, "ortserve_shadow_max_abs_difference_sum", shadow), 0);
  EXPECT_EQ(MetricValue(metrics, "ortserve_remote_calls_total",
                        {R"(model="mirror")", R"(version="2")", R"(outcome="ok")"}),
            kShadowed);
}

TEST(RemoteGatewayTest, AVersionsRemoteFileWithATypoFailsThatVersionOnly) {
  TempDir dir;
  ASSERT_TRUE(WriteAddModels({{dir.path() + "/m/1/model.onnx", 1.0f}}).ok());
  WriteFile(fs::path(dir.path()) / "m" / "2" / "remote.pbtxt", "endpoints: \"127.0.0.1:1\"\nmodel_nmae: \"add\"\n");
  WriteFile(fs::path(dir.path()) / "m" / "config.pbtxt", std::string(kAddConfig) + "version_policy { all {} }\n");
  auto gateway = ServerProcess::Start({"--model-repository", dir.path()});
  ASSERT_TRUE(gateway.ok()) << gateway.status();
  HttpClient client((*gateway)->http_port());
  auto index = Json(client.Post("/v2/repository/index", "").body);
  ASSERT_TRUE(index.IsArray());
  std::map<std::string, std::string> states, reasons;
  for (const auto& entry : index.GetArray()) {
    states[entry["version"].GetString()] = entry["state"].GetString();
    if (entry.HasMember("reason")) reasons[entry["version"].GetString()] = entry["reason"].GetString();
  }
  EXPECT_EQ(states["1"], "READY");
  EXPECT_EQ(states["2"], "UNAVAILABLE");
  EXPECT_NE(reasons["2"].find("remote.pbtxt:2:"), std::string::npos) << reasons["2"];
  EXPECT_NE(reasons["2"].find("model_nmae"), std::string::npos) << reasons["2"];
  EXPECT_EQ(AnsweredVersion(client.Post("/v2/models/m/versions/1/infer", Body(1, 2)), 1, 2), "1");
}

TEST(RemoteGatewayTest, TlsTowardTheRemoteVerifiesItsCertificateAndFailsClearlyOtherwise) {
  admission::testing::TestCa ca("remote-ca");
  admission::testing::TestCa stranger("some-other-ca");
  const auto server_cert = ca.Issue({.common_name = "localhost", .serial = 21, .server = true});
  const auto gateway_cert = ca.Issue({.common_name = "gateway", .serial = 22, .server = false});
  TempDir certs;
  const std::string ca_file = certs.path() + "/ca.pem", stranger_file = certs.path() + "/stranger.pem";
  WriteFile(ca_file, ca.cert_pem());
  WriteFile(stranger_file, stranger.cert_pem());
  WriteFile(certs.path() + "/server.pem", server_cert.cert_pem);
  WriteFile(certs.path() + "/server.key", server_cert.key_pem);
  WriteFile(certs.path() + "/gateway.pem", gateway_cert.cert_pem);
  WriteFile(certs.path() + "/gateway.key", gateway_cert.key_pem);
  fs::permissions(certs.path() + "/server.key", fs::perms::owner_read | fs::perms::owner_write);
  TempDir remote_dir;
  // The remote asks every client for a certificate from its CA (mTLS).
  auto remote = StartAddServer(remote_dir, {"--tls-cert-file", certs.path() + "/server.pem", "--tls-key-file",
                                            certs.path() + "/server.key", "--tls-client-ca-file", ca_file,
                                            "--tls-client-cert", "require"});
  ASSERT_NE(remote, nullptr);
  const std::string https = "https://127.0.0.1:" + std::to_string(remote->http_port());
  const std::string grpc = "127.0.0.1:" + std::to_string(remote->grpc_port());
  const std::string client_cert =
      " cert_file: \"" + certs.path() + "/gateway.pem\" key_file: \"" + certs.path() + "/gateway.key\"";
  TempDir dir;
  auto remote_model = [&](const std::string& name, const std::string& body) {
    WriteFile(fs::path(dir.path()) / name / "config.pbtxt",
              "platform: \"remote\"\nmax_batch_size: 8\nremote { model_name: \"add\" timeout_ms: 3000 " + body + " }\n");
    fs::create_directories(fs::path(dir.path()) / name / "1");
  };
  remote_model("over_https", "endpoints: \"" + https + "\" tls { ca_file: \"" + ca_file + "\"" + client_cert + " }");
  remote_model("over_grpc_tls", "protocol: KSERVE_GRPC endpoints: \"" + grpc + "\" tls { ca_file: \"" + ca_file +
                                    "\"" + client_cert + " }");
  remote_model("wrong_ca", "endpoints: \"" + https + "\" tls { ca_file: \"" + stranger_file + "\"" + client_cert + " }");
  remote_model("wrong_ca_grpc", "protocol: KSERVE_GRPC endpoints: \"" + grpc + "\" tls { ca_file: \"" + stranger_file +
                                    "\"" + client_cert + " }");
  remote_model("wrong_name", "endpoints: \"" + https + "\" tls { ca_file: \"" + ca_file + "\"" + client_cert +
                                 " server_name: \"db.internal\" }");
  remote_model("no_client_cert", "endpoints: \"" + https + "\" tls { ca_file: \"" + ca_file + "\" }");
  const auto start = std::chrono::steady_clock::now();
  auto gateway = ServerProcess::Start({"--model-repository", dir.path()});
  ASSERT_TRUE(gateway.ok()) << gateway.status();
  HttpClient client((*gateway)->http_port());
  auto index = Json(client.Post("/v2/repository/index", "").body);
  // The failures came back within their timeouts: nothing hung.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
  ASSERT_TRUE(index.IsArray());
  std::map<std::string, std::string> states, reasons;
  for (const auto& entry : index.GetArray()) {
    states[entry["name"].GetString()] = entry["state"].GetString();
    if (entry.HasMember("reason")) reasons[entry["name"].GetString()] = entry["reason"].GetString();
  }
  for (const std::string model : {"over_https", "over_grpc_tls"}) {
    EXPECT_EQ(states[model], "READY") << model << ": " << reasons[model];
    EXPECT_EQ(AnsweredVersion(client.Post("/v2/models/" + model + "/infer", Body(1.5f, 2)), 1.5f, 2), "1") << model;
  }
  for (const std::string model : {"wrong_ca", "wrong_ca_grpc", "wrong_name", "no_client_cert"}) {
    SCOPED_TRACE(model);
    EXPECT_EQ(states[model], "UNAVAILABLE");
    const std::string& reason = reasons[model];
    EXPECT_NE(reason.find("not ready on any endpoint"), std::string::npos) << reason;
    EXPECT_NE(reason.find(model == "wrong_ca_grpc" ? grpc : https), std::string::npos) << reason;
    const auto before = std::chrono::steady_clock::now();
    EXPECT_EQ(client.Post("/v2/models/" + model + "/infer", Body(1, 2)).status, 503u);
    EXPECT_LT(std::chrono::steady_clock::now() - before, std::chrono::seconds(2));
  }
  // The TLS error itself, for the operator.
  EXPECT_NE(reasons["wrong_ca"].find("certificate verify failed"), std::string::npos) << reasons["wrong_ca"];
  EXPECT_NE(reasons["wrong_name"].find("certificate verify failed"), std::string::npos) << reasons["wrong_name"];
}

// A TF Serving REST stand-in over TLS on 127.0.0.1: GET /v1/models/tfm says
// version 1 is AVAILABLE; POST /v1/models/tfm:predict takes {"inputs":
// {"x": [[a, b]]}} and answers {"outputs": {"y": [[2a, 2b]]}}. A thread per
// connection, all joined at destruction (their peers close first).
class TlsTfServing {
 public:
  TlsTfServing(const std::string& cert_pem, const std::string& key_pem)
      : acceptor_(ioc_, {boost::asio::ip::make_address("127.0.0.1"), 0}) {
    ctx_.use_certificate_chain(boost::asio::buffer(cert_pem));
    ctx_.use_private_key(boost::asio::buffer(key_pem), boost::asio::ssl::context::pem);
    thread_ = std::thread([this] { Accept(); });
  }
  ~TlsTfServing() {
    stop_ = true;
    boost::system::error_code ignored;
    boost::asio::ip::tcp::socket wake(ioc_);
    wake.connect(acceptor_.local_endpoint(), ignored);
    thread_.join();
    for (auto& worker : workers_) worker.join();
  }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  std::atomic<int> predicts{0};

 private:
  void Accept() {
    while (!stop_) {
      boost::asio::ip::tcp::socket socket(ioc_);
      boost::system::error_code ec;
      acceptor_.accept(socket, ec);
      if (ec || stop_) continue;
      timeval limit{10, 0};  // A stuck peer cannot hold a worker past the test.
      setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
      workers_.emplace_back([this, socket = std::move(socket)]() mutable { Serve(std::move(socket)); });
    }
  }
  void Serve(boost::asio::ip::tcp::socket socket) {
    namespace http = boost::beast::http;
    boost::asio::ssl::stream<boost::asio::ip::tcp::socket> stream(std::move(socket), ctx_);
    boost::system::error_code ec;
    stream.handshake(boost::asio::ssl::stream_base::server, ec);
    if (ec) return;
    boost::beast::flat_buffer buffer;
    for (;;) {
      http::request<http::string_body> request;
      http::read(stream, buffer, request, ec);
      if (ec) return;
      http::response<http::string_body> response{http::status::ok, 11};
      response.set(http::field::content_type, "application/json");
      const std::string target(request.target());
      if (request.method() == http::verb::get && target == "/v1/models/tfm") {
        response.body() = R"({"model_version_status":[{"version":"1","state":"AVAILABLE","status":{"error_code":"OK"}}]})";
      } else if (request.method() == http::verb::post && target == "/v1/models/tfm:predict") {
        ++predicts;
        rapidjson::Document doc;
        doc.Parse(request.body().c_str());
        const auto& x = doc["inputs"]["x"][0];
        response.body() = R"({"outputs":{"y":[[)" + std::to_string(2 * x[0].GetDouble()) + "," +
                          std::to_string(2 * x[1].GetDouble()) + "]]}}";
      } else {
        response.result(http::status::not_found);
        response.body() = R"({"error":"no such route"})";
      }
      response.keep_alive(request.keep_alive());
      response.prepare_payload();
      http::write(stream, response, ec);
      if (ec || !request.keep_alive()) return;
    }
  }

  boost::asio::io_context ioc_;
  boost::asio::ssl::context ctx_{boost::asio::ssl::context::tls_server};
  boost::asio::ip::tcp::acceptor acceptor_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::vector<std::thread> workers_;  // Only the accept thread adds; joined after it.
};

TEST(RemoteGatewayTest, TfServingRestOverTlsVerifiesTheRemotesCertificate) {
  admission::testing::TestCa ca("tfs-ca");
  admission::testing::TestCa stranger("some-other-ca");
  const auto server_cert = ca.Issue({.common_name = "localhost", .serial = 31, .server = true});
  TempDir certs;
  WriteFile(certs.path() + "/ca.pem", ca.cert_pem());
  WriteFile(certs.path() + "/stranger.pem", stranger.cert_pem());
  TlsTfServing tf(server_cert.cert_pem, server_cert.key_pem);
  const std::string endpoint = "https://127.0.0.1:" + std::to_string(tf.port());
  TempDir dir;
  for (const auto& [name, ca_file] : {std::pair<std::string, std::string>{"tf_tls", "ca.pem"}, {"tf_wrong_ca", "stranger.pem"}}) {
    WriteFile(fs::path(dir.path()) / name / "config.pbtxt",
              "platform: \"remote\"\n" + std::string(kAddConfig) + "remote { protocol: TFSERVING_REST endpoints: \"" +
                  endpoint + "\" model_name: \"tfm\" timeout_ms: 3000 tls { ca_file: \"" + certs.path() + "/" +
                  ca_file + "\" } }\n");
    fs::create_directories(fs::path(dir.path()) / name / "1");
  }
  {
    auto gateway = ServerProcess::Start({"--model-repository", dir.path()});
    ASSERT_TRUE(gateway.ok()) << gateway.status();
    HttpClient client((*gateway)->http_port());
    auto res = client.Post("/v2/models/tf_tls/infer", Body(1.5f, -3));
    ASSERT_EQ(res.status, 200u) << res.body;
    auto doc = Json(res.body);
    ASSERT_TRUE(doc.IsObject() && doc.HasMember("outputs"));
    EXPECT_EQ(doc["outputs"][0]["data"][0].GetFloat(), 3);
    EXPECT_EQ(doc["outputs"][0]["data"][1].GetFloat(), -6);
    EXPECT_EQ(tf.predicts.load(), 1);
    auto index = Json(client.Post("/v2/repository/index", "").body);
    ASSERT_TRUE(index.IsArray());
    for (const auto& entry : index.GetArray()) {
      if (std::string(entry["name"].GetString()) != "tf_wrong_ca") continue;
      EXPECT_STREQ(entry["state"].GetString(), "UNAVAILABLE");
      const std::string reason = entry.HasMember("reason") ? entry["reason"].GetString() : "";
      EXPECT_NE(reason.find(endpoint), std::string::npos) << reason;
      EXPECT_NE(reason.find("certificate verify failed"), std::string::npos) << reason;
    }
  }  // The gateway closes its connections before the stand-in joins its workers.
}

}  // namespace
}  // namespace ortserve::testing
