// SPDX-License-Identifier: Apache-2.0
// Tracing: W3C trace context (the `traceparent` header), spans, and an OTLP
// exporter (OTLP/HTTP, JSON encoding) that ships finished spans from a
// background thread through a bounded buffer.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/infer_request.h"
#include "observability/trace_settings.h"

namespace ortserve::observability {

class Metrics;

// A position in a trace: W3C trace-id, span-id and the sampled flag.
struct TraceContext {
  std::array<uint8_t, 16> trace_id{};
  std::array<uint8_t, 8> span_id{};
  bool sampled = false;

  std::string TraceIdHex() const;
  std::string SpanIdHex() const;
};

// Parses a W3C `traceparent` value ("00-<32 hex>-<16 hex>-<2 hex>"). Returns
// nullopt for anything malformed, an all-zero id, or version ff (the spec says
// to then start a new trace). Later versions are read by their first four fields.
std::optional<TraceContext> ParseTraceparent(std::string_view header);
std::string FormatTraceparent(const TraceContext& context);

// A finished span, ready to export.
struct Span {
  enum class Kind {
    kInternal = 1,  // Work inside ortserve (queue, batch, tokenize).
    kServer = 2,    // A request ortserve serves.
    kClient = 3,    // A call ortserve makes to another server (a remote model).
  };
  using Value = std::variant<std::string, int64_t>;

  TraceContext context;
  std::optional<std::array<uint8_t, 8>> parent_span_id;
  std::string name;
  Kind kind = Kind::kInternal;
  absl::Time start;
  absl::Time end;
  std::vector<std::pair<std::string, Value>> attributes;
  std::vector<TraceContext> links;  // E.g. a batch span links the request spans it served.
  bool error = false;
  std::string status_message;
};

// Renders spans as an OTLP ExportTraceServiceRequest in JSON (ids in hex,
// times as decimal strings of Unix nanoseconds). Always valid JSON and UTF-8:
// strings are escaped by core/json_writer.h (invalid bytes become U+FFFD,
// control characters are escaped). Pure; thread-safe.
std::string EncodeOtlpJson(const std::vector<Span>& spans, std::string_view service_name);

// Starts traces and exports spans. Thread-safe. Export never blocks: when the
// buffer is full the span is dropped and counted. Export takes no global
// lock: spans go to one of several buffers (a thread keeps to one), which the
// exporter thread drains, so request threads and scheduler runners that
// record spans at once rarely meet on a lock.
class Tracer {
 public:
  struct Options {
    // Collector URL, e.g. "http://127.0.0.1:4318/v1/traces" (plain HTTP).
    // Empty: spans are sampled and counted but not sent.
    std::string endpoint;
    double sampling_ratio = 0.0;   // For new root traces; a parent's flag wins.
    size_t max_buffered_spans = 4096;
    size_t max_batch_spans = 512;
    absl::Duration flush_interval = absl::Seconds(1);
    absl::Duration export_timeout = absl::Seconds(5);
    std::string service_name = "ortserve";
    Metrics* metrics = nullptr;  // Not owned; counts exported and dropped spans.
  };
  // Errors: InvalidArgument for a ratio outside [0, 1] or a bad endpoint URL.
  static absl::StatusOr<std::unique_ptr<Tracer>> Create(Options options);
  // Exports what is buffered (bounded by export_timeout), then joins.
  ~Tracer();

  // The context of a new server span: a child of `parent` when given (same
  // trace, parent's sampled flag), else a new trace sampled by the ratio.
  TraceContext StartSpan(const std::optional<TraceContext>& parent);
  // Whether a new root trace of `model` is sampled, by the trace settings
  // (for a request whose model became known after StartSpan).
  bool SampleRoot(std::string_view model);
  // Triton's trace settings (which new root traces are sampled).
  TraceSettings& settings() { return settings_; }

  // A new span id in `trace`'s trace (for child spans).
  TraceContext ChildOf(const TraceContext& trace);
  // A new sampled trace, whatever the ratio: for a span that stands for work
  // done for sampled requests (a batch run), which links to their spans.
  TraceContext NewSampledTrace();

  // Queues a finished sampled span for export.
  void Export(Span span);

  uint64_t dropped() const;
  uint64_t exported() const;

 private:
  explicit Tracer(Options options);
  void Run();
  bool Post(const std::string& body);
  // Moves up to `max` buffered spans into `out`; returns how many.
  size_t Drain(std::vector<Span>& out, size_t max);
  void CountDropped(uint64_t n);

  static constexpr size_t kShards = 16;
  struct alignas(64) Shard {
    absl::Mutex mu;
    std::deque<Span> spans ABSL_GUARDED_BY(mu);
  };

  const Options options_;
  TraceSettings settings_;
  std::string host_, port_, path_;
  std::array<Shard, kShards> shards_;
  std::atomic<size_t> buffered_{0};  // Spans in all shards (reserved before pushing).
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> exported_{0};
  // Only for the exporter's wait: Export touches it when the buffered count
  // reaches a batch, and the destructor when stopping.
  absl::Mutex wake_mu_;
  std::thread thread_;
};

// A child span of the sampled request at `trace` (its parent is the
// request's server span), with the attributes every ortserve span carries:
// ai.model.name, ai.model.version and ai.operation. The caller sets `end`
// and exports it with trace.tracer->Export.
Span ChildSpan(const RequestTrace& trace, std::string name, std::string_view operation,
               std::string_view model, std::string_view version, absl::Time start);

}  // namespace ortserve::observability
