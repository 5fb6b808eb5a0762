// SPDX-License-Identifier: Apache-2.0
#include "repository/model_source.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <tuple>

#include "absl/hash/hash.h"
#include "core/strings.h"

namespace ortserve::repository {
namespace fs = std::filesystem;
namespace {

uint64_t Mix(uint64_t seed, std::string_view bytes) {
  return absl::Hash<std::tuple<uint64_t, absl::string_view>>()(
      std::make_tuple(seed, absl::string_view(bytes.data(), bytes.size())));
}

// Hashes a file's bytes in chunks, so a large model is never held twice in
// memory just to fingerprint it.
absl::StatusOr<uint64_t> HashFile(const fs::path& path, uint64_t seed) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InternalError(StrCat("cannot read '", path.string(), "'"));
  std::string chunk(1 << 20, '\0');
  uint64_t h = seed;
  uint64_t total = 0;
  while (in) {
    in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    const auto got = static_cast<size_t>(in.gcount());
    if (got == 0) break;
    total += got;
    h = Mix(h, std::string_view(chunk.data(), got));
  }
  if (in.bad()) return absl::InternalError(StrCat("error reading '", path.string(), "'"));
  return Mix(h, std::to_string(total));
}

// Hashes every regular file under `dir` (sorted by relative path), skipping
// top-level folders for which `skip` is true.
template <typename Skip>
absl::StatusOr<uint64_t> HashTree(const fs::path& dir, Skip skip) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::follow_directory_symlink, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const fs::path rel = it->path().lexically_relative(dir);
    if (it.depth() == 0 && it->is_directory() && skip(rel.string())) {
      it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file()) files.push_back(rel);
  }
  if (ec) return absl::InternalError(StrCat("cannot list '", dir.string(), "': ", ec.message()));
  std::sort(files.begin(), files.end());
  uint64_t h = 0x6f72747365727665ull;
  for (const auto& rel : files) {
    h = Mix(h, rel.generic_string());
    auto file_hash = HashFile(dir / rel, h);
    if (!file_hash.ok()) return file_hash.status();
    h = *file_hash;
  }
  return h;
}

}  // namespace

std::optional<int64_t> ParseVersionNumber(std::string_view text) {
  int64_t version = 0;
  if (text.empty()) return std::nullopt;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), version);
  if (ec != std::errc() || end != text.data() + text.size() || version < 0) return std::nullopt;
  return version;
}

absl::StatusOr<ModelSnapshot> ReadModelSnapshot(const std::string& repository, const std::string& name) {
  ModelSnapshot snapshot;
  snapshot.name = name;
  const fs::path dir = fs::path(repository) / name;
  snapshot.dir = dir.string();
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return absl::NotFoundError(StrCat("model folder '", dir.string(), "' does not exist"));
  }
  const fs::path config_path = dir / "config.pbtxt";
  if (fs::is_regular_file(config_path, ec)) {
    std::ifstream in(config_path, std::ios::binary);
    if (!in) return absl::InternalError(StrCat("cannot read '", config_path.string(), "'"));
    std::ostringstream text;
    text << in.rdbuf();
    snapshot.has_config = true;
    snapshot.config_text = text.str();
  }
  auto model_hash = HashTree(dir, [](const std::string& top) { return ParseVersionNumber(top).has_value(); });
  if (!model_hash.ok()) return model_hash.status();
  snapshot.model_fingerprint = *model_hash;

  uint64_t all = Mix(snapshot.model_fingerprint, "model");
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (!entry.is_directory()) continue;
    auto version = ParseVersionNumber(entry.path().filename().string());
    if (!version) continue;
    auto version_hash = HashTree(entry.path(), [](const std::string&) { return false; });
    if (!version_hash.ok()) return version_hash.status();
    snapshot.version_fingerprints[*version] = *version_hash;
  }
  if (ec) return absl::InternalError(StrCat("cannot list '", dir.string(), "': ", ec.message()));
  for (const auto& [version, h] : snapshot.version_fingerprints) {
    all = Mix(all, StrCat(version, ":", h));
  }
  snapshot.fingerprint = all;
  return snapshot;
}

absl::StatusOr<std::vector<std::string>> ListModelNames(const std::string& repository) {
  std::error_code ec;
  if (!fs::is_directory(repository, ec)) {
    return absl::NotFoundError(StrCat("model repository '", repository, "' is not a directory"));
  }
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(repository, ec)) {
    if (!entry.is_directory()) continue;
    std::string name = entry.path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    names.push_back(std::move(name));
  }
  std::sort(names.begin(), names.end());
  return names;
}

absl::Status ValidateModelName(const std::string& repository, std::string_view name) {
  auto bad = [&](std::string_view why) {
    std::string shown(name);
    std::replace(shown.begin(), shown.end(), '\0', '?');
    return absl::InvalidArgumentError(StrCat("model name '", shown, "' is not allowed: ", why));
  };
  if (name.empty()) return bad("it is empty");
  if (name.find('\0') != std::string_view::npos) return bad("it contains a NUL byte");
  if (name.find('/') != std::string_view::npos || name.find('\\') != std::string_view::npos) {
    return bad("it contains a path separator");
  }
  if (name.find("..") != std::string_view::npos) return bad("it contains '..'");
  if (name.front() == '.') return bad("it starts with '.'");
  // Resolved through symlinks, the model folder must still be a direct child
  // of the repository.
  std::error_code ec;
  const fs::path root = fs::weakly_canonical(fs::path(repository), ec);
  if (ec) return absl::InternalError(StrCat("cannot resolve repository '", repository, "': ", ec.message()));
  const fs::path resolved = fs::weakly_canonical(root / fs::path(std::string(name)), ec);
  if (ec) return bad(ec.message());
  if (resolved.parent_path() != root) return bad("it resolves outside the model repository");
  return absl::OkStatus();
}

absl::Status ValidateRelativeFileName(std::string_view field, std::string_view file_name) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(StrCat("config field ", field, " '", file_name, "' is not allowed: ", why));
  };
  if (file_name.find('\0') != std::string_view::npos) return bad("it contains a NUL byte");
  const fs::path path{std::string(file_name)};
  if (path.is_absolute() || (!file_name.empty() && (file_name[0] == '/' || file_name[0] == '\\'))) {
    return bad("it is an absolute path");
  }
  for (const auto& part : path) {
    if (part == "..") return bad("it contains '..'");
  }
  if (file_name.find('\\') != std::string_view::npos) return bad("it contains a backslash");
  return absl::OkStatus();
}

}  // namespace ortserve::repository
