// SPDX-License-Identifier: Apache-2.0
#include "observability/tracing.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "simdjson.h"

#include "observability/metrics.h"

namespace ortserve::observability {
namespace {

TEST(TraceparentTest, ParsesAndFormatsVersionZero) {
  auto context = ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  ASSERT_TRUE(context.has_value());
  EXPECT_EQ(context->TraceIdHex(), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(context->SpanIdHex(), "00f067aa0ba902b7");
  EXPECT_TRUE(context->sampled);
  EXPECT_EQ(FormatTraceparent(*context), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  auto unsampled = ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
  ASSERT_TRUE(unsampled.has_value());
  EXPECT_FALSE(unsampled->sampled);
}

TEST(TraceparentTest, RejectsMalformedValues) {
  for (const char* bad : {"", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
                          "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  // Zero trace id.
                          "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  // Zero span id.
                          "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  // Upper case.
                          "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  // Forbidden version.
                          "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
                          "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}) {
    EXPECT_FALSE(ParseTraceparent(bad).has_value()) << bad;
  }
  // A later version may append fields.
  EXPECT_TRUE(ParseTraceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-abc").has_value());
}

TEST(TracerTest, ChildSpansKeepTheTraceAndParentSamplingWins) {
  auto tracer = *Tracer::Create({.sampling_ratio = 0.0});
  auto parent = ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  TraceContext child = tracer->StartSpan(parent);
  EXPECT_EQ(child.TraceIdHex(), parent->TraceIdHex());
  EXPECT_NE(child.SpanIdHex(), parent->SpanIdHex());
  EXPECT_TRUE(child.sampled);
  EXPECT_FALSE(tracer->StartSpan(std::nullopt).sampled);  // Ratio 0.
  auto always = *Tracer::Create({.sampling_ratio = 1.0});
  TraceContext a = always->StartSpan(std::nullopt), b = always->StartSpan(std::nullopt);
  EXPECT_TRUE(a.sampled);
  EXPECT_NE(a.TraceIdHex(), b.TraceIdHex());
}

TEST(TracerTest, CreateRejectsBadRatioAndEndpoint) {
  EXPECT_FALSE(Tracer::Create({.sampling_ratio = 1.5}).ok());
  EXPECT_FALSE(Tracer::Create({.endpoint = "https://collector:4318/v1/traces"}).ok());
  EXPECT_TRUE(Tracer::Create({.endpoint = "http://collector:4318"}).ok());
}

TEST(TracerTest, FullBufferDropsAndCountsInsteadOfBlocking) {
  auto metrics = *Metrics::Create({});
  Tracer::Options options;
  options.max_buffered_spans = 2;
  options.max_batch_spans = 100;             // The exporter waits for 100 spans...
  options.flush_interval = absl::Hours(1);   // ...or an hour: the buffer stays full.
  options.metrics = metrics.get();
  auto tracer = *Tracer::Create(options);
  for (int i = 0; i < 5; ++i) tracer->Export(Span{.name = "s"});
  EXPECT_EQ(tracer->dropped(), 3u);
  EXPECT_NE(metrics->Serialize().find("ortserve_trace_spans_total{result=\"dropped\"} 3\n"), std::string::npos);
}

TEST(TracerTest, SpansFromManyThreadsAreEachBufferedOnceUpToTheBound) {
  Tracer::Options options;
  options.max_buffered_spans = 1000;
  options.max_batch_spans = 100000;          // The exporter never takes a batch...
  options.flush_interval = absl::Hours(1);   // ...so every span stays buffered.
  auto tracer = *Tracer::Create(options);
  constexpr int kThreads = 8, kPerThread = 200;  // 1600 spans for 1000 places.
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kPerThread; ++i) tracer->Export(Span{.name = "s"});
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(tracer->dropped(), static_cast<uint64_t>(kThreads * kPerThread) - 1000u);
}

TEST(TracerTest, DestructionFlushesEveryBufferedSpan) {
  auto metrics = *Metrics::Create({});
  Tracer::Options options;
  options.max_batch_spans = 7;
  options.flush_interval = absl::Hours(1);
  options.metrics = metrics.get();
  auto tracer = *Tracer::Create(options);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 25; ++i) tracer->Export(Span{.name = "s"});
    });
  }
  for (auto& t : threads) t.join();
  tracer.reset();  // No endpoint: each batch is counted as not sent.
  EXPECT_NE(metrics->Serialize().find("ortserve_trace_spans_total{result=\"dropped\"} 100\n"), std::string::npos)
      << metrics->Serialize();
}

TEST(TracerTest, ChildSpanIsTheRequestsChildWithModelAttributes) {
  auto tracer = *Tracer::Create({.sampling_ratio = 1.0});
  const TraceContext request = tracer->StartSpan(std::nullopt);
  RequestTrace trace;
  trace.trace_id = request.trace_id;
  trace.span_id = request.span_id;
  trace.tracer = tracer.get();
  ASSERT_TRUE(trace.sampled());
  Span span = ChildSpan(trace, "queue m", "queue", "m", "3", absl::FromUnixSeconds(5));
  EXPECT_EQ(span.context.TraceIdHex(), request.TraceIdHex());
  EXPECT_NE(span.context.SpanIdHex(), request.SpanIdHex());
  EXPECT_TRUE(span.context.sampled);
  ASSERT_TRUE(span.parent_span_id.has_value());
  EXPECT_EQ(*span.parent_span_id, request.span_id);
  EXPECT_EQ(span.kind, Span::Kind::kInternal);
  EXPECT_EQ(span.start, absl::FromUnixSeconds(5));
  ASSERT_EQ(span.attributes.size(), 3u);
  EXPECT_EQ(span.attributes[0].first, "ai.model.name");
  EXPECT_EQ(std::get<std::string>(span.attributes[0].second), "m");
  EXPECT_EQ(span.attributes[1].first, "ai.model.version");
  EXPECT_EQ(std::get<std::string>(span.attributes[1].second), "3");
  EXPECT_EQ(span.attributes[2].first, "ai.operation");
  EXPECT_EQ(std::get<std::string>(span.attributes[2].second), "queue");
  EXPECT_FALSE(RequestTrace{}.sampled());
}

TEST(TracerTest, NewSampledTraceIsSampledWhateverTheRatio) {
  auto tracer = *Tracer::Create({.sampling_ratio = 0.0});
  const TraceContext a = tracer->NewSampledTrace(), b = tracer->NewSampledTrace();
  EXPECT_TRUE(a.sampled);
  EXPECT_NE(a.TraceIdHex(), b.TraceIdHex());
  EXPECT_NE(a.TraceIdHex(), std::string(32, '0'));
}

TEST(OtlpJsonTest, EncodesSpansWithIdsTimesAttributesAndLinks) {
  Span span;
  span.context = *ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  span.parent_span_id = ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-1111111111111111-01")->span_id;
  span.name = "batch \"x\"";
  span.start = absl::FromUnixNanos(1000);
  span.end = absl::FromUnixNanos(2500);
  span.attributes = {{"ai.model.name", std::string("m")}, {"llm.request.input_tokens", int64_t{42}}};
  span.links = {*ParseTraceparent("00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-2222222222222222-01")};
  span.error = true;
  span.status_message = "boom";
  const std::string json = EncodeOtlpJson({span}, "svc");
  rapidjson::Document doc;
  ASSERT_FALSE(doc.Parse(json.c_str()).HasParseError()) << json;
  const auto& rs = doc["resourceSpans"][0];
  EXPECT_STREQ(rs["resource"]["attributes"][0]["value"]["stringValue"].GetString(), "svc");
  const auto& s = rs["scopeSpans"][0]["spans"][0];
  EXPECT_STREQ(s["traceId"].GetString(), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_STREQ(s["spanId"].GetString(), "00f067aa0ba902b7");
  EXPECT_STREQ(s["parentSpanId"].GetString(), "1111111111111111");
  EXPECT_STREQ(s["name"].GetString(), "batch \"x\"");
  EXPECT_STREQ(s["startTimeUnixNano"].GetString(), "1000");
  EXPECT_STREQ(s["endTimeUnixNano"].GetString(), "2500");
  EXPECT_STREQ(s["attributes"][0]["value"]["stringValue"].GetString(), "m");
  EXPECT_STREQ(s["attributes"][1]["value"]["intValue"].GetString(), "42");
  EXPECT_STREQ(s["links"][0]["traceId"].GetString(), "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
  EXPECT_EQ(s["status"]["code"].GetInt(), 2);
  EXPECT_STREQ(s["status"]["message"].GetString(), "boom");
}

TEST(OtlpJsonTest, SpansAreValidJsonAndUtf8WhateverTheirStringsHold) {
  Span span;
  span.context = *ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  span.name = "infer \xff\x01";
  span.attributes = {{"ai.request.id\xc0\xaf", std::string("r\x1f\xed\xbf\xbf")}};
  span.error = true;
  span.status_message = "cut \xe2\x82\n";
  const std::string json = EncodeOtlpJson({span}, "svc\xfe");
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  ASSERT_EQ(parser.parse(json).get(root), simdjson::SUCCESS) << json;  // Valid JSON and UTF-8.
  auto text = [](simdjson::simdjson_result<simdjson::dom::element> e) {
    std::string_view s;
    return e.get_string().get(s) == simdjson::SUCCESS ? std::string(s) : std::string("<not a string>");
  };
  const auto resource = root["resourceSpans"].at(0);
  EXPECT_EQ(text(resource["resource"]["attributes"].at(0)["value"]["stringValue"]), "svc\xEF\xBF\xBD");
  const auto s = resource["scopeSpans"].at(0)["spans"].at(0);
  EXPECT_EQ(text(s["name"]), "infer \xEF\xBF\xBD\x01");
  EXPECT_EQ(text(s["attributes"].at(0)["key"]), "ai.request.id\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(text(s["attributes"].at(0)["value"]["stringValue"]), "r\x1f\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(text(s["status"]["message"]), "cut \xEF\xBF\xBD\xEF\xBF\xBD\n");
}

}  // namespace
}  // namespace ortserve::observability
