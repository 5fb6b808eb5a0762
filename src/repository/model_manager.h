// SPDX-License-Identifier: Apache-2.0
// ModelManager: owns every model version the server serves, loads them from a
// Triton-layout repository, swaps new versions in safely, and hands out
// handles that pin a version for the life of a request.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "backend/session.h"
#include "core/model_stats.h"
#include "repository/lazy_loading.h"
#include "repository/model_config.h"
#include "repository/model_provider.h"
#include "repository/model_source.h"
#include "repository/model_version.h"
#include "repository/loader.h"
#include "repository/loader_pool.h"
#include "repository/release_queue.h"
#include "repository/repository_poller.h"
#include "scheduler/scheduler.h"

namespace ortserve::pipeline {
class TextPipeline;
}  // namespace ortserve::pipeline

namespace ortserve::observability {
class Metrics;
}  // namespace ortserve::observability

namespace ortserve::repository {

// Loads, swaps and releases model versions.
//
// Safe swaps (Triton's rule: a version replaces another only once READY):
//  - a load reads the model folder, then creates sessions, runs the config's
//    model_warmup on them and builds the scheduler on a loader thread, without
//    holding the manager's lock, so requests to every model keep flowing;
//  - the new handle is published under the lock in one step; requests that
//    already hold the old handle finish on the old version;
//  - when a load or warm-up fails, whatever served before keeps serving
//    (automatic rollback); the error shows in Index() (the version's reason),
//    LastLoadError() and the `error` log callback;
//  - versions the version policy no longer selects are retired only once
//    every selected version is READY.
//
// Releasing: a version is destroyed when its last handle goes away, wherever
// that happens (often on one of its own runner threads, in a completion
// callback); the handle's deleter hands it to the manager's release thread,
// which destroys it there. So an unloaded or swapped-out version drains its
// admitted requests first and is released afterwards, never on a request
// thread.
//
// Change detection (poll mode, and explicit reloads): a model folder is
// fingerprinted by content (config.pbtxt, other files, every version folder's
// files); only versions whose fingerprint changed are loaded again. The
// content hash of each file is remembered under its stat identity (device,
// inode, size, mtime and ctime in nanoseconds; see FileHashCache), so a poll
// of an unchanged repository stats its files and reads none; a file is read
// again only when its identity changed. The cache is shared by the poller
// and the loader threads (it is thread-safe) and holds only files present at
// their model's last fingerprint, of model folders present at the last poll.
//
// Index in kExplicit mode: besides the models known to the manager, every
// loadable model folder of the repository (ListLoadableModelNames: one
// listing of the repository folder, no config read) is listed by name only,
// UNAVAILABLE with reason kNeverLoadedReason, so that a client can discover
// what it could load. The listing is taken at each Index() call, before and
// outside the manager's lock: a folder copied in shows at once (there is no
// poller in this mode), and the call never waits on a load.
//
// Lazy loading (config `lazy_loading { enable: true }`): every scan of the
// repository (LoadAll in every control mode, PollOnce) registers such a model
// without loading it: Index() lists its versions as UNAVAILABLE with reason
// kLazyNotLoadedReason, GetModel answers Unavailable. The first
// AcquireModelAsync for it starts one load on a loader thread; requests that
// come meanwhile wait on that same load. A request still waiting after
// load_timeout_ms is answered Unavailable with a kRetryAfterPayload while the
// load goes on. Once loaded it behaves as any model, plus: unused for
// idle_unload_seconds (see ModelVersion::last_used_ns) it unloads and goes
// back to "not loaded"; and after any load, while the loaded versions'
// memory_bytes add up to more than Options::memory_budget_bytes, the least
// recently used lazy models (never the one just loaded, never a non-lazy
// one: nothing would load it again) are unloaded. Unloads let admitted
// requests finish, as UnloadModel does. In kExplicit mode LoadModel loads a
// lazy model at once, and UnloadModel turns lazy loading off for it until
// the next LoadModel. A lazy load that fails answers its waiters with the
// error; the next load is tried at most once a second. The manager does the
// loads and unloads; when to do them is LruLazyLoading's (lazy_loading.h),
// which the manager calls and which asks back through LazyModelHost.
//
// Thread-safe. Threads owned: `load_threads` loader threads, one release
// thread, the lazy layer's janitor thread (waiter timeouts, idle unloads),
// and in poll mode with a poll interval a RepositoryPoller's thread.
class ModelManager : public ModelProvider, private LazyModelHost {
 public:
  struct Options {
    std::string repository_path;
    // Where symbolic links inside model folders may lead besides the
    // repository (a staged single-file layout's source folder); links
    // elsewhere fail the load (CheckLinksStayInside).
    std::vector<std::string> link_roots;
    // Where models come from (tests: FakeModelSource). Not owned; outlives
    // the manager. Null: a FileSystemModelSource over repository_path,
    // link_roots and file_hash_cache.
    ModelSource* source = nullptr;
    // Builds versions through a SessionLoader over it. Not owned.
    backend::SessionFactory* session_factory = nullptr;
    // Builds versions instead of a SessionLoader (tests: FakeLoader). Not
    // owned; outlives the manager. One of the two is required.
    Loader* loader = nullptr;
    // Time for lazy loading (waiter deadlines, idle unloads, retry backoff),
    // load durations and the poll interval. Not owned; null: Clock::Real().
    // A scheduler::ObservableClock (tests' FakeClock) wakes the lazy janitor
    // and the poller whenever it moves, so tests advance time instead of
    // sleeping.
    Clock* clock = nullptr;
    int load_threads = 4;
    ModelControlMode control_mode = ModelControlMode::kNone;
    // kExplicit: the models LoadAll loads ("*": all of them).
    std::vector<std::string> startup_models;
    // kPoll: LoadAll starts a poller that calls PollOnce at this interval.
    // Zero: no poller thread (tests call PollOnce themselves).
    absl::Duration poll_interval = absl::ZeroDuration();
    // Called with each config warning (e.g. an unsupported field), once per load.
    std::function<void(const std::string&)> warn;
    // Called with each load failure and each model loaded, unloaded or swapped.
    // From loader threads; must not call back into the manager.
    std::function<void(const std::string&)> error;
    std::function<void(const std::string&)> info;
    // Per-version Prometheus series are resolved here at load. Not owned;
    // outlives the manager. Null: no metrics.
    observability::Metrics* metrics = nullptr;
    // Sum of ModelVersion::memory_bytes the loaded versions may reach before
    // lazy models are evicted, least recently used first. 0: no budget.
    uint64_t memory_budget_bytes = 0;
    // Called for each lazy-loading event (also logged through `info`). From
    // loader or janitor threads, never with a manager lock held; must not
    // block.
    std::function<void(std::string_view model, LazyEvent event)> lazy_event;
    // Called when a loaded version is released: unloaded, swapped out or
    // retired, and drained of its requests (or at shutdown). From the release
    // thread, never with a manager lock held; must not call into the manager.
    std::function<void(const std::string& model, const std::string& version)> released;
    // How long Shutdown waits for the loader threads once it has cancelled
    // the loads in progress (a warm-up stops within one model run; creating
    // a session cannot be interrupted). Past it Shutdown reports the stuck
    // loads through `error` and returns; the destructor joins them.
    absl::Duration stop_loads_timeout = absl::Seconds(10);
    // The file-hash cache of change detection (its clock, racy window).
    FileHashCache::Options file_hash_cache;
  };

