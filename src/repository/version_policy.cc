// SPDX-License-Identifier: Apache-2.0
#include "repository/version_policy.h"

#include <algorithm>
#include <set>

namespace ortserve::repository {

std::vector<int64_t> SelectVersions(const config::ModelVersionPolicy& policy, std::vector<int64_t> present) {
  std::sort(present.begin(), present.end());
  if (policy.has_all()) return present;
  if (policy.has_specific()) {
    std::vector<int64_t> chosen;
    for (int64_t v : policy.specific().versions()) {
      if (std::binary_search(present.begin(), present.end(), v)) chosen.push_back(v);
    }
    return chosen;
  }
  const size_t n = std::max<uint32_t>(1, policy.latest().num_versions());
  if (present.size() > n) present.erase(present.begin(), present.end() - static_cast<ptrdiff_t>(n));
  return present;
}

std::vector<int64_t> VersionsToLoad(const std::vector<int64_t>& chosen, const std::map<int64_t, uint64_t>& wanted,
                                    const std::map<int64_t, ServedVersion>& current) {
  std::vector<int64_t> load;
  for (int64_t v : chosen) {
    auto want = wanted.find(v);
    auto now = current.find(v);
    const bool same = want != wanted.end() && now != current.end() && now->second.serving &&
                      now->second.fingerprint == want->second;
    if (!same) load.push_back(v);
  }
  std::sort(load.begin(), load.end());
  return load;
}

std::vector<int64_t> VersionsToRetire(const std::vector<int64_t>& chosen, const std::map<int64_t, bool>& current) {
  const std::set<int64_t> chosen_set(chosen.begin(), chosen.end());
  bool all_serving = true;
  for (int64_t v : chosen) {
    auto it = current.find(v);
    all_serving &= it != current.end() && it->second;
  }
  std::vector<int64_t> retire;
  for (const auto& [v, serving] : current) {
    if (chosen_set.count(v) > 0) continue;
    if (!serving || all_serving) retire.push_back(v);
  }
  return retire;
}

}  // namespace ortserve::repository
