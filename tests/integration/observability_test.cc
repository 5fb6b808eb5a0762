// SPDX-License-Identifier: Apache-2.0
// Observability through the real binary: Prometheus values after known
// requests, readiness, SIGTERM drain, OTLP export to a collector stand-in
// (request, tokenization, queue and batch spans; REST and gRPC trace
// context), gRPC request metrics, the CPU and heap profile endpoints, the
// access log, /v2/logging, and the Grafana dashboard's metrics.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "core/strings.h"
#include "integration/grpc_test_util.h"
#include "integration/otlp_collector.h"
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
                        std::to_string(hold_us) + R"( wait_when_idle: true }\n')
)")
                  .ok());
}

const std::string kGoodBody =
    R"({"id":"req-1","inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]})";
const std::string kBadBody = R"({"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]})";

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
    // A request is counted once its response is written, which can be just
    // after the client has read it: wait for the last ones too.
    return MetricValue(m, "ortserve_batch_size_count", model) == 3 &&
           MetricValue(m, "ortserve_inflight_batches", model) == 0 &&
           MetricValue(m, "ortserve_request_duration_seconds_count",
                       {R"(model="identity")", R"(version="1")", R"(protocol="http")"}) == 4 &&
           MetricValue(m, "ortserve_request_total",
                       {R"(model="")", R"(outcome="client_error")", R"(protocol="http")"}) == 1;
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

// A model with a latency target exports the batch size and queue delay its
// batcher chose, within its configured bounds; a model without one has no
// such series. The config endpoint shows the target as a number.
TEST(ObservabilityTest, LatencyTargetExportsTheAdaptedBatchLimits) {
  TempDir repo;
  MakeRepository(repo.path());
  std::filesystem::copy(repo.path() + "/identity", repo.path() + "/adaptive", std::filesystem::copy_options::recursive);
  std::ofstream(repo.path() + "/adaptive/config.pbtxt")
      << "max_batch_size: 8\ndynamic_batching { max_queue_delay_microseconds: 2000 "
         "latency_target_microseconds: 200000 }\n";
  auto server = ServerProcess::Start({"--model-repository", repo.path(), "--metrics-port", "0"});
  ASSERT_TRUE(server.ok()) << server.status();
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int t = 0; t < 8; ++t) {
    clients.emplace_back([&] {
      HttpClient client((*server)->http_port());
      for (int i = 0; i < 25; ++i) ok += client.Post("/v2/models/adaptive/infer", kGoodBody).status == 200u;
    });
  }
  for (auto& client : clients) client.join();
  EXPECT_EQ(ok.load(), 200);
  const std::vector<std::string> adaptive = {R"(model="adaptive")", R"(version="1")"};
  std::string m;
  EXPECT_TRUE(WaitFor([&] {
    m = Scrape((*server)->metrics_port());
    return MetricValue(m, "ortserve_batch_size_count", adaptive) > 0 &&
           MetricValue(m, "ortserve_batch_size_limit", adaptive) >= 1;
  })) << m;
  // An identity model runs in microseconds: two runs of 8 rows fit 200 ms,
  // so the limit grows with full batches and never passes max_batch_size;
  // the delay the target leaves is capped at max_queue_delay.
  EXPECT_LE(MetricValue(m, "ortserve_batch_size_limit", adaptive), 8);
  EXPECT_GT(MetricValue(m, "ortserve_queue_delay_limit_seconds", adaptive), 0);
  EXPECT_LE(MetricValue(m, "ortserve_queue_delay_limit_seconds", adaptive), 0.002);
  EXPECT_LE(MetricValue(m, "ortserve_batch_size_sum", adaptive) / MetricValue(m, "ortserve_batch_size_count", adaptive),
            8);
  EXPECT_EQ(m.find("ortserve_batch_size_limit{model=\"identity\""), std::string::npos) << m;
  HttpClient client((*server)->http_port());
  const HttpResponse config = client.Get("/v2/models/adaptive/config");
  EXPECT_NE(config.body.find("\"latency_target_microseconds\":200000"), std::string::npos) << config.body;
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
  std::string first_not_ready;  // Written by the prober only, read after join.
  std::thread prober([&] {
    HttpClient p(port);
    while (!done.load()) {
      auto response = p.Get("/v2/health/ready");
      if (response.status != 200 && not_ready++ == 0) {
        first_not_ready = std::to_string(response.status) + " " + response.body;
      }
      ++probes;
    }
  });
  // The loads can finish in milliseconds: make sure the prober is probing
  // before they start and probes again after they end.
  ASSERT_TRUE(WaitFor([&] { return probes.load() > 0; }));
  EXPECT_EQ(client.Post("/v2/repository/models/held/load", "").status, 200u);
  EXPECT_NE(client.Post("/v2/repository/models/corrupt/load", "").status, 200u);
  EXPECT_EQ(client.Post("/v2/repository/models/identity/load", "").status, 200u);  // A reload.
  const int after_loads = probes.load();
  EXPECT_TRUE(WaitFor([&] { return probes.load() > after_loads; }));
  done = true;
  prober.join();
  EXPECT_GT(probes.load(), 0);
  EXPECT_EQ(not_ready.load(), 0) << "first: " << first_not_ready << "\n" << (*server)->Output();
  EXPECT_EQ(client.Get("/v2/health/ready").status, 200u);
  EXPECT_EQ(client.Get("/v2/models/held/ready").status, 200u);
}

