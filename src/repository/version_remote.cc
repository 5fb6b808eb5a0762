// SPDX-License-Identifier: Apache-2.0
#include "repository/version_remote.h"

#include <filesystem>
#include <fstream>
#include <iterator>

#include "core/status.h"
#include "core/strings.h"
#include "core/utf8.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"

namespace ortserve::repository {
namespace fs = std::filesystem;
namespace {

// A remote block is a few lines; anything this large is not one.
constexpr uintmax_t kMaxRemoteFileBytes = 64 * 1024;

class FirstError final : public google::protobuf::io::ErrorCollector {
 public:
  explicit FirstError(std::string_view source) : source_(source) {}
  void AddError(int line, google::protobuf::io::ColumnNumber column, const std::string& message) override {
    if (first_.empty()) first_ = StrCat(source_, ":", line + 1, ":", column + 1, ": ", message);
  }
  const std::string& first() const { return first_; }

 private:
  std::string source_;
  std::string first_;
};

}  // namespace

absl::StatusOr<config::ModelConfig> ApplyVersionRemote(const config::ModelConfig& config, std::string_view text,
                                                       std::string_view source) {
  config::ModelRemote remote;
  FirstError errors(source);
  google::protobuf::TextFormat::Parser parser;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(std::string(text), &remote)) {
    return absl::InvalidArgumentError(errors.first().empty() ? StrCat(source, ": not a valid remote block")
                                                             : errors.first());
  }
  const auto* descriptor = remote.GetDescriptor();
  const auto* reflection = remote.GetReflection();
  for (int f = 0; f < descriptor->field_count(); ++f) {
    const auto* field = descriptor->field(f);
    if (field->type() != google::protobuf::FieldDescriptor::TYPE_STRING) continue;
    const int count = field->is_repeated() ? reflection->FieldSize(remote, field) : 1;
    for (int i = 0; i < count; ++i) {
      std::string scratch;
      const std::string& value = field->is_repeated() ? reflection->GetRepeatedStringReference(remote, field, i, &scratch)
                                                      : reflection->GetStringReference(remote, field, &scratch);
      if (!IsValidUtf8(value)) return absl::InvalidArgumentError(StrCat(source, ": ", field->name(), " is not valid UTF-8"));
    }
  }
  config::ModelConfig out = config;
  out.set_platform("remote");
  out.set_backend("remote");
  *out.mutable_remote() = std::move(remote);
  return out;
}

absl::StatusOr<std::optional<config::ModelConfig>> VersionRemoteConfig(const config::ModelConfig& config,
                                                                       const std::string& model_dir, int64_t version) {
  const fs::path path = fs::path(model_dir) / std::to_string(version) / kVersionRemoteFile;
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return std::nullopt;
  const uintmax_t size = fs::file_size(path, ec);
  if (ec) return absl::NotFoundError(StrCat("cannot read ", path.string(), ": ", ec.message()));
  if (size > kMaxRemoteFileBytes) {
    return absl::InvalidArgumentError(StrCat(path.string(), ": ", size, " bytes; a remote block is at most ",
                                             kMaxRemoteFileBytes));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(StrCat("cannot read ", path.string()));
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSIGN_OR_RETURN(config::ModelConfig out, ApplyVersionRemote(config, text, path.string()));
  return std::optional<config::ModelConfig>(std::move(out));
}

}  // namespace ortserve::repository
