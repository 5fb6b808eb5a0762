// SPDX-License-Identifier: Apache-2.0
#include "observability/metrics.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace ortserve::observability {
namespace {

bool Has(const std::string& text, const std::string& line) { return text.find(line + "\n") != std::string::npos; }

TEST(ParseBucketsTest, AcceptsIncreasingNumbers) {
  auto buckets = ParseBuckets("--b", "0.001, 0.01,1,10");
  ASSERT_TRUE(buckets.ok());
  EXPECT_EQ(*buckets, (std::vector<double>{0.001, 0.01, 1, 10}));
}

TEST(ParseBucketsTest, RejectsNonNumbersAndDecreasingBoundsNamingTheFlag) {
  auto bad = ParseBuckets("--metrics-latency-buckets", "0.1,abc");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("--metrics-latency-buckets: 'abc'"), absl::string_view::npos);
  EXPECT_FALSE(ParseBuckets("--b", "1,1").ok());
  EXPECT_FALSE(ParseBuckets("--b", "2,1").ok());
  EXPECT_FALSE(ParseBuckets("--b", "").ok());
}

TEST(OutcomeTest, MapsStatusCodesAndHttpStatuses) {
  EXPECT_EQ(OutcomeFor(absl::StatusCode::kOk), Outcome::kSuccess);
  EXPECT_EQ(OutcomeFor(absl::StatusCode::kInvalidArgument), Outcome::kClientError);
  EXPECT_EQ(OutcomeFor(absl::StatusCode::kNotFound), Outcome::kClientError);
  EXPECT_EQ(OutcomeFor(absl::StatusCode::kUnavailable), Outcome::kRejected);
  EXPECT_EQ(OutcomeFor(absl::StatusCode::kDeadlineExceeded), Outcome::kTimeout);
  EXPECT_EQ(OutcomeFor(absl::StatusCode::kCancelled), Outcome::kCancelled);
  EXPECT_EQ(OutcomeFor(absl::StatusCode::kInternal), Outcome::kServerError);
  EXPECT_EQ(OutcomeForHttpStatus(200), Outcome::kSuccess);
  EXPECT_EQ(OutcomeForHttpStatus(404), Outcome::kClientError);
  EXPECT_EQ(OutcomeForHttpStatus(503), Outcome::kRejected);
  EXPECT_EQ(OutcomeForHttpStatus(504), Outcome::kTimeout);
  EXPECT_EQ(OutcomeForHttpStatus(500), Outcome::kServerError);
}

TEST(MetricsTest, CreateRejectsNonIncreasingBuckets) {
  MetricsOptions options;
  options.batch_size_buckets = {4, 2};
  EXPECT_FALSE(Metrics::Create(options).ok());
}

TEST(MetricsTest, ForVersionReturnsTheSameChildrenForTheSameVersion) {
  auto metrics = *Metrics::Create({});
  VersionMetrics* a = metrics->ForVersion("m", "1");
  EXPECT_EQ(a, metrics->ForVersion("m", "1"));
  EXPECT_NE(a, metrics->ForVersion("m", "2"));
  EXPECT_EQ(a->model(), "m");
  EXPECT_EQ(a->version(), "1");
}

