// SPDX-License-Identifier: Apache-2.0
#include "observability/tracing.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <random>

#include "core/json_writer.h"
#include "core/strings.h"
#include "observability/metrics.h"

namespace ortserve::observability {
namespace {

constexpr char kHex[] = "0123456789abcdef";

template <size_t N>
std::string Hex(const std::array<uint8_t, N>& bytes) {
  std::string out(2 * N, '0');
  for (size_t i = 0; i < N; ++i) {
    out[2 * i] = kHex[bytes[i] >> 4];
    out[2 * i + 1] = kHex[bytes[i] & 15];
  }
  return out;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;  // W3C trace context is lower-case only.
}

template <size_t N>
bool ParseHex(std::string_view s, std::array<uint8_t, N>* out) {
  if (s.size() != 2 * N) return false;
  bool nonzero = false;
  for (size_t i = 0; i < N; ++i) {
    const int hi = HexDigit(s[2 * i]), lo = HexDigit(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    (*out)[i] = static_cast<uint8_t>(hi * 16 + lo);
    nonzero |= (*out)[i] != 0;
  }
  return nonzero;
}

template <size_t N>
void RandomId(std::array<uint8_t, N>* id) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  do {
    for (size_t i = 0; i < N; i += 8) {
      const uint64_t r = rng();
      for (size_t j = 0; j < 8 && i + j < N; ++j) (*id)[i + j] = static_cast<uint8_t>(r >> (8 * j));
    }
  } while (std::all_of(id->begin(), id->end(), [](uint8_t b) { return b == 0; }));
}

double Uniform() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

void AppendAttribute(std::string& out, const std::string& key, const Span::Value& value) {
  out.append("{\"key\":");
  AppendJsonString(key, &out);
  out.append(",\"value\":{");
  if (const auto* s = std::get_if<std::string>(&value)) {
    out.append("\"stringValue\":");
    AppendJsonString(*s, &out);
  } else {
    // OTLP JSON encodes 64-bit integers as strings.
    out.append(StrCat("\"intValue\":\"", std::get<int64_t>(value), "\""));
  }
  out.append("}}");
}

}  // namespace

std::string TraceContext::TraceIdHex() const { return Hex(trace_id); }
std::string TraceContext::SpanIdHex() const { return Hex(span_id); }

std::optional<TraceContext> ParseTraceparent(std::string_view header) {
  while (!header.empty() && (header.front() == ' ' || header.front() == '\t')) header.remove_prefix(1);
  while (!header.empty() && (header.back() == ' ' || header.back() == '\t')) header.remove_suffix(1);
  // version(2) - trace-id(32) - parent-id(16) - flags(2)
  if (header.size() < 55 || header[2] != '-' || header[35] != '-' || header[52] != '-') return std::nullopt;
  std::array<uint8_t, 1> version{}, flags{};
  const std::string_view v = header.substr(0, 2);
  if (HexDigit(v[0]) < 0 || HexDigit(v[1]) < 0 || v == "ff") return std::nullopt;
  version[0] = static_cast<uint8_t>(HexDigit(v[0]) * 16 + HexDigit(v[1]));
  // Version 00 has exactly these fields; later versions may append "-...".
  if (version[0] == 0 && header.size() != 55) return std::nullopt;
  if (version[0] != 0 && header.size() > 55 && header[55] != '-') return std::nullopt;
  TraceContext context;
  if (!ParseHex(header.substr(3, 32), &context.trace_id)) return std::nullopt;
  if (!ParseHex(header.substr(36, 16), &context.span_id)) return std::nullopt;
  const std::string_view f = header.substr(53, 2);
  if (HexDigit(f[0]) < 0 || HexDigit(f[1]) < 0) return std::nullopt;
  flags[0] = static_cast<uint8_t>(HexDigit(f[0]) * 16 + HexDigit(f[1]));
  context.sampled = (flags[0] & 1) != 0;
  return context;
}

std::string FormatTraceparent(const TraceContext& context) {
  return StrCat("00-", context.TraceIdHex(), "-", context.SpanIdHex(), context.sampled ? "-01" : "-00");
}

std::string EncodeOtlpJson(const std::vector<Span>& spans, std::string_view service_name) {
  std::string out;
  out.reserve(512 * spans.size() + 256);
  out.append("{\"resourceSpans\":[{\"resource\":{\"attributes\":[");
  AppendAttribute(out, "service.name", std::string(service_name));
  out.append("]},\"scopeSpans\":[{\"scope\":{\"name\":\"ortserve\"},\"spans\":[");
  for (size_t i = 0; i < spans.size(); ++i) {
    const Span& span = spans[i];
    if (i > 0) out.push_back(',');
    out.append("{\"traceId\":\"").append(span.context.TraceIdHex());
    out.append("\",\"spanId\":\"").append(span.context.SpanIdHex()).append("\"");
    if (span.parent_span_id) out.append(",\"parentSpanId\":\"").append(Hex(*span.parent_span_id)).append("\"");
    out.append(",\"name\":");
    AppendJsonString(span.name, &out);
    out.append(StrCat(",\"kind\":", static_cast<int>(span.kind), ",\"startTimeUnixNano\":\"",
                      absl::ToUnixNanos(span.start), "\",\"endTimeUnixNano\":\"", absl::ToUnixNanos(span.end),
                      "\",\"attributes\":["));
    for (size_t a = 0; a < span.attributes.size(); ++a) {
      if (a > 0) out.push_back(',');
      AppendAttribute(out, span.attributes[a].first, span.attributes[a].second);
    }
    out.append("]");
    if (!span.links.empty()) {
      out.append(",\"links\":[");
      for (size_t l = 0; l < span.links.size(); ++l) {
        if (l > 0) out.push_back(',');
        out.append("{\"traceId\":\"").append(span.links[l].TraceIdHex());
        out.append("\",\"spanId\":\"").append(span.links[l].SpanIdHex()).append("\"}");
      }
      out.append("]");
    }
    // Status codes: 1 OK, 2 ERROR.
    out.append(StrCat(",\"status\":{\"code\":", span.error ? 2 : 1));
    if (!span.status_message.empty()) {
      out.append(",\"message\":");
      AppendJsonString(span.status_message, &out);
    }
    out.append("}}");
  }
  out.append("]}]}]}");
  return out;
}

Tracer::Tracer(Options options) : options_(std::move(options)), settings_(options_.sampling_ratio) {}

absl::StatusOr<std::unique_ptr<Tracer>> Tracer::Create(Options options) {
  if (!(options.sampling_ratio >= 0.0 && options.sampling_ratio <= 1.0)) {
    return absl::InvalidArgumentError(
        StrCat("trace sampling ratio ", options.sampling_ratio, " is not between 0 and 1"));
  }
  if (options.max_buffered_spans == 0) options.max_buffered_spans = 1;
  if (options.max_batch_spans == 0) options.max_batch_spans = 1;
  std::unique_ptr<Tracer> tracer(new Tracer(std::move(options)));
  const std::string& url = tracer->options_.endpoint;
  if (!url.empty()) {
    constexpr std::string_view kScheme = "http://";
    if (url.rfind(kScheme, 0) != 0) {
      return absl::InvalidArgumentError(StrCat("OTLP endpoint '", url, "' must start with http://"));
    }
    std::string_view rest = std::string_view(url).substr(kScheme.size());
    const size_t slash = rest.find('/');
    const std::string_view authority = rest.substr(0, slash);
    tracer->path_ = slash == std::string_view::npos ? "/v1/traces" : std::string(rest.substr(slash));
    const size_t colon = authority.rfind(':');
    if (authority.empty() || colon == 0) {
      return absl::InvalidArgumentError(StrCat("OTLP endpoint '", url, "' has no host"));
    }
    tracer->host_ = std::string(authority.substr(0, colon));
    tracer->port_ = colon == std::string_view::npos ? "80" : std::string(authority.substr(colon + 1));
    if (!tracer->host_.empty() && tracer->host_.front() == '[' && tracer->host_.back() == ']') {
      tracer->host_ = tracer->host_.substr(1, tracer->host_.size() - 2);
    }
  }
  tracer->thread_ = std::thread([t = tracer.get()] { t->Run(); });
  return tracer;
}

Tracer::~Tracer() {
  {
    absl::MutexLock lock(&wake_mu_);  // Releasing it wakes the exporter.
    stopping_.store(true, std::memory_order_release);
  }
  if (thread_.joinable()) thread_.join();
}

TraceContext Tracer::StartSpan(const std::optional<TraceContext>& parent) {
  TraceContext context;
  if (parent) {
    context.trace_id = parent->trace_id;
    context.sampled = parent->sampled;
  } else {
    RandomId(&context.trace_id);
    context.sampled = settings_.SampleRoot({}, &Uniform);
  }
  RandomId(&context.span_id);
  return context;
}

bool Tracer::SampleRoot(std::string_view model) { return settings_.SampleRoot(model, &Uniform); }

TraceContext Tracer::ChildOf(const TraceContext& trace) {
  TraceContext context = trace;
  RandomId(&context.span_id);
  return context;
}

TraceContext Tracer::NewSampledTrace() {
  TraceContext context;
  RandomId(&context.trace_id);
  RandomId(&context.span_id);
  context.sampled = true;
  return context;
}

void Tracer::CountDropped(uint64_t n) {
  dropped_.fetch_add(n, std::memory_order_relaxed);
  if (options_.metrics != nullptr) options_.metrics->SpanDropped(n);
}

void Tracer::Export(Span span) {
  // Reserve a place first, so the bound holds across shards without a lock.
  const size_t before = buffered_.fetch_add(1, std::memory_order_acq_rel);
  if (before >= options_.max_buffered_spans || stopping_.load(std::memory_order_acquire)) {
    buffered_.fetch_sub(1, std::memory_order_acq_rel);
    return CountDropped(1);
  }
  // A thread keeps to one shard; threads are spread over them in turn.
  static std::atomic<size_t> next_shard{0};
  thread_local const size_t shard_index = next_shard.fetch_add(1, std::memory_order_relaxed) % kShards;
  Shard& shard = shards_[shard_index];
  {
    absl::MutexLock lock(&shard.mu);
    shard.spans.push_back(std::move(span));
  }
  if (before + 1 == options_.max_batch_spans) {
    absl::MutexLock lock(&wake_mu_);  // A full batch: releasing it wakes the exporter.
  }
}

size_t Tracer::Drain(std::vector<Span>& out, size_t max) {
  size_t taken = 0;
  for (Shard& shard : shards_) {
    absl::MutexLock lock(&shard.mu);
    while (taken < max && !shard.spans.empty()) {
      out.push_back(std::move(shard.spans.front()));
      shard.spans.pop_front();
      ++taken;
    }
    if (taken == max) break;
  }
  buffered_.fetch_sub(taken, std::memory_order_acq_rel);
  return taken;
}

uint64_t Tracer::dropped() const { return dropped_.load(std::memory_order_relaxed); }
uint64_t Tracer::exported() const { return exported_.load(std::memory_order_relaxed); }

void Tracer::Run() {
  std::vector<Span> batch;
  for (;;) {
    {
      absl::MutexLock lock(&wake_mu_);
      auto ready = [this] {
        return stopping_.load(std::memory_order_acquire) ||
               buffered_.load(std::memory_order_acquire) >= options_.max_batch_spans;
      };
      wake_mu_.AwaitWithTimeout(absl::Condition(&ready), options_.flush_interval);
    }
    const bool stopping = stopping_.load(std::memory_order_acquire);
    Drain(batch, options_.max_batch_spans);
    if (!batch.empty()) {
      const bool sent = !host_.empty() && Post(EncodeOtlpJson(batch, options_.service_name));
      if (sent) {
        exported_.fetch_add(batch.size(), std::memory_order_relaxed);
        if (options_.metrics != nullptr) options_.metrics->SpanExported(batch.size());
      } else {
        CountDropped(batch.size());
      }
      batch.clear();
      continue;  // More may be buffered.
    }
    if (stopping) return;
  }
}

Span ChildSpan(const RequestTrace& trace, std::string name, std::string_view operation, std::string_view model,
               std::string_view version, absl::Time start) {
  Span span;
  span.context.trace_id = trace.trace_id;
  RandomId(&span.context.span_id);
  span.context.sampled = true;
  span.parent_span_id = trace.span_id;
  span.name = std::move(name);
  span.kind = Span::Kind::kInternal;
  span.start = start;
  span.end = start;
  span.attributes.reserve(4);
  span.attributes.emplace_back("ai.model.name", std::string(model));
  span.attributes.emplace_back("ai.model.version", std::string(version));
  span.attributes.emplace_back("ai.operation", std::string(operation));
  return span;
}

bool Tracer::Post(const std::string& body) {
  namespace beast = boost::beast;
  namespace http = beast::http;
  namespace net = boost::asio;
  try {
    net::io_context ioc;
    net::ip::tcp::resolver resolver(ioc);
    beast::tcp_stream stream(ioc);
    stream.expires_after(std::chrono::nanoseconds(absl::ToInt64Nanoseconds(options_.export_timeout)));
    beast::error_code ec;
    auto endpoints = resolver.resolve(host_, port_, ec);
    if (ec) return false;
    stream.connect(endpoints, ec);
    if (ec) return false;
    http::request<http::string_body> request{http::verb::post, path_, 11};
    request.set(http::field::host, StrCat(host_, ":", port_));
    request.set(http::field::content_type, "application/json");
    request.set(http::field::user_agent, "ortserve");
    request.body() = body;
    request.prepare_payload();
    http::write(stream, request, ec);
    if (ec) return false;
    beast::flat_buffer buffer;
    http::response<http::string_body> response;
    http::read(stream, buffer, response, ec);
    if (ec) return false;
    stream.socket().shutdown(net::ip::tcp::socket::shutdown_both, ec);
    return response.result_int() >= 200 && response.result_int() < 300;
  } catch (const std::exception&) {
    return false;  // Asio may throw on resource exhaustion; a lost batch is counted.
  }
}

}  // namespace ortserve::observability
