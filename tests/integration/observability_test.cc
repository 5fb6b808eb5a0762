// SPDX-License-Identifier: Apache-2.0
// Observability through the real binary: Prometheus values after known
// requests, readiness, SIGTERM drain, OTLP export to a collector stand-in,
// the access log, /v2/logging, and the Grafana dashboard's metrics.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "core/strings.h"
#include "integration/server_harness.h"

namespace ortserve::testing {
namespace {

using namespace std::chrono_literals;

// Writes a repository with `identity` (FP32 [-1,4] -> same, max_batch_size 8)
// and `held` (the same model, but its dynamic batcher waits `hold_us` for a
// batch of 8, so requests sit in its queue), plus `corrupt` (bad ONNX bytes).
void MakeRepository(const std::string& root, int hold_us = 3000000) {
  ASSERT_TRUE(RunPython(R"(
import os, onnx
from onnx import helper, TensorProto
root = ')" + root + R"('
x = helper.make_tensor_value_info('x', TensorProto.FLOAT, [None, 4])
y = helper.make_tensor_value_info('y', TensorProto.FLOAT, [None, 4])
m = helper.make_model(helper.make_graph([helper.make_node('Identity', ['x'], ['y'])], 'g', [x], [y]),
                      opset_imports=[helper.make_opsetid('', 13)])
m.ir_version = 8
for name in ['identity', 'held', 'corrupt']:
    os.makedirs(root + '/' + name + '/1', exist_ok=True)
onnx.save(m, root + '/identity/1/model.onnx')
onnx.save(m, root + '/held/1/model.onnx')
open(root + '/corrupt/1/model.onnx', 'wb').write(b'not an onnx file')
open(root + '/identity/config.pbtxt', 'w').write('max_batch_size: 8\n')
open(root + '/held/config.pbtxt', 'w').write(
    'max_batch_size: 8\ndynamic_batching { preferred_batch_size: [8] max_queue_delay_microseconds: )" +
                        std::to_string(hold_us) + R"( }\n')
)")
                  .ok());
}

const std::string kGoodBody =
    R"({"id":"req-1","inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]})";
const std::string kBadBody = R"({"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]})";

// The value of the series `name` whose labels include every `labels` pair
// (`key="value"`), or -1 when no line matches.
double MetricValue(const std::string& exposition, const std::string& name,
                   const std::vector<std::string>& labels = {}) {
  std::istringstream lines(exposition);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line[0] == '#') continue;
    if (line.compare(0, name.size(), name) != 0) continue;
    if (line.size() <= name.size() || (line[name.size()] != '{' && line[name.size()] != ' ')) continue;
    bool all = true;
    for (const auto& label : labels) all &= line.find(label) != std::string::npos;
    if (!all) continue;
    return std::stod(line.substr(line.rfind(' ') + 1));
  }
  return -1;
}

std::string Scrape(uint16_t port) {
  HttpClient client(port);
  auto response = client.Get("/metrics");
  EXPECT_EQ(response.status, 200u) << response.body;
  return response.body;
}

