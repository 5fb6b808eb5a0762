// SPDX-License-Identifier: Apache-2.0
#include "repository/model_source.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <tuple>

#include "absl/hash/hash.h"
#include "core/status.h"
#include "core/strings.h"

namespace ortserve::repository {
namespace fs = std::filesystem;
namespace {

uint64_t Mix(uint64_t seed, std::string_view bytes) {
  return absl::Hash<std::tuple<uint64_t, absl::string_view>>()(
      std::make_tuple(seed, absl::string_view(bytes.data(), bytes.size())));
}

constexpr uint64_t kTreeSeed = 0x6f72747365727665ull;
constexpr uint64_t kFileSeed = 0x66696c6568617368ull;

int64_t Nanos(const struct timespec& t) { return int64_t{t.tv_sec} * 1'000'000'000 + t.tv_nsec; }

absl::StatusOr<FileIdentity> StatFile(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return absl::InternalError(StrCat("cannot stat '", path.string(), "': ", std::strerror(errno)));
  }
  FileIdentity id;
  id.device = static_cast<uint64_t>(st.st_dev);
  id.inode = static_cast<uint64_t>(st.st_ino);
  id.size = static_cast<uint64_t>(st.st_size);
  id.mtime_ns = Nanos(st.st_mtim);
  id.ctime_ns = Nanos(st.st_ctim);
  return id;
}

// Hashes a file's bytes in chunks, so a large model is never held twice in
// memory just to fingerprint it; `text` (optional) receives the bytes.
absl::StatusOr<uint64_t> ReadAndHash(const fs::path& path, uint64_t* bytes_read, std::string* text) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InternalError(StrCat("cannot read '", path.string(), "'"));
  std::string chunk(1 << 20, '\0');
  uint64_t h = kFileSeed;
  uint64_t total = 0;
  while (in) {
    in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    const auto got = static_cast<size_t>(in.gcount());
    if (got == 0) break;
    total += got;
    h = Mix(h, std::string_view(chunk.data(), got));
    if (text != nullptr) text->append(chunk.data(), got);
  }
  *bytes_read = total;
  if (in.bad()) return absl::InternalError(StrCat("error reading '", path.string(), "'"));
  return Mix(h, std::to_string(total));
}

// Hashes every regular file under `root`/`sub` ("" for `root` itself), sorted
// by path, skipping top-level folders of `root` for which `skip` is true; the
// hashes come from `cache`, keyed by the path relative to `root`, and those
// paths are appended to `seen`. `text_of` (a relative path) is read for its
// text into `text`, `found_text` set when it exists.
template <typename Skip>
absl::StatusOr<uint64_t> HashTree(FileHashCache& cache, const fs::path& root, const std::string& sub, Skip skip,
                                  std::vector<std::string>* seen, const std::string& text_of = "",
                                  std::string* text = nullptr, bool* found_text = nullptr) {
  const fs::path dir = sub.empty() ? root : root / sub;
  std::vector<fs::path> files;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::follow_directory_symlink, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const fs::path rel = it->path().lexically_relative(dir);
    std::error_code type_ec;
    if (it.depth() == 0 && it->is_directory(type_ec) && skip(rel.string())) {
      it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file(type_ec)) files.push_back(rel);
  }
  if (ec) return absl::InternalError(StrCat("cannot list '", dir.string(), "': ", ec.message()));
  std::sort(files.begin(), files.end());
  uint64_t h = kTreeSeed;
  const std::string root_dir = root.string();
  for (const auto& rel : files) {
    const std::string name = rel.generic_string();
    const std::string key = sub.empty() ? name : StrCat(sub, "/", name);
    const bool want_text = text != nullptr && key == text_of;
    auto file_hash = cache.HashFile(root_dir, key, want_text ? text : nullptr);
    if (!file_hash.ok()) return file_hash.status();
    if (want_text) *found_text = true;
    seen->push_back(key);
    h = Mix(Mix(h, name), std::to_string(*file_hash));
  }
  return h;
}

}  // namespace

