// SPDX-License-Identifier: Apache-2.0
// The server's collection flags, parsed here so that src/server adds a few
// lines (as alerts/alert_flags.h does; at start-up, on the main thread):
//
//   retrieval::CollectionFlags collection_flags;
//   retrieval::AddCollectionFlags(app, &collection_flags);       // before app.parse
//   ASSIGN_OR_RETURN(store, retrieval::OpenCollectionStore(collection_flags));  // null: off
//
//   --collections-dir DIR              where collections live; unset: /v1/collections is off
//   --collections-fsync always|never   fdatasync the log before acknowledging (default always)
//   --collections-snapshot-bytes N     snapshot a collection once its log passes N bytes (default 64 MiB)
//   --collections-max-bytes N          the largest max_bytes a collection may ask for (default 1 GiB)
//   --collections-max-per-tenant N     collections one tenant may hold (default 64)
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "retrieval/collection_store.h"

namespace CLI {
class App;
}

namespace ortserve::retrieval {

struct CollectionFlags {
  std::string dir;
  std::string fsync = "always";
  uint64_t snapshot_bytes = 64 << 20;
  uint64_t max_bytes = uint64_t{1} << 30;
  uint64_t max_per_tenant = 64;
};

// Registers the flags above on `app`, writing into `flags` (which must
// outlive the parse).
void AddCollectionFlags(CLI::App& app, CollectionFlags* flags);

// Opens (recovering) the store the flags name; null when --collections-dir is
// unset. InvalidArgument for a bad flag; CollectionStore::Open's errors.
absl::StatusOr<std::unique_ptr<CollectionStore>> OpenCollectionStore(const CollectionFlags& flags);

}  // namespace ortserve::retrieval