// Polls `predicate` (a wait on the server's state, with a deadline; no fixed sleeps).
template <typename F>
bool WaitFor(F predicate, std::chrono::milliseconds limit = 20s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (predicate()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return predicate();
}

TEST(ObservabilityTest, MetricsCountRequestsByOutcomeAndObserveHistograms) {
  TempDir repo;
  MakeRepository(repo.path());
  auto server = ServerProcess::Start({"--model-repository", repo.path(), "--metrics-port", "0",
                                      "--metrics-latency-buckets", "0.000001,30"});
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_NE((*server)->metrics_port(), 0);
  HttpClient client((*server)->http_port());
  for (int i = 0; i < 3; ++i) ASSERT_EQ(client.Post("/v2/models/identity/infer", kGoodBody).status, 200u);
  ASSERT_EQ(client.Post("/v2/models/identity/infer", kBadBody).status, 400u);
  ASSERT_EQ(client.Post("/v2/models/nosuchmodel/infer", kGoodBody).status, 404u);

  // A runner records a batch right after answering its requests: wait for
  // the third run's record before reading everything.
  const std::vector<std::string> model = {R"(model="identity")", R"(version="1")"};
  std::string m;
  EXPECT_TRUE(WaitFor([&] {
    m = Scrape((*server)->metrics_port());
    return MetricValue(m, "ortserve_batch_size_count", model) == 3 &&
           MetricValue(m, "ortserve_inflight_batches", model) == 0;
  })) << m;
  const std::vector<std::string> id = {R"(model="identity")", R"(version="1")", R"(protocol="http")"};
  auto with = [&](std::string extra) {
    auto labels = id;
    labels.push_back(std::move(extra));
    return labels;
  };
  EXPECT_EQ(MetricValue(m, "ortserve_request_total", with(R"(outcome="success")")), 3);
  EXPECT_EQ(MetricValue(m, "ortserve_request_total", with(R"(outcome="client_error")")), 1);
  EXPECT_EQ(MetricValue(m, "ortserve_request_total", with(R"(outcome="server_error")")), 0);
  EXPECT_EQ(MetricValue(m, "ortserve_request_total", {R"(model="")", R"(outcome="client_error")", R"(protocol="http")"}),
            1);
  // Latency histogram: every request is slower than 1 us and faster than 30 s.
  EXPECT_EQ(MetricValue(m, "ortserve_request_duration_seconds_count", id), 4);
  EXPECT_EQ(MetricValue(m, "ortserve_request_duration_seconds_bucket", with(R"(le="1e-06")")), 0);
  EXPECT_EQ(MetricValue(m, "ortserve_request_duration_seconds_bucket", with(R"(le="30")")), 4);
  // Three one-row runs.
  EXPECT_EQ(MetricValue(m, "ortserve_batch_size_bucket", {model[0], model[1], R"(le="1")"}), 3);
  EXPECT_EQ(MetricValue(m, "ortserve_batch_size_sum", model), 3);
  EXPECT_EQ(MetricValue(m, "ortserve_queue_duration_seconds_count", model), 3);
  EXPECT_EQ(MetricValue(m, "ortserve_compute_infer_duration_seconds_count", model), 3);
  EXPECT_EQ(MetricValue(m, "ortserve_response_bytes_count", id), 3);
  EXPECT_GT(MetricValue(m, "ortserve_response_bytes_sum", id), 3 * 50);
  EXPECT_EQ(MetricValue(m, "ortserve_pending_requests", model), 0);
  EXPECT_EQ(MetricValue(m, "ortserve_inflight_batches", model), 0);
  EXPECT_EQ(MetricValue(m, "ortserve_model_state", {model[0], model[1], R"(state="READY")"}), 1);
  EXPECT_EQ(MetricValue(m, "ortserve_model_state", {R"(model="corrupt")", R"(state="UNAVAILABLE")"}), 1);
  EXPECT_GT(MetricValue(m, "ortserve_model_load_duration_seconds", model), 0);
  EXPECT_EQ(MetricValue(m, "ortserve_server_ready"), 1);
  EXPECT_GT(MetricValue(m, "process_resident_memory_bytes"), 1e6);
  EXPECT_GT(MetricValue(m, "process_threads"), 1);
  EXPECT_GT(MetricValue(m, "process_open_fds"), 2);
  EXPECT_GE(MetricValue(m, "process_cpu_seconds_total"), 0);
}

TEST(ObservabilityTest, PendingGaugeCountsHeldQueueAndSigtermDrainsEveryRequest) {
  TempDir repo;
  MakeRepository(repo.path(), /*hold_us=*/3000000);
  auto server = ServerProcess::Start({"--model-repository", repo.path(), "--metrics-port", "0"});
  ASSERT_TRUE(server.ok()) << server.status();
  const uint16_t port = (*server)->http_port();
  HttpClient probe(port);  // Opened before shutdown: keep-alive survives the listener.
  // Ready once start-up finishes (just after the port lines appear).
  ASSERT_TRUE(WaitFor([&] { return probe.Get("/v2/health/ready").status == 200; }));

  constexpr int kRequests = 4;
  std::vector<unsigned> statuses(kRequests, 0);
  std::vector<std::thread> clients;
  for (int i = 0; i < kRequests; ++i) {
    clients.emplace_back([&, i] { statuses[i] = HttpClient(port).Post("/v2/models/held/infer", kGoodBody).status; });
  }
  // The batcher holds them (it waits for 8 rows or 3 s): the gauge shows all.
  const std::vector<std::string> held = {R"(model="held")", R"(version="1")"};
  double pending = -1;
  EXPECT_TRUE(WaitFor([&] {
    pending = MetricValue(Scrape((*server)->metrics_port()), "ortserve_pending_requests", held);
    return pending == kRequests;
  })) << "pending gauge " << pending;

  kill((*server)->pid(), SIGTERM);
  // Readiness goes false first, while the requests are still held.
  EXPECT_TRUE(WaitFor([&] { return probe.Get("/v2/health/ready").status == 503; }));
  const int exit_code = (*server)->Stop(SIGTERM, 60);
  for (auto& t : clients) t.join();
  EXPECT_EQ(exit_code, 0) << (*server)->Output();
  for (int i = 0; i < kRequests; ++i) EXPECT_EQ(statuses[i], 200u) << "request " << i;
  EXPECT_NE((*server)->Output().find("draining 4 admitted request(s)"), std::string::npos) << (*server)->Output();
}

TEST(ObservabilityTest, ReadinessFollowsRequiredModelsOnly) {
  TempDir repo;
  MakeRepository(repo.path());
  {
    // A failed model that is not required does not block readiness.
    auto server = ServerProcess::Start({"--model-repository", repo.path(), "--required-model", "identity"});
    ASSERT_TRUE(server.ok()) << server.status();
    HttpClient client((*server)->http_port());
    EXPECT_TRUE(WaitFor([&] { return client.Get("/v2/health/ready").status == 200; }));
  }
  {
    auto server = ServerProcess::Start(
        {"--model-repository", repo.path(), "--required-model", "identity", "--required-model", "corrupt"});
    ASSERT_TRUE(server.ok()) << server.status();
    HttpClient client((*server)->http_port());
    // Start-up is over once the server has judged the required models.
    EXPECT_TRUE(WaitFor([&] { return (*server)->Output().find("required model 'corrupt' is not READY") !=
                                     std::string::npos; }));
    EXPECT_EQ(client.Get("/v2/health/live").status, 200u);
    EXPECT_EQ(client.Get("/v2/health/ready").status, 503u);
    EXPECT_EQ(client.Get("/v2/models/identity/ready").status, 200u);
  }
}

TEST(ObservabilityTest, ReadinessHoldsWhileAnotherModelLoadsAndFails) {
  TempDir repo;
  MakeRepository(repo.path());
  auto server = ServerProcess::Start({"--model-repository", repo.path(), "--model-control-mode", "explicit",
                                      "--load-model", "identity", "--required-model", "identity"});
  ASSERT_TRUE(server.ok()) << server.status();
  const uint16_t port = (*server)->http_port();
  HttpClient client(port);
  ASSERT_TRUE(WaitFor([&] { return client.Get("/v2/health/ready").status == 200; }));
  // Probe readiness continuously while models load in the background.
  std::atomic<bool> done{false};
  std::atomic<int> probes{0}, not_ready{0};
  std::thread prober([&] {
    HttpClient p(port);
    while (!done.load()) {
      if (p.Get("/v2/health/ready").status != 200) ++not_ready;
      ++probes;
    }
  });
  EXPECT_EQ(client.Post("/v2/repository/models/held/load", "").status, 200u);
  EXPECT_NE(client.Post("/v2/repository/models/corrupt/load", "").status, 200u);
  EXPECT_EQ(client.Post("/v2/repository/models/identity/load", "").status, 200u);  // A reload.
  done = true;
  prober.join();
  EXPECT_GT(probes.load(), 0);
  EXPECT_EQ(not_ready.load(), 0);
  EXPECT_EQ(client.Get("/v2/health/ready").status, 200u);
  EXPECT_EQ(client.Get("/v2/models/held/ready").status, 200u);
}

// An OTLP/HTTP collector stand-in: accepts POSTs on a loopback port and keeps
// their bodies.
class Collector {
 public:
  Collector() : acceptor_(ioc_, {boost::asio::ip::make_address("127.0.0.1"), 0}) {
    thread_ = std::thread([this] { Serve(); });
  }
  ~Collector() {
    stop_ = true;
    boost::system::error_code ignored;
    boost::asio::ip::tcp::socket wake(ioc_);
    wake.connect(acceptor_.local_endpoint(), ignored);
    thread_.join();
  }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  // Waits until `n` payloads arrived; returns them.
  std::vector<std::string> WaitForPayloads(size_t n, std::chrono::seconds limit = 20s) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, limit, [&] { return bodies_.size() >= n; });
    return bodies_;
  }
  std::vector<std::string> paths() {
    std::lock_guard lock(mu_);
    return paths_;
  }

 private:
  void Serve() {
    namespace http = boost::beast::http;
    while (!stop_) {
      boost::asio::ip::tcp::socket socket(ioc_);
      boost::system::error_code ec;
      acceptor_.accept(socket, ec);
      if (ec || stop_) continue;
      boost::beast::flat_buffer buffer;
      for (;;) {
        http::request<http::string_body> request;
        http::read(socket, buffer, request, ec);
        if (ec) break;
        {
          std::lock_guard lock(mu_);
          bodies_.push_back(request.body());
          paths_.emplace_back(request.target().data(), request.target().size());
          content_types_.emplace_back(request[http::field::content_type]);
        }
        cv_.notify_all();
        http::response<http::string_body> response{http::status::ok, 11};
        response.set(http::field::content_type, "application/json");
        response.body() = "{}";
        response.prepare_payload();
        http::write(socket, response, ec);
        if (ec) break;
      }
    }
  }

  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> bodies_, paths_, content_types_;
};