  static absl::StatusOr<std::unique_ptr<ModelManager>> Create(Options options);
  ~ModelManager();

  // Loads the models the control mode calls for at start (kNone, kPoll: every
  // model folder; kExplicit: `startup_models`) on the loader threads and
  // returns when all loads have finished; in kPoll then starts the poller. A
  // model that fails is recorded as UNAVAILABLE with its reason; it never
  // stops the others. Errors: NotFound when the repository path is not a
  // directory.
  absl::Status LoadAll();

  // Reads the repository once and follows it: new models and versions load,
  // changed ones reload (safe swap), removed versions and models unload.
  // Returns when the loads it started have finished. Errors: NotFound when
  // the repository is not a directory (nothing is unloaded then).
  absl::Status PollOnce();

  // kExplicit only: loads model `name`, or reloads what changed of it.
  // `config_json`: a config override in Triton's JSON form (the protobuf JSON
  // mapping of ModelConfig) used instead of config.pbtxt; empty: the folder's
  // config. Runs on a loader thread; the blocking form waits for it, the
  // async form calls `done` once, from a loader thread (or inline when the
  // request is rejected up front). Errors: InvalidArgument (a name that could
  // leave the repository, a config that does not parse), NotFound (no such
  // model folder), FailedPrecondition (not in kExplicit mode), Unavailable
  // (shutting down), and the load's own error (then the previous versions,
  // if any, still serve).
  absl::Status LoadModel(std::string_view name, std::string_view config_json = {});
  void LoadModelAsync(std::string name, std::string config_json, std::function<void(absl::Status)> done);

