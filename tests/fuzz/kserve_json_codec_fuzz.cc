// SPDX-License-Identifier: Apache-2.0
// libFuzzer entry point for the KServe v2 REST codec (see CMakeLists.txt here:
// `make fuzz` runs it; every build replays its corpus).
//
// Input layout: the first byte picks the form (bit 0: send an
// Inference-Header-Content-Length, taken from the second byte as a fraction of
// the body; bit 1: raw body), the rest is the body. Every decoded request is
// encoded back as a response with its inputs as outputs, exercising both
// directions, and the encoder's JSON is checked to parse.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include "frontend/http/kserve_json_codec.h"
#include "simdjson.h"

namespace {

void Check(bool condition) {
  if (!condition) __builtin_trap();
}

void EncodeBack(const ortserve::InferRequest& request) {
  ortserve::InferResponse response;
  response.model_name = "fuzz";
  response.id = request.id;
  response.outputs = request.inputs;
  ortserve::InferRequest encode_request = request;
  auto encoded = ortserve::frontend::EncodeInferResponse(response, encode_request);
  if (!encoded.ok()) return;  // E.g. classification of BYTES: a clean error.
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  Check(parser.parse(encoded->json).get(root) == simdjson::SUCCESS);
  size_t total = 0;
  for (const auto& section : encoded->binary) total += section.size();
  Check(total == encoded->binary_size);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint8_t mode = data[0];
  const uint8_t fraction = data[1];
  data += 2;
  size -= 2;
  // The body as the HTTP layer holds it: shared, with simdjson's padding.
  auto body = std::make_shared<std::string>(reinterpret_cast<const char*>(data), size);
  const size_t body_size = body->size();
  body->append(simdjson::SIMDJSON_PADDING, '\0');
  const absl::Time now = absl::FromUnixSeconds(1);

  if (mode & 2) {
    ortserve::frontend::RawInputSpec spec;
    spec.name = "raw";
    spec.type = static_cast<ortserve::DataType>(1 + fraction % 14);
    spec.shape = {-1};
    if (fraction & 0x80) spec.shape.push_back(2);
    auto request = ortserve::frontend::DecodeRawInferRequest(body->data(), body_size, spec,
                                                             body, now);
    if (request.ok()) EncodeBack(*request);
    return 0;
  }
  std::optional<size_t> header_length;
  if (mode & 1) header_length = body_size * fraction / 255;
  auto request = ortserve::frontend::DecodeInferRequest(
      body->data(), body_size, (mode & 4) ? body_size : body->size(), header_length, body, now);
  if (request.ok()) {
    for (const auto& input : request->inputs) Check(ortserve::ValidateTensorBytes(input).ok());
    EncodeBack(*request);
  }
  return 0;
}