FileHashCache::FileHashCache() : FileHashCache(Options()) {}

FileHashCache::FileHashCache(Options options)
    : clock_(options.clock != nullptr ? options.clock : Clock::Real()), racy_window_(options.racy_window) {}

absl::StatusOr<uint64_t> FileHashCache::HashFile(const std::string& model_dir, const std::string& relative_path,
                                                 std::string* text) {
  const fs::path path = fs::path(model_dir) / relative_path;
  // Taken before the stat: a write after this instant may share the tick of
  // the ctime we see, so such a ctime makes the hash untrusted.
  const absl::Time started = clock_->Now();
  ASSIGN_OR_RETURN(FileIdentity before, StatFile(path));
  {
    absl::MutexLock lock(&mu_);
    auto folder = entries_.find(model_dir);
    if (folder != entries_.end()) {
      auto it = folder->second.find(relative_path);
      if (it != folder->second.end() && it->second.trusted && it->second.identity == before &&
          (text == nullptr || it->second.text != nullptr)) {
        if (text != nullptr) *text = *it->second.text;
        files_reused_.fetch_add(1, std::memory_order_relaxed);
        return it->second.hash;
      }
    }
  }
  std::string content;
  uint64_t bytes = 0;
  auto hash = ReadAndHash(path, &bytes, text != nullptr ? &content : nullptr);
  files_read_.fetch_add(1, std::memory_order_relaxed);
  bytes_read_.fetch_add(bytes, std::memory_order_relaxed);
  if (!hash.ok()) return hash.status();
  auto after = StatFile(path);
  if (after.ok() && *after == before) {
    Entry entry;
    entry.identity = before;
    entry.hash = *hash;
    entry.trusted = absl::FromUnixNanos(before.ctime_ns) + racy_window_ <= started;
    if (text != nullptr && content.size() <= kMaxCachedTextBytes) {
      entry.text = std::make_shared<const std::string>(content);
    }
    absl::MutexLock lock(&mu_);
    entries_[model_dir].insert_or_assign(relative_path, std::move(entry));
  }
  // Otherwise the file changed while it was read: the hash describes what was
  // read (the snapshot's fingerprint), and nothing is remembered, so the next
  // fingerprint reads it again.
  if (text != nullptr) *text = std::move(content);
  return *hash;
}

void FileHashCache::Retain(const std::string& model_dir, const std::vector<std::string>& present) {
  absl::MutexLock lock(&mu_);
  auto folder = entries_.find(model_dir);
  if (folder == entries_.end()) return;
  auto& files = folder->second;
  for (auto it = files.begin(); it != files.end();) {
    if (std::binary_search(present.begin(), present.end(), it->first)) {
      ++it;
    } else {
      it = files.erase(it);
    }
  }
  if (files.empty()) entries_.erase(folder);
}

void FileHashCache::Forget(const std::string& model_dir) {
  absl::MutexLock lock(&mu_);
  entries_.erase(model_dir);
}

void FileHashCache::RetainModels(const std::vector<std::string>& model_dirs) {
  std::vector<std::string> keep = model_dirs;
  std::sort(keep.begin(), keep.end());
  absl::MutexLock lock(&mu_);
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (std::binary_search(keep.begin(), keep.end(), it->first)) {
      ++it;
    } else {
      it = entries_.erase(it);
    }
  }
}

FileHashCache::Stats FileHashCache::stats() const {
  Stats stats;
  stats.files_read = files_read_.load(std::memory_order_relaxed);
  stats.bytes_read = bytes_read_.load(std::memory_order_relaxed);
  stats.files_reused = files_reused_.load(std::memory_order_relaxed);
  absl::MutexLock lock(&mu_);
  for (const auto& [dir, files] : entries_) stats.entries += files.size();
  return stats;
}

