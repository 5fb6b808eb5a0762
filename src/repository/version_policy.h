// SPDX-License-Identifier: Apache-2.0
// VersionPolicy: which versions of a model to serve, and what a reload must
// change to get there. Pure functions: no state, no I/O, no clock, so the
// rules are tested on plain values (tests/unit/repository/version_policy_test).
//
// Thread-safe (stateless).
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "repository/model_config.h"

namespace ortserve::repository {

// The versions `policy` (Triton's version_policy: latest N, all, specific)
// picks from those `present` on disk, ascending. latest.num_versions 0 counts
// as 1; specific versions not present are left out.
std::vector<int64_t> SelectVersions(const config::ModelVersionPolicy& policy, std::vector<int64_t> present);

// What is served of one version now.
struct ServedVersion {
  bool serving = false;      // A handle is published.
  uint64_t fingerprint = 0;  // Of the files and config it was loaded from.
};

// The versions of `chosen` that must load: not served, or served from other
// bytes or config than `wanted` (version -> fingerprint, every chosen version
// present) says. Ascending.
std::vector<int64_t> VersionsToLoad(const std::vector<int64_t>& chosen, const std::map<int64_t, uint64_t>& wanted,
                                    const std::map<int64_t, ServedVersion>& current);

// The versions of `current` (version -> served) the policy no longer chooses
// that go now: one that does not serve (a stale failure) always; one that
// serves only once every chosen version serves, so the model never stops
// serving (Triton's rule: unload only after the load succeeded). Ascending.
std::vector<int64_t> VersionsToRetire(const std::vector<int64_t>& chosen, const std::map<int64_t, bool>& current);

}  // namespace ortserve::repository
