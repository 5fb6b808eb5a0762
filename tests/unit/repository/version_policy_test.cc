// SPDX-License-Identifier: Apache-2.0
// VersionPolicy: the pure rules for which versions serve and what a reload
// changes. Plain values in, plain values out: no folders, no threads.
#include "repository/version_policy.h"

#include <gtest/gtest.h>

namespace ortserve::repository {
namespace {

using Versions = std::vector<int64_t>;

TEST(VersionPolicyTest, LatestKeepsTheHighestNAndCountsZeroAsOne) {
  config::ModelVersionPolicy policy;
  EXPECT_EQ(SelectVersions(policy, {3, 1, 2}), (Versions{3}));
  policy.mutable_latest()->set_num_versions(2);
  EXPECT_EQ(SelectVersions(policy, {3, 1, 2}), (Versions{2, 3}));
  policy.mutable_latest()->set_num_versions(5);
  EXPECT_EQ(SelectVersions(policy, {3, 1}), (Versions{1, 3}));
  EXPECT_EQ(SelectVersions(policy, {}), (Versions{}));
}

TEST(VersionPolicyTest, AllAndSpecificPickFromWhatIsPresent) {
  config::ModelVersionPolicy all;
  all.mutable_all();
  EXPECT_EQ(SelectVersions(all, {7, 2, 5}), (Versions{2, 5, 7}));
  config::ModelVersionPolicy specific;
  specific.mutable_specific()->add_versions(5);
  specific.mutable_specific()->add_versions(9);  // Not on disk: left out.
  EXPECT_EQ(SelectVersions(specific, {2, 5, 7}), (Versions{5}));
}

TEST(VersionPolicyTest, OnlyVersionsNotServedOrServedFromOtherBytesLoad) {
  const std::map<int64_t, uint64_t> wanted = {{1, 10}, {2, 20}, {3, 30}};
  const std::map<int64_t, ServedVersion> current = {
      {1, {true, 10}},   // Same bytes: stays.
      {2, {true, 21}},   // Changed: reloads (safe swap).
      {3, {false, 30}},  // A failed load: tried again.
  };
  EXPECT_EQ(VersionsToLoad({1, 2, 3}, wanted, current), (Versions{2, 3}));
  EXPECT_EQ(VersionsToLoad({1, 2, 3}, wanted, {}), (Versions{1, 2, 3}));
}

TEST(VersionPolicyTest, ServedVersionsRetireOnlyOnceEveryChosenVersionServes) {
  // Version 2 replaces 1 but has not loaded: 1 keeps serving (rollback).
  EXPECT_EQ(VersionsToRetire({2}, {{1, true}, {2, false}}), (Versions{}));
  // Version 2 serves: 1 retires.
  EXPECT_EQ(VersionsToRetire({2}, {{1, true}, {2, true}}), (Versions{1}));
  // A dropped version that never served goes at once.
  EXPECT_EQ(VersionsToRetire({3}, {{1, false}, {2, true}, {3, false}}), (Versions{1}));
}

}  // namespace
}  // namespace ortserve::repository