TEST(MetricsTest, SerializesRecordedValuesIntoNamedSeries) {
  MetricsOptions options;
  options.latency_buckets = {0.01, 1};
  options.batch_size_buckets = {1, 4};
  options.process_metrics = false;
  auto metrics = *Metrics::Create(options);
  VersionMetrics* v = metrics->ForVersion("m", "1");
  v->RecordRequest(Protocol::kHttp, Outcome::kSuccess, absl::Milliseconds(5), 100);
  v->RecordRequest(Protocol::kHttp, Outcome::kSuccess, absl::Milliseconds(500), 300);
  v->RecordRequest(Protocol::kGrpc, Outcome::kTimeout, absl::Seconds(2), 0);
  v->RecordQueue(absl::Milliseconds(2));
  v->RecordExecution(3, 2, absl::Microseconds(10), absl::Milliseconds(3), absl::Microseconds(5));
  v->RequestAdmitted();
  v->RequestAdmitted();
  v->RequestAnswered();
  v->BatchStarted();
  metrics->SetReady(true);
  metrics->SetModelStateSource([] { return std::vector<ModelStateSample>{{"m", "1", "READY"}}; });
  const std::string text = metrics->Serialize();
  EXPECT_TRUE(Has(text, R"(ortserve_request_total{model="m",outcome="success",protocol="http",version="1"} 2)")) << text;
  EXPECT_TRUE(Has(text, R"(ortserve_request_total{model="m",outcome="timeout",protocol="grpc",version="1"} 1)"));
  EXPECT_TRUE(Has(text, R"(ortserve_request_duration_seconds_bucket{model="m",protocol="http",version="1",le="0.01"} 1)"));
  EXPECT_TRUE(Has(text, R"(ortserve_request_duration_seconds_bucket{model="m",protocol="http",version="1",le="1"} 2)"));
  EXPECT_TRUE(Has(text, R"(ortserve_request_duration_seconds_bucket{model="m",protocol="grpc",version="1",le="+Inf"} 1)"));
  EXPECT_TRUE(Has(text, R"(ortserve_response_bytes_sum{model="m",protocol="http",version="1"} 400)"));
  // Failed requests have no response size.
  EXPECT_TRUE(Has(text, R"(ortserve_response_bytes_count{model="m",protocol="grpc",version="1"} 0)"));
  EXPECT_TRUE(Has(text, R"(ortserve_batch_size_bucket{model="m",version="1",le="1"} 0)"));
  EXPECT_TRUE(Has(text, R"(ortserve_batch_size_bucket{model="m",version="1",le="4"} 1)"));
  // Each request of the batch is charged the run.
  EXPECT_TRUE(Has(text, R"(ortserve_compute_infer_duration_seconds_count{model="m",version="1"} 2)"));
  EXPECT_TRUE(Has(text, R"(ortserve_execution_total{model="m",version="1"} 1)"));
  EXPECT_TRUE(Has(text, R"(ortserve_queue_duration_seconds_count{model="m",version="1"} 1)"));
  EXPECT_TRUE(Has(text, R"(ortserve_pending_requests{model="m",version="1"} 1)"));
  EXPECT_TRUE(Has(text, R"(ortserve_inflight_batches{model="m",version="1"} 1)"));
  EXPECT_TRUE(Has(text, R"(ortserve_model_state{model="m",state="READY",version="1"} 1)"));
  EXPECT_TRUE(Has(text, R"(ortserve_model_state{model="m",state="LOADING",version="1"} 0)"));
  EXPECT_TRUE(Has(text, "ortserve_server_ready 1"));
  EXPECT_TRUE(Has(text, "# TYPE ortserve_tokenization_duration_seconds histogram"));
  EXPECT_EQ(text.find("process_resident_memory_bytes"), std::string::npos);
}

