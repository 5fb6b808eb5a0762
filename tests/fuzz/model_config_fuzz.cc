// SPDX-License-Identifier: Apache-2.0
// libFuzzer entry point for model configuration: the input is a
// config.pbtxt. A config that parses is completed against a fixed model
// signature (as a load does), then turned into session options and instance
// placements. Every step either succeeds or returns an error that says why.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "repository/model_config.h"

namespace {

void Check(bool condition) {
  if (!condition) __builtin_trap();
}

ortserve::backend::ModelSignature Signature() {
  ortserve::backend::ModelSignature signature;
  signature.inputs = {{"input_ids", ortserve::DataType::kInt64, {-1, -1}},
                      {"attention_mask", ortserve::DataType::kInt64, {-1, -1}}};
  signature.outputs = {{"logits", ortserve::DataType::kFp32, {-1, 2}}};
  return signature;
}

void CheckError(const absl::Status& status) {
  if (!status.ok()) Check(!status.message().empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> warnings;
  auto config = ortserve::repository::ParseModelConfig(text, "fuzz/config.pbtxt", &warnings);
  if (!config.ok()) {
    CheckError(config.status());
    return 0;
  }
  static const ortserve::backend::ModelSignature signature = Signature();
  absl::Status completed = ortserve::repository::CompleteModelConfig("fuzz", signature, &*config, &warnings);
  if (!completed.ok()) {
    CheckError(completed);
    return 0;
  }
  auto options = ortserve::repository::SessionOptionsFromConfig(*config, "/fuzz/1/model.onnx", &warnings);
  if (!options.ok()) {
    CheckError(options.status());
    return 0;
  }
  auto instances = ortserve::repository::InstanceSessionOptions(*config, *options);
  if (!instances.ok()) {
    CheckError(instances.status());
    return 0;
  }
  Check(!instances->empty());
  Check(!ortserve::repository::ModelConfigToJson(*config).empty());
  return 0;
}
