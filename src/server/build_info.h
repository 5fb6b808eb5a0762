// SPDX-License-Identifier: Apache-2.0
// What the `ortserve` binary was built from: the git commit of its source
// tree, "unknown" for a tree without its own .git (a tarball) unless the
// build set -DORTSERVE_GIT_COMMIT. Defined in a file the build generates
// (cmake/build_info.cmake); only the `ortserve` executable links it.
// Constants: safe from any thread.
#pragma once

#include <string_view>

namespace ortserve::server {

std::string_view BuildCommit();

}  // namespace ortserve::server