// Waits until the collector's spans satisfy `done` (or 20 s pass).
template <typename F>
bool WaitForSpans(Collector& collector, SpanSet& spans, F done) {
  return WaitFor([&] {
    spans.Load(collector.WaitForPayloads(0, 0s));
    return done(spans);
  });
}

// Whether `batch` links the span `span_id` of trace `trace_id`.
bool Links(const rapidjson::Value& batch, const std::string& trace_id, const std::string& span_id) {
  if (!batch.HasMember("links")) return false;
  for (const auto& link : batch["links"].GetArray()) {
    if (link["traceId"].GetString() == trace_id && link["spanId"].GetString() == span_id) return true;
  }
  return false;
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

  // The sampled request exports its server span, its queue span and the
  // batch span of its run; the unsampled one exports nothing (its batch
  // served no sampled request).
  SpanSet spans;
  ASSERT_TRUE(WaitForSpans(collector, spans, [](const SpanSet& s) {
    return s.Operation("infer").size() >= 1 && s.Operation("queue").size() >= 1 && s.Operation("batch").size() >= 1;
  })) << spans.all().size() << " spans";
  EXPECT_EQ(collector.paths()[0], "/v1/traces");
  rapidjson::Document doc;
  const auto payloads = collector.WaitForPayloads(1);
  ASSERT_FALSE(doc.Parse(payloads[0].c_str()).HasParseError()) << payloads[0];
  const auto& service = doc["resourceSpans"][0]["resource"]["attributes"][0];
  EXPECT_STREQ(service["key"].GetString(), "service.name");
  EXPECT_STREQ(service["value"]["stringValue"].GetString(), "ortserve");
  ASSERT_EQ(spans.Operation("infer").size(), 1u);  // Only the sampled request.
  const auto& span = *spans.Operation("infer")[0];
  EXPECT_EQ(span["traceId"].GetString(), trace_id);
  EXPECT_EQ(span["spanId"].GetString(), span_id);
  EXPECT_EQ(span["parentSpanId"].GetString(), parent_span);
  EXPECT_EQ(span["kind"].GetInt(), 2);  // SERVER
  EXPECT_LT(std::stoll(span["startTimeUnixNano"].GetString()), std::stoll(span["endTimeUnixNano"].GetString()));
  EXPECT_EQ(StringAttribute(span, "ai.model.name"), "identity");
  EXPECT_EQ(StringAttribute(span, "ai.model.version"), "1");
  EXPECT_EQ(StringAttribute(span, "ai.request.id"), "req-1");
  EXPECT_EQ(StringAttribute(span, "rpc.system"), "http");
  EXPECT_EQ(Attribute(span, "llm.request.input_tokens"), nullptr);  // Not a text model.
  EXPECT_EQ(span["status"]["code"].GetInt(), 1);

  // Queue wait: a child of the request span, inside it.
  ASSERT_EQ(spans.Operation("queue").size(), 1u);
  const auto& queue = *spans.Operation("queue")[0];
  EXPECT_EQ(queue["traceId"].GetString(), trace_id);
  EXPECT_EQ(queue["parentSpanId"].GetString(), span_id);
  EXPECT_NE(queue["spanId"].GetString(), span_id);
  EXPECT_EQ(queue["kind"].GetInt(), 1);  // INTERNAL
  EXPECT_EQ(StringAttribute(queue, "ai.model.name"), "identity");
  EXPECT_EQ(StringAttribute(queue, "ai.model.version"), "1");
  EXPECT_GE(std::stoll(queue["startTimeUnixNano"].GetString()), std::stoll(span["startTimeUnixNano"].GetString()));
  EXPECT_LE(std::stoll(queue["endTimeUnixNano"].GetString()), std::stoll(span["endTimeUnixNano"].GetString()));

  // The batch run: a trace of its own that links the request span.
  ASSERT_EQ(spans.Operation("batch").size(), 1u);
  const auto& batch = *spans.Operation("batch")[0];
  EXPECT_NE(batch["traceId"].GetString(), trace_id);
  EXPECT_FALSE(batch.HasMember("parentSpanId"));
  EXPECT_TRUE(Links(batch, trace_id, span_id)) << "the batch span does not link the request span";
  EXPECT_EQ(batch["links"].Size(), 1u);
  EXPECT_EQ(StringAttribute(batch, "ai.model.name"), "identity");
  EXPECT_EQ(StringAttribute(batch, "ai.model.version"), "1");
  EXPECT_EQ(IntAttribute(batch, "ai.batch.requests"), 1);
  EXPECT_EQ(IntAttribute(batch, "ai.batch.rows"), 1);
  EXPECT_EQ(batch["status"]["code"].GetInt(), 1);
  // It starts when the queue wait ends.
  EXPECT_EQ(std::stoll(batch["startTimeUnixNano"].GetString()), std::stoll(queue["endTimeUnixNano"].GetString()));
}

