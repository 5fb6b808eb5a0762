// SPDX-License-Identifier: Apache-2.0
// Overload, end to end: the real binary, a model with a bounded capacity, and
// ortserve-loadgen sending five times what the server can take for 20 s.
// What a user of an overloaded server must see: the excess refused at once
// (503/429 with Retry-After, well under a millisecond), the requests it does
// admit answered as fast as when it was idle (admission bounds the queue, so
// admitted work does not wait behind the excess), and memory that stays put.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "integration/server_harness.h"

namespace ortserve::testing {
namespace {

// Resident memory of `pid` in KiB (VmRSS), or -1.
long RssKib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

// Runs ortserve-loadgen with `args` and returns its JSON report.
rapidjson::Document Loadgen(const std::string& dir, const std::string& args) {
  const std::string report = dir + "/loadgen.json";
  const std::string command = BinaryDir() + "/tools/loadgen/ortserve-loadgen -q --json-out " + report + " " + args +
                              " > " + dir + "/loadgen.log 2>&1";
  EXPECT_EQ(std::system(command.c_str()), 0) << command;
  std::ifstream in(report);
  std::stringstream text;
  text << in.rdbuf();
  return Json(text.str());
}

double P99(const rapidjson::Value& doc, const char* key) { return doc[key]["p99"].GetDouble(); }

TEST(OverloadTest, FiveTimesCapacityIsRefusedFastWhileAdmittedRequestsKeepTheirLatency) {
  TempDir repo;
  // y = x + 1 whose lone request waits 4 ms in the batcher for a batch of 8
  // that never forms: capacity (one request in flight, below) is set by
  // time, not by a saturated core, so that on a 2-core machine the numbers
  // measure the server's admission and not the OS scheduler sharing one
  // core between a model run, the event loop and the load generator.
  // Saturation of a compute-bound model is measured in bench/, not here.
  ASSERT_TRUE(WriteAddModels({{repo.path() + "/held/1/model.onnx", 1.0f}}).ok());
  std::ofstream(repo.path() + "/held/config.pbtxt")
      << "max_batch_size: 8\n"
         "input { name: \"x\" data_type: TYPE_FP32 dims: [2] }\n"
         "output { name: \"y\" data_type: TYPE_FP32 dims: [2] }\n"
         "dynamic_batching { max_queue_delay_microseconds: 4000 preferred_batch_size: [8] wait_when_idle: true }\n";
  // One request of the model at a time; the rest of the budget is the
  // server's default.
  auto server = ServerProcess::Start({"--model-repository", repo.path(), "--http-threads", "1",
                                      "--max-model-inflight", "1", "--intra-op-thread-count", "1",
                                      "--ort-allow-spinning", "false", "--metrics-port", "0"});
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string port = std::to_string((*server)->http_port());
  const std::string common = "--protocol http-binary --port " + port + " -m held --threads 1 ";

  // Unloaded: one request at a time.
  auto idle = Loadgen(repo.path(), common + "--mode closed -c 1 --duration 4 --warmup 1");
  ASSERT_TRUE(idle.HasMember("latency_us"));
  ASSERT_EQ(idle["requests_failed"].GetInt64(), 0);
  const double idle_p99 = P99(idle, "latency_us");
  const double capacity = idle["throughput_rps"].GetDouble();
  ASSERT_GT(capacity, 10) << "the server is too slow on this machine to measure anything";
  const long rss_before = RssKib((*server)->pid());

  // Five times that for 20 s, open loop (arrivals do not wait for answers).
  std::atomic<bool> running{true};
  std::atomic<long> rss_peak{rss_before};
  std::thread sampler([&] {
    while (running.load()) {
      rss_peak = std::max(rss_peak.load(), RssKib((*server)->pid()));
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  const double rate = 5 * capacity;
  auto overload = Loadgen(repo.path(), common + "--mode open --rate " + std::to_string(rate) +
                                           " --max-outstanding 64 --duration 20 --warmup 2 --drain 5");
  running = false;
  sampler.join();
  ASSERT_TRUE(overload.HasMember("errors")) << "no loadgen report";

  // Every failure is a refusal: nothing timed out, reset or went unanswered.
  int64_t refused = 0;
  for (const auto& error : overload["errors"].GetObject()) {
    const std::string kind = error.name.GetString();
    EXPECT_TRUE(kind == "http_503" || kind == "http_429") << kind << ": " << error.value.GetInt64();
    refused += error.value.GetInt64();
  }
  const int64_t admitted = overload["requests_ok"].GetInt64();
  EXPECT_GT(refused, admitted) << "at 5x capacity most requests must be refused";
  EXPECT_GT(admitted, 0.5 * capacity * 20) << "the server must keep working at capacity while refusing the rest";

  ASSERT_TRUE(overload.HasMember("refused_latency_us"));
  const double refused_p99 = P99(overload, "refused_latency_us");
  const double admitted_p99 = P99(overload, "latency_us");
  // A refusal must not wait for the model: an admitted request waits 4 ms
  // in the batcher, so a refusal that queued would take that long. Relative
  // to the same run, so that a busy machine (ctest -j2 beside other
  // integration tests) does not fail it: an absolute bound of 1 ms failed
  // at 1.06 ms with two other builds running.
  const double admitted_p50 = overload["latency_us"]["p50"].GetDouble();
  EXPECT_LT(refused_p99, 0.5 * admitted_p50)
      << "refusals must answer without waiting for the model: refused p99 " << refused_p99
      << " us, admitted p50 " << admitted_p50 << " us";
  EXPECT_LE(admitted_p99, 2 * idle_p99) << "admitted p99 " << admitted_p99 << " us, idle p99 " << idle_p99 << " us";
  // Memory: the excess holds no queue; a little slack for allocator caches.
  EXPECT_LT(rss_peak.load() - rss_before, 64 * 1024) << "RSS grew from " << rss_before << " to " << rss_peak.load()
                                                      << " KiB";

  // The refusals are counted by reason.
  HttpClient metrics((*server)->metrics_port());
  EXPECT_GE(MetricValue(metrics.Get("/metrics").body, "ortserve_admission_refused_total",
                        {"reason=\"model_requests\""}),
            static_cast<double>(refused));
  // And the server is idle and healthy again right after.
  HttpClient client((*server)->http_port());
  EXPECT_EQ(client.Get("/v2/health/ready").status, 200u);
  std::printf("overload: capacity %.0f/s, offered %.0f/s, admitted %lld, refused %lld; p99 idle %.0f us, "
              "admitted %.0f us, refused %.0f us; RSS %ld -> peak %ld KiB\n",
              capacity, rate, static_cast<long long>(admitted), static_cast<long long>(refused), idle_p99,
              admitted_p99, refused_p99, rss_before, rss_peak.load());
}

}  // namespace
}  // namespace ortserve::testing
