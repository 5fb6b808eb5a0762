// SPDX-License-Identifier: Apache-2.0
#include "repository/warmup.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "core/status.h"
#include "core/strings.h"
#include "repository/model_source.h"

namespace ortserve::repository {
namespace fs = std::filesystem;
namespace {

uint16_t FloatToHalf(float value) {
  // Only values in [0, 1) are generated: no sign, no overflow, tiny values flush to 0.
  uint32_t bits = 0;
  std::memcpy(&bits, &value, sizeof(bits));
  const int exponent = static_cast<int>((bits >> 23) & 0xff) - 127 + 15;
  if (exponent <= 0) return 0;
  return static_cast<uint16_t>((exponent << 10) | ((bits >> 13) & 0x3ff));
}

void FillRandom(DataType type, int64_t count, std::mt19937_64& rng, std::vector<std::byte>* out) {
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::uniform_int_distribution<int> bit(0, 1);
  const size_t size = DataTypeSize(type);
  out->assign(static_cast<size_t>(count) * size, std::byte{0});
  for (int64_t i = 0; i < count; ++i) {
    std::byte* at = out->data() + static_cast<size_t>(i) * size;
    switch (type) {
      case DataType::kFp32: {
        const float v = static_cast<float>(unit(rng));
        std::memcpy(at, &v, sizeof(v));
        break;
      }
      case DataType::kFp64: {
        const double v = unit(rng);
        std::memcpy(at, &v, sizeof(v));
        break;
      }
      case DataType::kFp16: {
        const uint16_t v = FloatToHalf(static_cast<float>(unit(rng)));
        std::memcpy(at, &v, sizeof(v));
        break;
      }
      case DataType::kBf16: {
        const float f = static_cast<float>(unit(rng));
        uint32_t bits = 0;
        std::memcpy(&bits, &f, sizeof(bits));
        const uint16_t v = static_cast<uint16_t>(bits >> 16);
        std::memcpy(at, &v, sizeof(v));
        break;
      }
      default:
        // Integers and BOOL: 0 or 1, little-endian, which is safe as an index.
        at[0] = static_cast<std::byte>(bit(rng));
        break;
    }
  }
}

}  // namespace

absl::StatusOr<std::vector<Tensor>> BuildWarmupInputs(const ModelConfig& config,
                                                      const config::ModelWarmup& warmup,
                                                      const std::string& model_dir) {
  const std::string where = StrCat("model '", config.name(), "' model_warmup '", warmup.name(), "'");
  std::mt19937_64 rng(0x5eed);
  std::vector<Tensor> inputs;
  // Sorted by name, so the order does not depend on the map's iteration.
  std::map<std::string, config::ModelWarmup::Input> sorted(warmup.inputs().begin(), warmup.inputs().end());
  for (const auto& [name, spec] : sorted) {
    const config::ModelInput* declared = nullptr;
    for (const auto& input : config.input()) {
      if (input.name() == name) declared = &input;
    }
    if (declared == nullptr) {
      return absl::InvalidArgumentError(StrCat(where, ": input '", name, "' is not an input of the model"));
    }
    const config::DataType config_type =
        spec.data_type() != config::TYPE_INVALID ? spec.data_type() : declared->data_type();
    const auto type = DataTypeFromConfigName(config::DataType_Name(config_type));
    if (!type || *type == DataType::kInvalid) {
      return absl::InvalidArgumentError(StrCat(where, ": input '", name, "' has no usable data_type"));
    }
    Shape shape;
    if (config.max_batch_size() > 0) shape.push_back(std::max<int64_t>(1, warmup.batch_size()));
    for (int64_t d : spec.dims()) {
      if (d < 0) {
        return absl::InvalidArgumentError(StrCat(where, ": input '", name, "' dims must be concrete, got ", d));
      }
      shape.push_back(d);
    }
    ASSIGN_OR_RETURN(int64_t count, ElementCount(shape));
    // A warm-up tensor is built in memory; dims of many digits must fail the
    // load, not the server.
    const size_t element_bytes = *type == DataType::kBytes ? 12 : DataTypeSize(*type);
    if (static_cast<uint64_t>(count) > kMaxWarmupBytes / element_bytes) {
      return absl::InvalidArgumentError(StrCat(where, ": input '", name, "' of shape ", ShapeToString(shape),
                                               " is larger than the ", kMaxWarmupBytes >> 20,
                                               " MiB a warm-up input may have"));
    }
    std::vector<std::byte> bytes;
    switch (spec.input_data_type_case()) {
      case config::ModelWarmup::Input::kZeroData:
        if (*type == DataType::kBytes) {
          bytes.assign(static_cast<size_t>(count) * 4, std::byte{0});
        } else {
          bytes.assign(static_cast<size_t>(count) * DataTypeSize(*type), std::byte{0});
        }
        break;
      case config::ModelWarmup::Input::kRandomData:
        if (*type == DataType::kBytes) {
          std::uniform_int_distribution<int> letter('a', 'z');
          std::uniform_int_distribution<int> length(1, 8);
          for (int64_t i = 0; i < count; ++i) {
            std::string element(static_cast<size_t>(length(rng)), 'a');
            for (char& c : element) c = static_cast<char>(letter(rng));
            AppendBytesElement(element, &bytes);
          }
        } else {
          FillRandom(*type, count, rng, &bytes);
        }
        break;
      case config::ModelWarmup::Input::kInputDataFile: {
        RETURN_IF_ERROR(ValidateRelativeFileName("model_warmup.inputs.input_data_file", spec.input_data_file()));
        const fs::path path = fs::path(model_dir) / "warmup" / spec.input_data_file();
        std::ifstream in(path, std::ios::binary);
        if (!in) {
          return absl::InvalidArgumentError(
              StrCat(where, ": input '", name, "' input_data_file '", path.string(), "' cannot be read"));
        }
        std::ostringstream text;
        text << in.rdbuf();
        const std::string data = text.str();
        bytes.resize(data.size());
        if (!data.empty()) std::memcpy(bytes.data(), data.data(), data.size());
        if (*type != DataType::kBytes && bytes.size() != static_cast<size_t>(count) * DataTypeSize(*type)) {
          return absl::InvalidArgumentError(StrCat(where, ": input '", name, "' input_data_file '",
                                                   spec.input_data_file(), "' has ", bytes.size(),
                                                   " bytes, shape ", ShapeToString(shape), " of ",
                                                   DataTypeName(*type), " needs ",
                                                   static_cast<size_t>(count) * DataTypeSize(*type)));
        }
        break;
      }
      default:
        return absl::InvalidArgumentError(StrCat(
            where, ": input '", name, "' sets none of zero_data, random_data, input_data_file"));
    }
    Tensor tensor = MakeOwnedTensor(name, *type, std::move(shape), std::move(bytes));
    if (absl::Status status = ValidateTensorBytes(tensor); !status.ok()) {
      return absl::InvalidArgumentError(StrCat(where, ": input '", name, "': ", status.message()));
    }
    inputs.push_back(std::move(tensor));
  }
  for (const auto& input : config.input()) {
    if (input.optional() || warmup.inputs().contains(input.name())) continue;
    return absl::InvalidArgumentError(StrCat(where, ": model input '", input.name(), "' is not given"));
  }
  return inputs;
}

absl::Status RunWarmup(const ModelConfig& config, const std::string& model_dir,
                       std::span<const std::shared_ptr<backend::Session>> sessions, backend::CancelToken* cancel) {
  std::vector<std::string> output_names;
  for (const auto& output : config.output()) output_names.push_back(output.name());
  for (const auto& warmup : config.model_warmup()) {
    ASSIGN_OR_RETURN(std::vector<Tensor> inputs, BuildWarmupInputs(config, warmup, model_dir));
    const uint32_t count = std::max<uint32_t>(1, warmup.count());
    for (size_t s = 0; s < sessions.size(); ++s) {
      for (uint32_t i = 0; i < count; ++i) {
        std::vector<Tensor> outputs;
        absl::Status status = cancel != nullptr
                                  ? sessions[s]->RunCancellable(inputs, output_names, &outputs, *cancel)
                                  : sessions[s]->Run(inputs, output_names, &outputs);
        if (absl::IsCancelled(status)) {
          return absl::CancelledError(StrCat("model '", config.name(), "' model_warmup '", warmup.name(),
                                             "' stopped on instance ", s, " after ", i, " run(s): ",
                                             status.message()));
        }
        if (!status.ok()) {
          return absl::Status(status.code(), StrCat("model '", config.name(), "' model_warmup '", warmup.name(),
                                                    "' failed on instance ", s, " run ", i + 1, ": ",
                                                    status.message()));
        }
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace ortserve::repository