const rapidjson::Value* Attribute(const rapidjson::Value& span, const char* key) {
  for (const auto& a : span["attributes"].GetArray()) {
    if (std::string_view(a["key"].GetString()) == key) return &a["value"];
  }
  return nullptr;
}

TEST(ObservabilityTest, TracesExportOtlpJsonAndPropagateTraceparent) {
  TempDir repo;
  MakeRepository(repo.path());
  Collector collector;
  auto server = ServerProcess::Start(
      {"--model-repository", repo.path(), "--otlp-endpoint",
       StrCat("http://127.0.0.1:", collector.port(), "/v1/traces"), "--trace-sampling-ratio", "0"});
  ASSERT_TRUE(server.ok()) << server.status();
  HttpClient client((*server)->http_port());
  const std::string trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  const std::string parent_span = "00f067aa0ba902b7";
  // Not sampled by its caller and the ratio is 0: propagated, not exported.
  auto unsampled = client.Post("/v2/models/identity/infer", kGoodBody,
                               {{"traceparent", "00-" + trace_id + "-" + parent_span + "-00"}});
  ASSERT_EQ(unsampled.status, 200u);
  EXPECT_EQ(unsampled.Header("traceparent").substr(0, 36), "00-" + trace_id + "-");
  EXPECT_EQ(unsampled.Header("traceparent").substr(52), "-00");

  auto sampled = client.Post("/v2/models/identity/infer", kGoodBody,
                             {{"traceparent", "00-" + trace_id + "-" + parent_span + "-01"}});
  ASSERT_EQ(sampled.status, 200u);
  const std::string back = sampled.Header("traceparent");
  ASSERT_EQ(back.size(), 55u) << back;
  EXPECT_EQ(back.substr(0, 36), "00-" + trace_id + "-");
  const std::string span_id = back.substr(36, 16);
  EXPECT_NE(span_id, parent_span);
  EXPECT_EQ(back.substr(52), "-01");

  auto payloads = collector.WaitForPayloads(1);
  ASSERT_EQ(payloads.size(), 1u);
  EXPECT_EQ(collector.paths()[0], "/v1/traces");
  rapidjson::Document doc;
  ASSERT_FALSE(doc.Parse(payloads[0].c_str()).HasParseError()) << payloads[0];
  const auto& resource_spans = doc["resourceSpans"][0];
  const auto& service = resource_spans["resource"]["attributes"][0];
  EXPECT_STREQ(service["key"].GetString(), "service.name");
  EXPECT_STREQ(service["value"]["stringValue"].GetString(), "ortserve");
  const auto& spans = resource_spans["scopeSpans"][0]["spans"];
  ASSERT_EQ(spans.Size(), 1u) << payloads[0];  // Only the sampled request.
  const auto& span = spans[0];
  EXPECT_EQ(span["traceId"].GetString(), trace_id);
  EXPECT_EQ(span["spanId"].GetString(), span_id);
  EXPECT_EQ(span["parentSpanId"].GetString(), parent_span);
  EXPECT_EQ(span["kind"].GetInt(), 2);  // SERVER
  EXPECT_LT(std::stoll(span["startTimeUnixNano"].GetString()), std::stoll(span["endTimeUnixNano"].GetString()));
  ASSERT_NE(Attribute(span, "ai.model.name"), nullptr);
  EXPECT_STREQ((*Attribute(span, "ai.model.name"))["stringValue"].GetString(), "identity");
  EXPECT_STREQ((*Attribute(span, "ai.model.version"))["stringValue"].GetString(), "1");
  EXPECT_STREQ((*Attribute(span, "ai.operation"))["stringValue"].GetString(), "infer");
  EXPECT_STREQ((*Attribute(span, "ai.request.id"))["stringValue"].GetString(), "req-1");
  EXPECT_EQ(span["status"]["code"].GetInt(), 1);
}

