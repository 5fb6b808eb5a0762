// SPDX-License-Identifier: Apache-2.0
// Model source: where models come from. ModelSource is the seam the manager
// reads through (list, read and fingerprint a model, poll for changes, check
// names); FileSystemModelSource implements it over a Triton-layout folder,
// fingerprinting by content (re-reading only files whose stat identity
// changed); tests use FakeModelSource (tests/fakes/fake_model_source.h).
// Below it: the free functions that keep request-supplied names and
// config-supplied file names inside the repository.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/clock.h"

namespace ortserve::repository {

// What stat(2) says about a file, enough to tell that it may have changed:
// any write, truncate, rename over it, chmod or utimes moves its ctime, which
// no user can set (`touch -d` sets the mtime only).
struct FileIdentity {
  uint64_t device = 0;
  uint64_t inode = 0;
  uint64_t size = 0;
  int64_t mtime_ns = 0;  // Nanoseconds since the Unix epoch.
  int64_t ctime_ns = 0;
  bool operator==(const FileIdentity&) const = default;
};

// Remembers the content hash of each file a fingerprint read, under the file's
// stat identity, so that the next fingerprint of an unchanged folder stats its
// files instead of reading them. Detection stays by content: a file is read
// and hashed again whenever its identity changed (also when only the ctime
// did: a rewrite that restores the old mtime is seen), and the fingerprint is
// built from the hashes, so a `touch` that leaves the bytes alone is still no
// change.
//
// Racy files. Filesystem timestamps advance in coarse ticks (a few
// milliseconds on Linux, seconds on some filesystems), so a file written
// again within the tick its hash was taken in keeps its identity. A hash is
// therefore reused only when the file's ctime is at least `racy_window`
// older than the moment the hash was started (read from `clock`); a newer
// file is read again at the next fingerprint, by which time it has aged (the
// same rule as git's "racily clean" index entries). A file whose identity
// changes while it is read is never cached.
//
// Bounds: entries are grouped by model folder; each fingerprint of a folder
// drops the entries of its files that are gone, Forget drops a folder and
// RetainModels drops every folder not named. Small files read for their text
// (config.pbtxt, at most kMaxCachedTextBytes) keep the text with the entry.
//
// Thread-safe: polls and loads fingerprint from different threads. The lock
// guards only the map, never a read of a file; two threads hashing the same
// file at once both read it, and either result is valid for its identity.
// Errors: Internal when a file cannot be stat'ed or read.
class FileHashCache {
 public:
  struct Options {
    // Time for the racy check; compared with file ctimes, so it must follow
    // the real clock (tests move a FakeClock past the files they wrote).
    // Not owned; null: Clock::Real().
    const Clock* clock = nullptr;
    // See "Racy files" above. Covers the timestamp tick of common local and
    // network filesystems.
    absl::Duration racy_window = absl::Seconds(2);
  };
  static constexpr size_t kMaxCachedTextBytes = size_t{1} << 20;

  // Counters since construction (relaxed; for logs and tests).
  struct Stats {
    uint64_t files_read = 0;   // Files opened and hashed.
    uint64_t bytes_read = 0;   // Their bytes.
    uint64_t files_reused = 0;  // Hashes taken from the cache, the file not opened.
    size_t entries = 0;        // Files remembered now.
  };

  FileHashCache();  // Default Options.
  explicit FileHashCache(Options options);

  // The content hash of `model_dir`/`relative_path` (independent of its name
  // and of any other file). With `text` non-null also its bytes. Remembers
  // the file under `model_dir`.
  absl::StatusOr<uint64_t> HashFile(const std::string& model_dir, const std::string& relative_path,
                                    std::string* text = nullptr);
  // Drops the entries of `model_dir` whose relative path is not in `present`
  // (sorted).
  void Retain(const std::string& model_dir, const std::vector<std::string>& present);
  // Drops every entry of `model_dir`.
  void Forget(const std::string& model_dir);
  // Drops the entries of every model folder not in `model_dirs`.
  void RetainModels(const std::vector<std::string>& model_dirs);

  Stats stats() const;

 private:
  struct Entry {
    FileIdentity identity;
    uint64_t hash = 0;
    bool trusted = false;  // Not racy: the hash may be reused while `identity` holds.
    std::shared_ptr<const std::string> text;  // When read for its text and small.
  };