std::optional<int64_t> ParseVersionNumber(std::string_view text) {
  int64_t version = 0;
  if (text.empty()) return std::nullopt;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), version);
  if (ec != std::errc() || end != text.data() + text.size() || version < 0) return std::nullopt;
  return version;
}

absl::StatusOr<ModelSnapshot> ReadModelSnapshot(const std::string& repository, const std::string& name,
                                                FileHashCache* cache) {
  FileHashCache local;  // Without a cache every file is read, as each fingerprint starts empty.
  FileHashCache& hashes = cache != nullptr ? *cache : local;
  ModelSnapshot snapshot;
  snapshot.name = name;
  const fs::path dir = fs::path(repository) / name;
  snapshot.dir = dir.string();
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    hashes.Forget(snapshot.dir);
    return absl::NotFoundError(StrCat("model folder '", dir.string(), "' does not exist"));
  }
  std::vector<std::string> seen;
  // config.pbtxt is hashed with the other top-level files, and its text comes
  // from the same read (or the cache), so text and fingerprint agree.
  auto model_hash = HashTree(
      hashes, dir, "", [](const std::string& top) { return ParseVersionNumber(top).has_value(); }, &seen,
      "config.pbtxt", &snapshot.config_text, &snapshot.has_config);
  if (!model_hash.ok()) return model_hash.status();
  snapshot.model_fingerprint = *model_hash;

  uint64_t all = Mix(snapshot.model_fingerprint, "model");
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code type_ec;
    if (!it->is_directory(type_ec)) continue;
    const std::string folder = it->path().filename().string();
    auto version = ParseVersionNumber(folder);
    if (!version) continue;
    auto version_hash = HashTree(hashes, dir, folder, [](const std::string&) { return false; }, &seen);
    if (!version_hash.ok()) return version_hash.status();
    snapshot.version_fingerprints[*version] = *version_hash;
  }
  if (ec) return absl::InternalError(StrCat("cannot list '", dir.string(), "': ", ec.message()));
  for (const auto& [version, h] : snapshot.version_fingerprints) {
    all = Mix(all, StrCat(version, ":", h));
  }
  snapshot.fingerprint = all;
  std::sort(seen.begin(), seen.end());
  hashes.Retain(snapshot.dir, seen);
  return snapshot;
}

