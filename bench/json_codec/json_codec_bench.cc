// SPDX-License-Identifier: Apache-2.0
// The KServe v2 JSON codec alone, one thread: decodes an infer request of one
// FP32 tensor of VALUES numbers (uniform in [0, 1), written shortest-round-trip
// as ortserve-loadgen writes them) and encodes a response of the same tensor,
// each repeatedly for SECONDS. Prints one JSON line: nanoseconds per request
// and per element, and MB/s of JSON, for decode and encode.
//
//   json_codec_bench [VALUES=2048] [SECONDS=2, or -N for N thousand calls] [decode|encode|both]
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>

#include "frontend/http/kserve_json_codec.h"
#include "simdjson.h"

namespace {

using Clock = std::chrono::steady_clock;

// Seconds > 0: calls fn for that long; seconds < 0: exactly -seconds * 1000
// times (for instruction counts under `perf stat`, which load does not skew).
template <typename Fn>
double NanosPerCall(double seconds, Fn&& fn) {
  if (seconds < 0) {
    const long calls = static_cast<long>(-seconds * 1000);
    const auto start = Clock::now();
    for (long i = 0; i < calls; ++i) fn();
    return std::chrono::duration<double, std::nano>(Clock::now() - start).count() / static_cast<double>(calls);
  }
  for (int i = 0; i < 20; ++i) fn();  // Warm caches and the thread's parser.
  long calls = 0;
  const auto start = Clock::now();
  const auto until = start + std::chrono::duration<double>(seconds);
  auto now = start;
  do {
    for (int i = 0; i < 16; ++i) fn();
    calls += 16;
    now = Clock::now();
  } while (now < until);
  return std::chrono::duration<double, std::nano>(now - start).count() / static_cast<double>(calls);
}

}  // namespace

int main(int argc, char** argv) {
  const long values = argc > 1 ? std::atol(argv[1]) : 2048;
  const double seconds = argc > 2 ? std::atof(argv[2]) : 2.0;
  const std::string which = argc > 3 ? argv[3] : "both";
  if (values <= 0 || seconds == 0) {
    std::fprintf(stderr, "usage: json_codec_bench [VALUES] [SECONDS]\n");
    return 2;
  }
  std::mt19937 rng(42);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  std::string body = R"({"id":"bench","inputs":[{"name":"x","shape":[1,)" + std::to_string(values) +
                     R"(],"datatype":"FP32","data":[)";
  char number[32];
  for (long i = 0; i < values; ++i) {
    if (i) body.push_back(',');
    char* end = std::to_chars(number, number + sizeof(number), uniform(rng)).ptr;
    body.append(number, end);
  }
  body += "]}]}";
  const size_t json_size = body.size();
  body.append(simdjson::SIMDJSON_PADDING, '\0');  // As the HTTP layer holds a body.
  auto payload = std::make_shared<std::string>(body);
  const absl::Time now = absl::Now();

  auto first = ortserve::frontend::DecodeInferRequest(payload->data(), json_size, payload->size(), std::nullopt,
                                                      payload, now);
  if (!first.ok()) {
    std::fprintf(stderr, "decode failed: %s\n", std::string(first.status().message()).c_str());
    return 1;
  }
  const double decode_ns = which == "encode" ? 0 : NanosPerCall(seconds, [&] {
    auto request = ortserve::frontend::DecodeInferRequest(payload->data(), json_size, payload->size(),
                                                          std::nullopt, payload, now);
    if (!request.ok()) std::abort();
  });

  ortserve::InferResponse response;
  response.model_name = "bench";
  response.id = first->id;
  response.outputs = first->inputs;
  ortserve::frontend::EncodedResponse encoded;
  size_t encoded_size = 0;
  const double encode_ns = which == "decode" ? 0 : NanosPerCall(seconds, [&] {
    if (!ortserve::frontend::EncodeInferResponse(response, *first, {}, &encoded).ok()) std::abort();
    encoded_size = encoded.json.size();
  });

  std::printf(
      "{\"values\":%ld,\"request_bytes\":%zu,\"decode_ns\":%.0f,\"decode_ns_per_value\":%.2f,"
      "\"decode_mb_per_s\":%.1f,\"response_bytes\":%zu,\"encode_ns\":%.0f,\"encode_ns_per_value\":%.2f,"
      "\"encode_mb_per_s\":%.1f}\n",
      values, json_size, decode_ns, decode_ns / values, json_size / decode_ns * 1e3, encoded_size, encode_ns,
      encode_ns / values, encoded_size / encode_ns * 1e3);
  return 0;
}
