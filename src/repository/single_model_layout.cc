// SPDX-License-Identifier: Apache-2.0
#include "repository/single_model_layout.h"

#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"

namespace ortserve::repository {
namespace fs = std::filesystem;

namespace {

absl::Status CheckModelName(const std::string& name) {
  const bool bad = name.empty() || name.size() > 255 || name.front() == '.' ||
                   name.find_first_of(std::string_view("/\\\0", 3)) != std::string::npos ||
                   name.find("..") != std::string::npos;
  if (bad) {
    return absl::InvalidArgumentError(
        absl::StrCat("--model-name '", name, "' cannot name a model (empty, '/', '\\', '..' or a leading '.')"));
  }
  return absl::OkStatus();
}

bool IsRegularFile(const fs::path& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec) && !ec;  // Follows a symlink, as the loader will.
}

}  // namespace

StagedRepository::~StagedRepository() {
  std::error_code ec;
  fs::remove_all(path_, ec);  // Links only: the originals are not touched.
}

absl::StatusOr<std::unique_ptr<StagedRepository>> StagedRepository::StageIfSingleModel(
    const std::string& repository, const std::string& model_name, const std::string& staging_parent) {
  std::error_code ec;
  const fs::path source = fs::absolute(repository, ec);
  if (ec || !IsRegularFile(source / "model.onnx")) return std::unique_ptr<StagedRepository>();
  if (absl::Status status = CheckModelName(model_name); !status.ok()) return status;

  fs::path parent = staging_parent.empty() ? fs::temp_directory_path(ec) : fs::path(staging_parent);
  if (ec) return absl::InternalError(absl::StrCat("no temporary folder to stage ", repository, ": ", ec.message()));
  std::string templ = (parent / "ortserve-repository-XXXXXX").string();
  std::vector<char> buffer(templ.begin(), templ.end());
  buffer.push_back('\0');
  if (mkdtemp(buffer.data()) == nullptr) {
    return absl::InternalError(
        absl::StrCat("cannot make a staging folder in ", parent.string(), ": ", std::strerror(errno)));
  }
  // From here the folder is removed on every path out.
  std::unique_ptr<StagedRepository> staged(new StagedRepository(buffer.data(), model_name, source.string()));
  const fs::path model_dir = fs::path(staged->path_) / model_name;
  fs::create_directories(model_dir / "1", ec);
  if (!ec) fs::create_symlink(source / "model.onnx", model_dir / "1" / "model.onnx", ec);
  if (!ec && IsRegularFile(source / "config.pbtxt")) {
    fs::create_symlink(source / "config.pbtxt", model_dir / "config.pbtxt", ec);
  }
  if (ec) {
    return absl::InternalError(absl::StrCat("cannot stage ", (source / "model.onnx").string(), " in ",
                                            staged->path_, ": ", ec.message()));
  }
  return staged;
}

}  // namespace ortserve::repository
