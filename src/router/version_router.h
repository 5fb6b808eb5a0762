// SPDX-License-Identifier: Apache-2.0
// Version routing: which version of a model serves a request that names none.
// An explicit version (URL or `model_version`) wins, then the X-Model-Version
// override (HTTP header or gRPC metadata), then the model's weighted split
// (config `routing { split { version weight } }`), sticky by a key when the
// config names one, else the version policy's default. Pure functions over
// their arguments: safe from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "absl/functional/function_ref.h"
#include "core/infer_request.h"
#include "proto/model_config.pb.h"

namespace ortserve::router {

// The override header (lower-case; gRPC metadata uses the same key).
inline constexpr std::string_view kVersionHeader = "x-model-version";

// Why a version was chosen (for logs and the response).
enum class RouteReason { kExplicit, kOverride, kSticky, kSplit, kDefault };
std::string_view RouteReasonName(RouteReason reason);

struct RouteChoice {
  int64_t version = 0;  // 0: the model's default version.
  RouteReason reason = RouteReason::kDefault;
};

// A point in [0, 1) that depends only on `key`: 64-bit FNV-1a, then
// MurmurHash3's fmix64 finalizer so that similar keys spread. Stable across
// processes and replicas, so a key lands on one version on every server.
double StickyPoint(std::string_view key);

// The weighted pick at `point` in [0, 1): the splits are laid out in config
// order, each as wide as its weight, over the versions `ready` accepts; the
// weight of a version that cannot serve goes to the others in proportion.
// Returns 0 when no split version is ready (or there is no split).
int64_t PickWeighted(const config::ModelRouting& routing, double point,
                     absl::FunctionRef<bool(int64_t)> ready);

// The request parameter a front end sets to key the split when the config's
// own sticky key is absent (the SAE endpoint sets it to the patientId, so a
// patient stays on one version). A string.
inline constexpr std::string_view kStickyKeyParameter = "sticky_key";

// The StickyPoint of `request`'s key under `routing` (the configured header
// or request parameter; when the config names none or the request lacks it,
// the request's `sticky_key` parameter), or nullopt when there is no key. A
// configured parameter that is not a string is keyed by its decimal text.
std::optional<double> StickyPointOf(const config::ModelRouting& routing, const InferRequest& request);

// The version `request` names itself: its own `model_version` (explicit),
// else the override header (kOverride); nullopt when it names none. The
// text is returned as given, so that a bad value is reported by the lookup.
struct NamedVersion {
  std::string_view text;
  RouteReason reason;
};
std::optional<NamedVersion> RequestedVersion(const InferRequest& request);

// Resolves the version for `request`. An explicit `request.model_version`
// wins, then the override header. Otherwise the split (sticky when keyed,
// else at `random_point`, a uniform draw in [0, 1)). Pure apart from `ready`.
// The explicit and override versions are returned as given (version 0 means
// "parse it from request.model_version"), so that a bad value is reported by
// the model lookup.
struct Resolution {
  RouteChoice choice;
  std::string_view version_text;  // Explicit or override text; empty otherwise.
};
Resolution ResolveVersion(const config::ModelRouting& routing, const InferRequest& request, double random_point,
                          absl::FunctionRef<bool(int64_t)> ready);

}  // namespace ortserve::router