TEST(ObservabilityTest, BatchSpanLinksEverySampledRequestItServed) {
  TempDir repo;
  MakeRepository(repo.path(), /*hold_us=*/3000000);
  Collector collector;
  auto server = ServerProcess::Start(
      {"--model-repository", repo.path(), "--otlp-endpoint",
       StrCat("http://127.0.0.1:", collector.port(), "/v1/traces"), "--trace-sampling-ratio", "1",
       "--metrics-port", "0"});
  ASSERT_TRUE(server.ok()) << server.status();
  const uint16_t port = (*server)->http_port();
  // Three requests wait together in `held`'s queue (it waits 3 s for 8 rows),
  // and are cut as one batch when the delay passes.
  constexpr int kRequests = 3;
  std::vector<std::string> traceparents(kRequests);
  std::vector<std::thread> clients;
  for (int i = 0; i < kRequests; ++i) {
    clients.emplace_back([&, i] {
      auto response = HttpClient(port).Post("/v2/models/held/infer", kGoodBody);
      if (response.status == 200) traceparents[i] = response.Header("traceparent");
    });
  }
  for (auto& t : clients) t.join();
  SpanSet spans;
  ASSERT_TRUE(WaitForSpans(collector, spans, [&](const SpanSet& s) {
    return s.Operation("infer").size() == kRequests && s.Operation("queue").size() == kRequests &&
           !s.Operation("batch").empty();
  })) << spans.all().size() << " spans";
  // Held in one queue for the whole delay: one run served them all, unless
  // a request came after the cut (then it ran in a second batch).
  size_t linked = 0;
  for (const auto* batch : spans.Operation("batch")) linked += (*batch)["links"].Size();
  EXPECT_EQ(linked, static_cast<size_t>(kRequests));
  for (const auto& traceparent : traceparents) {
    ASSERT_EQ(traceparent.size(), 55u);
    const std::string trace = traceparent.substr(3, 32), span = traceparent.substr(36, 16);
    int linking = 0;
    for (const auto* batch : spans.Operation("batch")) linking += Links(*batch, trace, span) ? 1 : 0;
    EXPECT_EQ(linking, 1) << traceparent;
    ASSERT_EQ(spans.Operation("queue", trace).size(), 1u) << traceparent;
    EXPECT_EQ((*spans.Operation("queue", trace)[0])["parentSpanId"].GetString(), span);
  }
}