absl::StatusOr<std::vector<std::string>> ListModelNames(const std::string& repository) {
  std::error_code ec;
  if (!fs::is_directory(repository, ec)) {
    return absl::NotFoundError(StrCat("model repository '", repository, "' is not a directory"));
  }
  std::vector<std::string> names;
  for (fs::directory_iterator it(repository, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code type_ec;
    if (!it->is_directory(type_ec)) continue;
    std::string name = it->path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    names.push_back(std::move(name));
  }
  std::sort(names.begin(), names.end());
  return names;
}

absl::StatusOr<std::vector<std::string>> ListLoadableModelNames(const std::string& repository) {
  ASSIGN_OR_RETURN(std::vector<std::string> names, ListModelNames(repository));
  std::erase_if(names, [&](const std::string& name) {
    // A plain folder's name has no '/' or NUL; only the other name rules
    // apply. A symlinked one must also resolve inside the repository.
    if (name.find('\\') != std::string::npos || name.find("..") != std::string::npos) return true;
    std::error_code ec;
    return fs::is_symlink(fs::path(repository) / name, ec) && !ValidateModelName(repository, name).ok();
  });
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

namespace {

bool Within(const std::filesystem::path& path, const std::filesystem::path& root) {
  auto p = path.begin();
  for (auto r = root.begin(); r != root.end(); ++r, ++p) {
    if (r->empty()) continue;  // A trailing separator.
    if (p == path.end() || *p != *r) return false;
  }
  return true;
}

}  // namespace

absl::Status CheckLinksStayInside(const std::string& repository, const std::string& model_dir,
                                  const std::vector<std::string>& extra_roots) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::vector<fs::path> roots;
  for (const std::string& root : [&] {
         std::vector<std::string> all = {repository};
         all.insert(all.end(), extra_roots.begin(), extra_roots.end());
         return all;
       }()) {
    fs::path canonical = fs::canonical(root, ec);
    if (!ec) roots.push_back(std::move(canonical));
  }
  auto check = [&](const fs::path& link) -> absl::Status {
    std::error_code resolve_ec;
    const fs::path target = fs::canonical(link, resolve_ec);
    if (resolve_ec) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", link.string(), "' is a symbolic link that leads nowhere (", resolve_ec.message(), ")"));
    }
    for (const fs::path& root : roots) {
      if (Within(target, root)) return absl::OkStatus();
    }
    return absl::InvalidArgumentError(absl::StrCat("'", link.string(), "' is a symbolic link to '", target.string(),
                                                   "', outside the model repository"));
  };
  // A model folder that is itself a link was put there by the operator (a
  // request can never name one that leads outside: ValidateModelName); the
  // files under it may live where it leads.
  if (fs::is_symlink(model_dir, ec)) {
    fs::path canonical = fs::canonical(model_dir, ec);
    if (ec) return check(model_dir);
    roots.push_back(std::move(canonical));
  }
  ec.clear();
  for (fs::recursive_directory_iterator it(model_dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code link_ec;
    if (it->is_symlink(link_ec)) {
      if (absl::Status status = check(it->path()); !status.ok()) return status;
    }
  }
  if (ec) return absl::InternalError(absl::StrCat("cannot list ", model_dir, ": ", ec.message()));
  return absl::OkStatus();
}

absl::StatusOr<ModelSource::Changes> ModelSource::Poll(
    const std::map<std::string, std::optional<uint64_t>>& known) {
  ASSIGN_OR_RETURN(std::vector<std::string> present, ListModels());
  Changes changes;
  RetainOnly(present);  // Models gone from the repository leave the cache.
  for (const auto& name : present) {
    // A file source stats every file and reads only those whose identity changed.
    auto snapshot = Read(name);
    auto it = known.find(name);
    if (!snapshot.ok() || it == known.end() || !it->second || *it->second != snapshot->fingerprint) {
      changes.changed.push_back(name);
    }
  }
  const std::set<std::string> listed(present.begin(), present.end());
  for (const auto& [name, fingerprint] : known) {
    if (listed.count(name) == 0) changes.removed.push_back(name);
  }
  return changes;
}

FileSystemModelSource::FileSystemModelSource(Options options)
    : options_(std::move(options)), hash_cache_(options_.file_hash_cache) {}

absl::StatusOr<std::vector<std::string>> FileSystemModelSource::ListModels() {
  return ListModelNames(options_.repository_path);
}

absl::StatusOr<std::vector<std::string>> FileSystemModelSource::ListLoadableModels() {
  return ListLoadableModelNames(options_.repository_path);
}

absl::StatusOr<ModelSnapshot> FileSystemModelSource::Read(const std::string& name) {
  return ReadModelSnapshot(options_.repository_path, name, &hash_cache_);
}

absl::StatusOr<std::string> FileSystemModelSource::ReadConfigText(const std::string& name) {
  const fs::path path = fs::path(options_.repository_path) / name / "config.pbtxt";
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(StrCat("cannot read ", path.string()));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void FileSystemModelSource::RetainOnly(const std::vector<std::string>& present) {
  std::vector<std::string> dirs;
  dirs.reserve(present.size());
  for (const auto& name : present) dirs.push_back((fs::path(options_.repository_path) / name).string());
  hash_cache_.RetainModels(dirs);
}

absl::Status FileSystemModelSource::ValidateName(std::string_view name) const {
  return ValidateModelName(options_.repository_path, name);
}

absl::Status FileSystemModelSource::CheckFiles(const ModelSnapshot& snapshot) const {
  return CheckLinksStayInside(options_.repository_path, snapshot.dir, options_.link_roots);
}

}  // namespace ortserve::repository