  // kExplicit only: stops serving every version of `name`. A load of it in
  // progress is cancelled first (its warm-up stops within one run; the load
  // answers Cancelled), so the unload does not wait for a long warm-up.
  // Requests already admitted finish; each version is released once
  // drained. Errors:
  // InvalidArgument (bad name), NotFound (model not known),
  // FailedPrecondition (not in kExplicit mode).
  absl::Status UnloadModel(std::string_view name);
  void UnloadModelAsync(std::string name, std::function<void(absl::Status)> done);

  // The version to serve. `version` empty: the highest ready version.
  // Errors: NotFound (unknown model or version), Unavailable (known but not
  // ready, with the reason), InvalidArgument (a version that is not a number).
  absl::StatusOr<ModelHandle> GetModel(std::string_view name, std::string_view version) const override;

  // The path every request takes to its model version, lazy or not.
  //  - `name` READY (at `version`; empty: the highest ready): `done` runs
  //    inline with the handle, at the cost of GetModel.
  //  - a lazy model not loaded: its load starts on a loader thread (or the
  //    request joins the one in progress); `done` runs from the loader
  //    thread with the handle or the load's error, or, after the model's
  //    load_timeout_ms, from the janitor thread with Unavailable "model 'x'
  //    is loading (lazy); retry later" carrying kRetryAfterPayload.
  //  - anything else: `done` runs inline with GetModel's error (NotFound,
  //    InvalidArgument, Unavailable); Unavailable "server is shutting down"
  //    once Shutdown started.
  // `done` runs exactly once and never with a manager lock held; the caller
  // thread never blocks. The handle given to `done` is Touch()ed.
  void AcquireModelAsync(std::string name, std::string version,
                         std::function<void(absl::StatusOr<ModelHandle>)> done) override;

  // Every model and version the manager knows, sorted by name then version;
  // in kExplicit mode also each loadable model folder it does not know, by
  // name only (version empty), UNAVAILABLE with kNeverLoadedReason. Takes the
  // manager's lock only briefly (never across a load); in kExplicit mode
  // lists the repository folder first (an unreadable repository lists no
  // extra folders).
  std::vector<ModelIndexEntry> Index() const;

  // What change detection has read from disk and reused (see FileHashCache).
  FileHashCache::Stats file_hash_stats() const { return source_->stats(); }

  // The last failed load of `name` (config, load or warm-up error), empty
  // when its last load succeeded or the model is unknown.
  std::string LastLoadError(std::string_view name) const;
  // The READY versions of `name`, in numeric order (empty when none or the
  // model is unknown). A map lookup: unlike Index(), no directory listing.
  std::vector<std::string> ReadyVersions(std::string_view name) const;

  // Versions loaded and not yet released (served, retired but still draining,
  // or waiting on the release thread).
  size_t LiveVersionCount() const;
  // Waits (real time) until LiveVersionCount() <= n; false on timeout.
  bool WaitForLiveVersions(size_t n, absl::Duration timeout) const;

  ModelControlMode control_mode() const { return options_.control_mode; }

  // Stops the poller, answers requests waiting on lazy loads Unavailable
  // ("server is shutting down"), stops the lazy layer's janitor, cancels the
  // loads in progress (warm-ups stop within one run) and waits for the loaders (at
  // most Options::stop_loads_timeout), then stops every scheduler (intake
  // stops, admitted requests finish), then releases what is left.
  // Idempotent.
  void Shutdown();

