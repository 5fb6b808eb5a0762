// SPDX-License-Identifier: Apache-2.0
// The console's static page, compiled into the binary: the files of
// src/console/assets/ become string constants at build time
// (embed_assets.cmake; no network, no tool beyond CMake).
//
// Thread-safe (constants).
#pragma once

#include <string_view>

namespace ortserve::console {

struct Asset {
  std::string_view name;          // "console.html", "console.js", "console.css"
  std::string_view content_type;  // With charset for text.
  std::string_view body;
  std::string_view etag;          // A quoted digest of the body.
};

// The asset named `name`, or null.
const Asset* FindAsset(std::string_view name);

}  // namespace ortserve::console