  const Clock* const clock_;
  const absl::Duration racy_window_;
  mutable absl::Mutex mu_;
  // Model folder -> path relative to it -> entry.
  std::map<std::string, std::map<std::string, Entry, std::less<>>, std::less<>> entries_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> files_read_{0};
  std::atomic<uint64_t> bytes_read_{0};
  std::atomic<uint64_t> files_reused_{0};
};

// One model folder as read at one moment. Fingerprints hash file names, sizes
// and bytes (never mtimes), so an edit that keeps the size and the timestamp is
// still seen, and a `touch` alone is not a change.
struct ModelSnapshot {
  std::string name;
  std::string dir;                 // <repository>/<name>
  bool has_config = false;         // config.pbtxt exists.
  std::string config_text;         // Its content when present.
  uint64_t model_fingerprint = 0;  // config.pbtxt and every file outside version folders.
  // Per version folder found (a folder whose name is a non-negative integer).
  std::map<int64_t, uint64_t> version_fingerprints;
  // Everything above together: equal values mean nothing on disk changed.
  uint64_t fingerprint = 0;
};

// Reads `<repository>/<name>` and fingerprints it. Files whose stat identity
// `cache` remembers unchanged are not read again (see FileHashCache); null:
// every file is read. Errors: NotFound when the folder does not exist (its
// cache entries are dropped); Internal when a file cannot be read.
absl::StatusOr<ModelSnapshot> ReadModelSnapshot(const std::string& repository, const std::string& name,
                                                FileHashCache* cache = nullptr);

// The model folders in `repository` (sorted; hidden folders skipped).
// Errors: NotFound when `repository` is not a directory.
absl::StatusOr<std::vector<std::string>> ListModelNames(const std::string& repository);

// ListModelNames less the folders a request could not name
// (ValidateModelName fails: a symlink resolving outside the repository, a
// name with '..' or '\\'). One directory listing; only symlinked folders
// cost a path resolution. Never reads a config. Errors: NotFound when
// `repository` is not a directory; Internal when it cannot be listed.
absl::StatusOr<std::vector<std::string>> ListLoadableModelNames(const std::string& repository);

// A model name as it arrives in a request (URL segment, gRPC field): not
// empty, no '/', '\\' or NUL, no "..", not starting with '.', and — with the
// repository path resolved through symlinks — naming a direct child of the
// repository. Errors: InvalidArgument naming the offending name.
absl::Status ValidateModelName(const std::string& repository, std::string_view name);

// A file name a config gives (default_model_filename, label_filename,
// warm-up input_data_file): relative, no "..", no NUL, `field` names the
// config field in the error. Errors: InvalidArgument.
absl::Status ValidateRelativeFileName(std::string_view field, std::string_view file_name);

// Every symbolic link under `model_dir` (links not followed while walking)
// must resolve inside `repository`, one of `extra_roots`, or — when
// `model_dir` is itself a link, which only the operator can place — where
// it leads: a model folder cannot make the server read files from elsewhere
// on the host (issue #14.8). A dangling link is refused too.
// Errors: InvalidArgument naming the link and where it leads.
absl::Status CheckLinksStayInside(const std::string& repository, const std::string& model_dir,
                                  const std::vector<std::string>& extra_roots = {});

// Parses a version folder name; nullopt if it is not a non-negative integer.
std::optional<int64_t> ParseVersionNumber(std::string_view text);

// Where models come from: lists the models, reads one as a ModelSnapshot,
// says which changed since they were last read, and checks names a request
// gives. It only reads; the ModelManager decides what to load (TF Serving's
// Source says which versions should exist; its manager owns them).
//
// Thread-safe: the poller and the loader threads call it at once.
class ModelSource {
 public:
  virtual ~ModelSource() = default;

  // The models present, sorted. Errors: NotFound when there is no repository.
  virtual absl::StatusOr<std::vector<std::string>> ListModels() = 0;
  // ListModels less those a request could not name (see
  // ListLoadableModelNames). Reads no config.
  virtual absl::StatusOr<std::vector<std::string>> ListLoadableModels() = 0;
  // Model `name` as it is now. Errors: NotFound when it is not there,
  // Internal when it cannot be read.
  virtual absl::StatusOr<ModelSnapshot> Read(const std::string& name) = 0;
  // The model's config text alone (no fingerprint). Errors: NotFound.
  virtual absl::StatusOr<std::string> ReadConfigText(const std::string& name) = 0;
  // Forgets what it remembers about models not in `present` (sorted).
  virtual void RetainOnly(const std::vector<std::string>& present) = 0;
  // A model name from a request. Errors: InvalidArgument.
  virtual absl::Status ValidateName(std::string_view name) const = 0;
  // The model's files may be read (no link leads out of the repository).
  // Errors: InvalidArgument naming the file.
  virtual absl::Status CheckFiles(const ModelSnapshot& snapshot) const = 0;
  // What change detection read and reused (zeros when it keeps no cache).
  virtual FileHashCache::Stats stats() const { return {}; }

  struct Changes {
    std::vector<std::string> changed;  // New, changed, unreadable or not yet read.
    std::vector<std::string> removed;  // Known but no longer listed.
  };
  // One poll: every listed model is read and compared with `known` (name ->
  // fingerprint of its last read; nullopt: never read completely), and
  // memory of models no longer listed is dropped. Errors: ListModels'.
  absl::StatusOr<Changes> Poll(const std::map<std::string, std::optional<uint64_t>>& known);
};

// ModelSource over a Triton-layout repository folder. Thread-safe.
class FileSystemModelSource final : public ModelSource {
 public:
  struct Options {
    std::string repository_path;
    // Where symbolic links inside model folders may lead besides the
    // repository (see CheckLinksStayInside).
    std::vector<std::string> link_roots;
    FileHashCache::Options file_hash_cache;
  };
  explicit FileSystemModelSource(Options options);

  absl::StatusOr<std::vector<std::string>> ListModels() override;
  absl::StatusOr<std::vector<std::string>> ListLoadableModels() override;
  absl::StatusOr<ModelSnapshot> Read(const std::string& name) override;
  absl::StatusOr<std::string> ReadConfigText(const std::string& name) override;
  void RetainOnly(const std::vector<std::string>& present) override;
  absl::Status ValidateName(std::string_view name) const override;
  absl::Status CheckFiles(const ModelSnapshot& snapshot) const override;
  FileHashCache::Stats stats() const override { return hash_cache_.stats(); }

 private:
  const Options options_;
  FileHashCache hash_cache_;
};

}  // namespace ortserve::repository