TEST(ObservabilityTest, TextModelRequestsRecordTokenizationAndInputTokens) {
  TempDir repo;
  ASSERT_TRUE(RunPython("import shutil; shutil.copytree('" + SourceDir() + "/models/text_embedding', '" +
                        repo.path() + "/text_embedding')")
                  .ok());
  Collector collector;
  auto server = ServerProcess::Start({"--model-repository", repo.path(), "--otlp-endpoint",
                                      StrCat("http://127.0.0.1:", collector.port(), "/v1/traces"),
                                      "--trace-sampling-ratio", "1"});
  ASSERT_TRUE(server.ok()) << server.status();
  HttpClient client((*server)->http_port());
  auto response = client.Post("/v2/models/text_embedding/infer",
                              R"({"id": "t", "inputs": [{"name": "text", "datatype": "BYTES", "shape": [2],
                                  "data": ["hello there", "my arm is sore today"]}]})");
  ASSERT_EQ(response.status, 200u) << response.body;
  rapidjson::Document body;
  ASSERT_FALSE(body.Parse(response.body.c_str()).HasParseError()) << response.body;
  ASSERT_TRUE(body.HasMember("parameters") && body["parameters"].HasMember("token_count")) << response.body;
  const int64_t tokens = body["parameters"]["token_count"].GetInt64();
  ASSERT_GT(tokens, 4);
  const std::string traceparent = response.Header("traceparent");
  ASSERT_EQ(traceparent.size(), 55u);
  const std::string trace = traceparent.substr(3, 32), span_id = traceparent.substr(36, 16);

  // One request span, one tokenization span, and a queue span per text
  // (each text is its own row in the token-budget batcher).
  SpanSet spans;
  ASSERT_TRUE(WaitForSpans(collector, spans, [&](const SpanSet& s) {
    return s.Operation("infer", trace).size() == 1 && s.Operation("tokenize", trace).size() == 1 &&
           s.Operation("queue", trace).size() == 2 && !s.Operation("batch").empty();
  })) << spans.all().size() << " spans";
  const auto& request = *spans.Operation("infer", trace)[0];
  EXPECT_EQ(request["spanId"].GetString(), span_id);
  EXPECT_EQ(IntAttribute(request, "llm.request.input_tokens"), tokens);
  EXPECT_EQ(StringAttribute(request, "ai.model.name"), "text_embedding");
  const auto& tokenize = *spans.Operation("tokenize", trace)[0];
  EXPECT_EQ(tokenize["parentSpanId"].GetString(), span_id);
  EXPECT_EQ(IntAttribute(tokenize, "llm.request.input_tokens"), tokens);
  EXPECT_EQ(StringAttribute(tokenize, "ai.model.name"), "text_embedding");
  EXPECT_EQ(StringAttribute(tokenize, "ai.model.version"), "1");
  for (const auto* queue : spans.Operation("queue", trace)) {
    EXPECT_EQ((*queue)["parentSpanId"].GetString(), span_id);
    EXPECT_EQ(IntAttribute(*queue, "llm.request.input_tokens"), tokens);
    // Queued after tokenization finished.
    EXPECT_GE(std::stoll((*queue)["startTimeUnixNano"].GetString()),
              std::stoll(tokenize["endTimeUnixNano"].GetString()));
  }
  size_t links = 0;
  for (const auto* batch : spans.Operation("batch")) {
    EXPECT_EQ(StringAttribute(*batch, "ai.model.name"), "text_embedding");
    links += Links(*batch, trace, span_id) ? (*batch)["links"].Size() : 0;
  }
  EXPECT_EQ(links, 2u);  // Both rows' runs link the request span.
}