TEST(ObservabilityTest, LoggingEndpointChangesSettingsAndAccessLogWritesJsonLines) {
  TempDir repo;
  MakeRepository(repo.path());
  auto server = ServerProcess::Start({"--model-repository", repo.path()});
  ASSERT_TRUE(server.ok()) << server.status();
  HttpClient client((*server)->http_port());
  rapidjson::Document doc;
  auto get = client.Get("/v2/logging");
  ASSERT_EQ(get.status, 200u);
  ASSERT_FALSE(doc.Parse(get.body.c_str()).HasParseError());
  EXPECT_TRUE(doc["log_info"].GetBool());
  EXPECT_EQ(doc["log_verbose_level"].GetInt(), 0);
  EXPECT_STREQ(doc["log_format"].GetString(), "json");
  EXPECT_FALSE(doc["access_log"].GetBool());

  EXPECT_EQ(client.Post("/v2/logging", R"({"log_verbose_level":"loud"})").status, 400u);
  auto post = client.Post("/v2/logging", R"({"log_verbose_level":1,"access_log":true})");
  ASSERT_EQ(post.status, 200u) << post.body;
  ASSERT_FALSE(doc.Parse(post.body.c_str()).HasParseError());
  EXPECT_EQ(doc["log_verbose_level"].GetInt(), 1);
  EXPECT_TRUE(doc["access_log"].GetBool());

  ASSERT_EQ(client.Post("/v2/models/identity/infer", kGoodBody).status, 200u);
  std::string line;
  EXPECT_TRUE(WaitFor([&] {
    const std::string out = (*server)->Output();
    const size_t at = out.find(R"("request_id": "req-1")");
    if (at == std::string::npos) return false;
    const size_t begin = out.rfind('\n', at) + 1;
    line = out.substr(begin, out.find('\n', at) - begin);
    return true;
  }));
  ASSERT_FALSE(doc.Parse(line.c_str()).HasParseError()) << line;
  EXPECT_STREQ(doc["model"].GetString(), "identity");
  EXPECT_STREQ(doc["version"].GetString(), "1");
  EXPECT_EQ(doc["status"].GetInt(), 200);
  EXPECT_TRUE(doc["latency_ms"].IsNumber());
  EXPECT_TRUE(doc.HasMember("timestamp"));
  // Every server log line is JSON.
  std::istringstream lines((*server)->Output());
  for (std::string l; std::getline(lines, l);) {
    if (l.empty() || l[0] != '{') continue;  // ONNX Runtime's own lines, if any.
    EXPECT_FALSE(doc.Parse(l.c_str()).HasParseError()) << l;
  }
}

