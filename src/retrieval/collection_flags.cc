// SPDX-License-Identifier: Apache-2.0
#include "retrieval/collection_flags.h"

#include <CLI/CLI.hpp>

namespace ortserve::retrieval {

void AddCollectionFlags(CLI::App& app, CollectionFlags* flags) {
  app.add_option("--collections-dir", flags->dir,
                 "Keep vector collections (/v1/collections, docs/retrieval.md) under this directory; unset: off");
  app.add_option("--collections-fsync", flags->fsync,
                 "When the collection log is flushed to disk: always (before a write is acknowledged; survives a "
                 "power loss) or never (survives a process crash only)")
      ->capture_default_str()
      ->check(CLI::IsMember({"always", "never"}));
  app.add_option("--collections-snapshot-bytes", flags->snapshot_bytes,
                 "Snapshot a collection and empty its log once the log passes this many bytes")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t{1} << 16, uint64_t{1} << 40));
  app.add_option("--collections-max-bytes", flags->max_bytes,
                 "The largest memory bound (max_bytes) a collection may be created with")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t{1} << 16, uint64_t{1} << 40));
  app.add_option("--collections-max-per-tenant", flags->max_per_tenant, "Collections one tenant may hold")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
}

absl::StatusOr<std::unique_ptr<CollectionStore>> OpenCollectionStore(const CollectionFlags& flags) {
  if (flags.dir.empty()) return std::unique_ptr<CollectionStore>();
  auto fsync = ParseFsyncPolicy(flags.fsync);
  if (!fsync.ok()) return fsync.status();
  CollectionStore::Options options;
  options.dir = flags.dir;
  options.fsync = *fsync;
  options.snapshot_log_bytes = flags.snapshot_bytes;
  options.max_collection_bytes = flags.max_bytes;
  options.max_collections_per_tenant = static_cast<size_t>(flags.max_per_tenant);
  return CollectionStore::Open(std::move(options));
}

}  // namespace ortserve::retrieval
