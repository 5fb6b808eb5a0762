// SPDX-License-Identifier: Apache-2.0
// Helpers for the gRPC integration tests: a channel and stub to a running
// ortserve, and builders for ModelInferRequest tensors.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "proto/grpc_service.grpc.pb.h"

namespace ortserve::testing {

inline std::shared_ptr<grpc::Channel> GrpcChannel(uint16_t port, int max_receive = -1) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(max_receive);
  args.SetMaxSendMessageSize(-1);
  return grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials(), args);
}

// A context with a generous deadline, so a wedged server fails the test
// instead of hanging it.
inline std::unique_ptr<grpc::ClientContext> Context(std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + timeout);
  return context;
}

// Adds an input whose data goes in raw_input_contents.
template <typename T>
void AddRawInput(inference::ModelInferRequest* request, const std::string& name, const std::string& datatype,
                 std::vector<int64_t> shape, const std::vector<T>& values) {
  auto* input = request->add_inputs();
  input->set_name(name);
  input->set_datatype(datatype);
  for (int64_t d : shape) input->add_shape(d);
  request->add_raw_input_contents(std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T)));
}

// BYTES elements in the raw layout: 4-byte little-endian length + bytes each.
inline std::string RawBytes(const std::vector<std::string>& elements) {
  std::string out;
  for (const auto& e : elements) {
    const uint32_t n = static_cast<uint32_t>(e.size());
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
    out += e;
  }
  return out;
}

inline std::vector<std::string> SplitRawBytes(const std::string& raw) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at + 4 <= raw.size()) {
    uint32_t n = 0;
    for (int i = 0; i < 4; ++i) n |= static_cast<uint32_t>(static_cast<unsigned char>(raw[at + i])) << (8 * i);
    out.push_back(raw.substr(at + 4, n));
    at += 4 + n;
  }
  return out;
}

template <typename T>
std::vector<T> RawAs(const std::string& raw) {
  std::vector<T> out(raw.size() / sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), raw.data(), out.size() * sizeof(T));
  return out;
}

// The raw bytes of output `name` in `response`, or "" (and a false `found`).
inline std::string RawOutput(const inference::ModelInferResponse& response, const std::string& name,
                             bool* found = nullptr) {
  for (int i = 0; i < response.outputs_size(); ++i) {
    if (response.outputs(i).name() == name && i < response.raw_output_contents_size()) {
      if (found) *found = true;
      return response.raw_output_contents(i);
    }
  }
  if (found) *found = false;
  return "";
}

inline const inference::ModelInferResponse::InferOutputTensor* FindOutput(
    const inference::ModelInferResponse& response, const std::string& name) {
  for (const auto& output : response.outputs()) {
    if (output.name() == name) return &output;
  }
  return nullptr;
}

}  // namespace ortserve::testing