TEST(ObservabilityTest, DashboardQueriesOnlyMetricsTheServerExports) {
  TempDir repo;
  MakeRepository(repo.path());
  auto server = ServerProcess::Start({"--model-repository", repo.path(), "--metrics-port", "0"});
  ASSERT_TRUE(server.ok()) << server.status();
  HttpClient client((*server)->http_port());
  ASSERT_EQ(client.Post("/v2/models/identity/infer", kGoodBody).status, 200u);
  const std::string metrics = Scrape((*server)->metrics_port());

  std::ifstream file(SourceDir() + "/deploy/grafana/ortserve-dashboard.json");
  ASSERT_TRUE(file) << "deploy/grafana/ortserve-dashboard.json is missing";
  const std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  rapidjson::Document doc;
  ASSERT_FALSE(doc.Parse(text.c_str()).HasParseError());
  std::vector<std::string> exprs;
  for (const auto& panel : doc["panels"].GetArray()) {
    for (const auto& target : panel["targets"].GetArray()) exprs.push_back(target["expr"].GetString());
  }
  for (const auto& var : doc["templating"]["list"].GetArray()) {
    if (var.HasMember("query") && var["query"].IsString()) exprs.push_back(var["query"].GetString());
  }
  ASSERT_GE(exprs.size(), 6u);
  const std::regex name_re(R"(\b((?:ortserve|process)_[a-z_]+))");
  std::set<std::string> names;
  for (const auto& expr : exprs) {
    for (std::sregex_iterator it(expr.begin(), expr.end(), name_re), end; it != end; ++it) names.insert((*it)[1]);
  }
  for (const char* needed : {"ortserve_request_total", "ortserve_request_duration_seconds_bucket",
                             "ortserve_pending_requests", "ortserve_batch_size_bucket", "ortserve_model_state"}) {
    EXPECT_TRUE(names.count(needed)) << "the dashboard does not chart " << needed;
  }
  for (const auto& name : names) {
    EXPECT_TRUE(metrics.find("\n" + name + "{") != std::string::npos ||
                metrics.find("\n" + name + " ") != std::string::npos)
        << "the dashboard queries " << name << ", which /metrics does not export";
  }
}

}  // namespace
}  // namespace ortserve::testing