TEST(MetricsTest, TritonNamesCountWholeMicrosecondsOnlyWhenAskedFor) {
  MetricsOptions options;
  options.process_metrics = false;
  options.triton_metrics = true;
  auto metrics = *Metrics::Create(options);
  VersionMetrics* v = metrics->ForVersion("m", "1");
  v->RequestAdmitted();
  v->RequestAdmitted();
  v->RecordQueue(absl::Microseconds(250));
  v->RecordQueue(absl::Nanoseconds(100750));  // 100 whole microseconds.
  v->RecordExecution(5, 2, absl::Microseconds(10), absl::Milliseconds(3), absl::Microseconds(4));
  v->RequestAnswered();
  v->RecordRequest(Protocol::kHttp, Outcome::kSuccess, absl::Milliseconds(4), 100);
  v->RecordRequest(Protocol::kGrpc, Outcome::kRejected, absl::Microseconds(7), 0);
  // Requests that name no model are not Triton's to count.
  metrics->Unresolved()->RecordRequest(Protocol::kHttp, Outcome::kClientError, absl::Milliseconds(1), 0);
  const std::string text = metrics->Serialize();
  EXPECT_TRUE(Has(text, R"(nv_inference_request_success{model="m",version="1"} 1)")) << text;
  EXPECT_TRUE(Has(text, R"(nv_inference_request_failure{model="m",version="1"} 1)"));
  EXPECT_TRUE(Has(text, R"(nv_inference_count{model="m",version="1"} 5)"));
  EXPECT_TRUE(Has(text, R"(nv_inference_exec_count{model="m",version="1"} 1)"));
  EXPECT_TRUE(Has(text, R"(nv_inference_request_duration_us{model="m",version="1"} 4007)"));
  EXPECT_TRUE(Has(text, R"(nv_inference_queue_duration_us{model="m",version="1"} 350)"));
  // Each of the batch's two requests is charged its phases.
  EXPECT_TRUE(Has(text, R"(nv_inference_compute_input_duration_us{model="m",version="1"} 20)"));
  EXPECT_TRUE(Has(text, R"(nv_inference_compute_infer_duration_us{model="m",version="1"} 6000)"));
  EXPECT_TRUE(Has(text, R"(nv_inference_compute_output_duration_us{model="m",version="1"} 8)"));
  EXPECT_TRUE(Has(text, R"(nv_inference_pending_request_count{model="m",version="1"} 1)"));
  EXPECT_TRUE(Has(text, "# TYPE nv_inference_count counter"));
  EXPECT_EQ(text.find(R"(nv_inference_request_failure{model="")"), std::string::npos);

  // Off (the default): no such family at all.
  MetricsOptions plain;
  plain.process_metrics = false;
  auto without = *Metrics::Create(plain);
  without->ForVersion("m", "1")->RecordRequest(Protocol::kHttp, Outcome::kSuccess, absl::Milliseconds(1), 1);
  EXPECT_EQ(without->Serialize().find("nv_"), std::string::npos);
}

TEST(MetricsTest, ProcessMetricsComeFromProcSelf) {
  auto metrics = *Metrics::Create({});
  const std::string text = metrics->Serialize();
  for (const char* name : {"process_resident_memory_bytes ", "process_cpu_seconds_total ", "process_open_fds ",
                           "process_threads ", "process_start_time_seconds "}) {
    EXPECT_NE(text.find(std::string("\n") + name), std::string::npos) << name;
  }
}

TEST(MetricsTest, ConcurrentRecordingLosesNoCounts) {
  for (int threads : {1, 4, 8}) {
    auto metrics = *Metrics::Create({});
    VersionMetrics* v = metrics->ForVersion("m", "1");
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([v] {
        for (int i = 0; i < 1000; ++i) {
          v->RequestAdmitted();
          v->RecordRequest(Protocol::kHttp, Outcome::kSuccess, absl::Milliseconds(1), 10);
          v->RequestAnswered();
        }
      });
    }
    for (auto& t : pool) t.join();
    const std::string text = metrics->Serialize();
    EXPECT_TRUE(Has(text, "ortserve_request_total{model=\"m\",outcome=\"success\",protocol=\"http\",version=\"1\"} " +
                              std::to_string(threads * 1000)));
    EXPECT_TRUE(Has(text, R"(ortserve_pending_requests{model="m",version="1"} 0)"));
  }
}

TEST(MetricsServerTest, ServesTheExpositionOnAnyFreePort) {
  auto metrics = *Metrics::Create({});
  auto server = MetricsServer::Start("127.0.0.1", 0, metrics.get());
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_NE((*server)->port(), 0);
  // A second server on the same port cannot bind.
  EXPECT_FALSE(MetricsServer::Start("127.0.0.1", (*server)->port(), metrics.get()).ok());
}

}  // namespace
}  // namespace ortserve::observability