 private:
  struct VersionSlot {
    ModelState state = ModelState::kLoading;
    std::string reason;
    ModelHandle handle;
    uint64_t loaded_fingerprint = 0;  // Of `handle`'s files and config.
  };
  struct ModelEntry {
    std::string reason;      // A model-level failure (bad config, no versions).
    std::string last_error;  // The last failed load, cleared by a clean one.
    std::map<int64_t, VersionSlot> versions;
    uint64_t scan_fingerprint = 0;  // The folder as the last load attempt read it.
    bool scanned = false;
    // Lazy loading, from the last config read (see the class comment).
    bool lazy = false;
    absl::Duration lazy_load_timeout;
    absl::Duration lazy_idle_unload;  // Zero: never.
    // When a version of it was last published, in publish order (the
    // memory budget: see LruLazyLoading).
    uint64_t published_seq = 0;
  };
  // The model as the lazy layer sees it. Reads the versions' atomics; call
  // with mu_ held (the versions map).
  static LazyModelUse UseOf(const std::string& name, const ModelEntry& entry);
  // Why ReloadModel runs: a repository scan registers lazy models without
  // loading them; an explicit LoadModel or a lazy acquire loads them.
  enum class LoadReason { kScan, kExplicit, kLazyAcquire };

  explicit ModelManager(Options options);
  // Loads or reloads `name` from the repository (serialised per model).
  // `config_json`: null for the folder's config.
  // `loaded_any` (optional) is set when a version was loaded and published.
  absl::Status ReloadModel(const std::string& name, const std::string* config_json, LoadReason reason,
                           bool* loaded_any = nullptr);
  // ReloadModel, then the lazy layer's memory budget.
  absl::Status ReloadAndEnforceBudget(const std::string& name, const std::string* config_json, LoadReason reason);
  // `previous`: the version being replaced (null if none); its sessions are
  // reused when `files_fingerprint` and the session options are unchanged.
  absl::StatusOr<ModelHandle> LoadVersion(const std::string& name, const std::string& model_dir,
                                          int64_t version, const ModelConfig& base_config,
                                          uint64_t files_fingerprint, const ModelHandle& previous,
                                          backend::CancelToken& cancel);
  absl::Status UnloadModelNow(const std::string& name, std::string_view why);
  // Cancels the load of `name` in progress, if any (its warm-up stops within
  // one run; see backend::CancelToken).
  void CancelLoad(const std::string& name, std::string why);
  absl::StatusOr<ModelHandle> GetModelLocked(std::string_view name, std::string_view version) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // True when the folder's config.pbtxt parses and enables lazy loading.
  bool ConfigSaysLazy(const std::string& name) const;
  // LazyModelHost (model_manager_lazy.cc).
  std::optional<LazyModelUse> Use(std::string_view name) const override;
  std::vector<LazyModelUse> Uses() const override;
  absl::Status LoadLazy(const std::string& name, bool* loaded_any) override;
  size_t UnloadLazy(const std::string& name, const std::function<bool(const LazyModelUse&)>& still) override;
  bool Submit(std::function<void()> task) override;
  absl::Status CheckExplicit(std::string_view what, std::string_view name) const;
  absl::Mutex* ModelLoadLock(const std::string& name);
  void RecordFailure(const std::string& name, const std::string& message, uint64_t scan_fingerprint);

  const Options options_;
  Clock* const clock_;
  std::unique_ptr<Loader> owned_loader_;  // The SessionLoader when Options::loader is null.
  Loader* loader_ = nullptr;              // options_.loader or owned_loader_.
  std::unique_ptr<ModelSource> owned_source_;  // When Options::source is null.
  ModelSource* source_ = nullptr;              // Thread-safe on its own.
  std::shared_ptr<ReleaseQueue> releases_;
  uint64_t publish_seq_ ABSL_GUARDED_BY(mu_) = 0;
  std::unique_ptr<LoaderPool> loaders_;

  mutable absl::Mutex mu_;
  std::map<std::string, ModelEntry, std::less<>> models_ ABSL_GUARDED_BY(mu_);
  // One per model name ever loaded; held across that model's load, never
  // together with mu_ held first.
  std::map<std::string, std::unique_ptr<absl::Mutex>, std::less<>> load_locks_ ABSL_GUARDED_BY(mu_);
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  // The cancel token of each load in progress, by model name (loads of one
  // model are serialised, so at most one each).
  std::map<std::string, std::shared_ptr<backend::CancelToken>, std::less<>> load_cancels_ ABSL_GUARDED_BY(mu_);

  // Never called with mu_ held (it reads the manager under its own lock).
  std::unique_ptr<LazyLoadingPolicy> lazy_;
  // Started by LoadAll in kPoll mode; stopped first by Shutdown.
  absl::Mutex poller_mu_;
  std::unique_ptr<RepositoryPoller> poller_ ABSL_GUARDED_BY(poller_mu_);
};

}  // namespace ortserve::repository