TEST(ObservabilityTest, GrpcRequestsJoinTheCallersTraceAndCountInRequestMetrics) {
  TempDir repo;
  MakeRepository(repo.path());
  Collector collector;
  auto server = ServerProcess::Start(
      {"--model-repository", repo.path(), "--grpc-port", "0", "--metrics-port", "0", "--otlp-endpoint",
       StrCat("http://127.0.0.1:", collector.port(), "/v1/traces"), "--trace-sampling-ratio", "0"});
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_NE((*server)->grpc_port(), 0);
  auto stub = inference::GRPCInferenceService::NewStub(GrpcChannel((*server)->grpc_port()));
  const std::string trace_id = "0af7651916cd43dd8448eb211c80319c";
  const std::string parent_span = "b7ad6b7169203331";

  inference::ModelInferRequest request;
  request.set_model_name("identity");
  request.set_id("grpc-1");
  AddRawInput<float>(&request, "x", "FP32", {1, 4}, {1, 2, 3, 4});
  auto context = Context();
  context->AddMetadata("traceparent", "00-" + trace_id + "-" + parent_span + "-01");
  inference::ModelInferResponse response;
  const grpc::Status status = stub->ModelInfer(context.get(), request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  // The server's span comes back in the initial metadata, as over HTTP.
  const auto& metadata = context->GetServerInitialMetadata();
  auto it = metadata.find("traceparent");
  ASSERT_NE(it, metadata.end());
  const std::string back(it->second.data(), it->second.size());
  ASSERT_EQ(back.size(), 55u) << back;
  EXPECT_EQ(back.substr(0, 36), "00-" + trace_id + "-");
  EXPECT_EQ(back.substr(52), "-01");
  const std::string span_id = back.substr(36, 16);

  // A failing request (unknown model) counts too, under the unresolved series.
  inference::ModelInferRequest bad = request;
  bad.set_model_name("nosuchmodel");
  inference::ModelInferResponse ignored;
  EXPECT_EQ(stub->ModelInfer(Context().get(), bad, &ignored).error_code(), grpc::StatusCode::NOT_FOUND);

  SpanSet spans;
  ASSERT_TRUE(WaitForSpans(collector, spans, [&](const SpanSet& s) {
    return s.Operation("infer", trace_id).size() == 1 && s.Operation("queue", trace_id).size() == 1;
  })) << spans.all().size() << " spans";
  const auto& span = *spans.Operation("infer", trace_id)[0];
  EXPECT_EQ(span["spanId"].GetString(), span_id);
  EXPECT_EQ(span["parentSpanId"].GetString(), parent_span);
  EXPECT_EQ(span["kind"].GetInt(), 2);
  EXPECT_EQ(StringAttribute(span, "rpc.system"), "grpc");
  EXPECT_EQ(IntAttribute(span, "rpc.grpc.status_code"), 0);
  EXPECT_EQ(StringAttribute(span, "ai.model.name"), "identity");
  EXPECT_EQ(StringAttribute(span, "ai.request.id"), "grpc-1");
  EXPECT_EQ((*spans.Operation("queue", trace_id)[0])["parentSpanId"].GetString(), span_id);

  // Request metrics, recorded once the answer is sent.
  const std::vector<std::string> grpc = {R"(model="identity")", R"(version="1")", R"(protocol="grpc")",
                                         R"(outcome="success")"};
  std::string m;
  EXPECT_TRUE(WaitFor([&] {
    m = Scrape((*server)->metrics_port());
    return MetricValue(m, "ortserve_request_total", grpc) == 1 &&
           MetricValue(m, "ortserve_request_total",
                       {R"(model="")", R"(protocol="grpc")", R"(outcome="client_error")"}) == 1;
  })) << m;
  EXPECT_EQ(MetricValue(m, "ortserve_request_total",
                        {R"(model="identity")", R"(protocol="http")", R"(outcome="success")"}), 0);
  EXPECT_EQ(MetricValue(m, "ortserve_request_duration_seconds_count",
                        {R"(model="identity")", R"(version="1")", R"(protocol="grpc")"}), 1);
  EXPECT_GT(MetricValue(m, "ortserve_response_bytes_sum",
                        {R"(model="identity")", R"(version="1")", R"(protocol="grpc")"}), 16);
}

TEST(ObservabilityTest, GrpcStreamMessagesAreEachCountedAsRequests) {
  TempDir repo;
  MakeRepository(repo.path());
  auto server = ServerProcess::Start({"--model-repository", repo.path(), "--grpc-port", "0", "--metrics-port", "0"});
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = inference::GRPCInferenceService::NewStub(GrpcChannel((*server)->grpc_port()));
  auto context = Context();
  auto stream = stub->ModelStreamInfer(context.get());
  inference::ModelInferRequest request;
  request.set_model_name("identity");
  AddRawInput<float>(&request, "x", "FP32", {1, 4}, {1, 2, 3, 4});
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(stream->Write(request));
  stream->WritesDone();
  inference::ModelStreamInferResponse response;
  int answers = 0;
  while (stream->Read(&response)) {
    EXPECT_TRUE(response.error_message().empty()) << response.error_message();
    ++answers;
  }
  ASSERT_TRUE(stream->Finish().ok());
  EXPECT_EQ(answers, 3);
  const std::vector<std::string> grpc = {R"(model="identity")", R"(protocol="grpc")", R"(outcome="success")"};
  std::string m;
  EXPECT_TRUE(WaitFor([&] {
    m = Scrape((*server)->metrics_port());
    return MetricValue(m, "ortserve_request_total", grpc) == 3;
  })) << m;
}

// gperftools' legacy CPU profile: a header of five machine words, 0, 3 (the
// header's length), 0 (format version), the sampling period in microseconds
// and 0 (padding).
TEST(ObservabilityTest, CpuProfileEndpointReturnsAPprofProfileOnlyWhenEnabled) {
  TempDir repo;
  MakeRepository(repo.path());
  {
    auto server = ServerProcess::Start({"--model-repository", repo.path()});
    ASSERT_TRUE(server.ok()) << server.status();
    HttpClient client((*server)->http_port());
    EXPECT_EQ(client.Get("/v2/admin/profile/cpu?seconds=1").status, 403u);
    EXPECT_EQ(client.Get("/v2/admin/profile/heap").status, 403u);
  }
  auto server = ServerProcess::Start({"--model-repository", repo.path(), "--enable-profiling"});
  ASSERT_TRUE(server.ok()) << server.status();
  HttpClient client((*server)->http_port());
  // gperftools fixes the rate at start-up (CPUPROFILE_FREQUENCY, default
  // 100 Hz): another rate is refused rather than silently ignored.
  auto other_rate = client.Get("/v2/admin/profile/cpu?seconds=1&hz=200");
  EXPECT_EQ(other_rate.status, 400u);
  EXPECT_NE(other_rate.body.find("CPUPROFILE_FREQUENCY"), std::string::npos) << other_rate.body;
  auto response = client.Get("/v2/admin/profile/cpu?seconds=1&hz=100");
  ASSERT_EQ(response.status, 200u) << response.body;
  ASSERT_GE(response.body.size(), 5 * sizeof(uintptr_t));
  uintptr_t header[5];
  std::memcpy(header, response.body.data(), sizeof(header));
  EXPECT_EQ(header[0], 0u);
  EXPECT_EQ(header[1], 3u);
  EXPECT_EQ(header[2], 0u);
  EXPECT_EQ(header[3], 1000000u / 100);  // 100 Hz: a sample every 10000 us.
  EXPECT_EQ(header[4], 0u);
  // A bad parameter is refused, naming it.
  auto bad = client.Get("/v2/admin/profile/cpu?seconds=soon");
  EXPECT_EQ(bad.status, 400u);
  EXPECT_NE(bad.body.find("seconds"), std::string::npos) << bad.body;
}

// tcmalloc's heap sample, text form: "heap profile: <in-use objects>:
// <in-use bytes> [<allocated objects>: <allocated bytes>] @ heap_v2/<period>",
// one line per sampled stack, then the process maps.
TEST(ObservabilityTest, HeapProfileEndpointReturnsTcmallocsHeapSample) {
  TempDir repo;
  MakeRepository(repo.path());
  auto server = ServerProcess::Start({"--model-repository", repo.path(), "--enable-profiling"});
  ASSERT_TRUE(server.ok()) << server.status();
  HttpClient client((*server)->http_port());
  ASSERT_EQ(client.Post("/v2/models/identity/infer", kGoodBody).status, 200u);
  auto response = client.Get("/v2/admin/profile/heap");
#if ORTSERVE_TEST_TCMALLOC
  ASSERT_EQ(response.status, 200u) << response.body;
  ASSERT_EQ(response.body.rfind("heap profile:", 0), 0u) << response.body.substr(0, 200);
  const std::string header = response.body.substr(0, response.body.find('\n'));
  EXPECT_NE(header.find("@ heap_v2/524288"), std::string::npos) << header;  // --enable-profiling turns sampling on.
  EXPECT_TRUE(std::regex_search(header, std::regex(R"(^heap profile:\s*\d+:\s*\d+ \[\s*\d+:\s*\d+\] @ heap_v2/)")))
      << header;
  EXPECT_NE(response.body.find("MAPPED_LIBRARIES:"), std::string::npos);
  EXPECT_EQ(client.Post("/v2/admin/profile/heap", "").status, 405u);
#else
  EXPECT_EQ(response.status, 501u) << response.body;
  EXPECT_NE(response.body.find("tcmalloc"), std::string::npos) << response.body;
#endif
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
  // Series that appear only once their feature is used (a shadow configured,
  // a lazy model loaded, an SAE verdict given, a generative model loaded)
  // must at least be documented.
  std::ifstream doc_file(SourceDir() + "/docs/metrics.md");
  const std::string documented((std::istreambuf_iterator<char>(doc_file)), std::istreambuf_iterator<char>());
  const std::regex on_demand(R"(^ortserve_(shadow_|model_lazy_events|sae_verdicts|generation_))");
  for (const auto& name : names) {
    if (std::regex_search(name, on_demand)) {
      std::string family = std::regex_replace(name, std::regex("_(bucket|sum|count)$"), "");
      EXPECT_NE(documented.find("`" + family + "`"), std::string::npos)
          << "the dashboard queries " << name << ", which docs/metrics.md does not document";
      continue;
    }
    EXPECT_TRUE(metrics.find("\n" + name + "{") != std::string::npos ||
                metrics.find("\n" + name + " ") != std::string::npos)
        << "the dashboard queries " << name << ", which /metrics does not export";
  }
}

}  // namespace
}  // namespace ortserve::testing
