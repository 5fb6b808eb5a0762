// SPDX-License-Identifier: Apache-2.0
#include "router/version_router.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <string>
#include <type_traits>
#include <variant>

namespace ortserve::router {

std::string_view RouteReasonName(RouteReason reason) {
  switch (reason) {
    case RouteReason::kExplicit: return "explicit";
    case RouteReason::kOverride: return "override";
    case RouteReason::kSticky: return "sticky";
    case RouteReason::kSplit: return "split";
    case RouteReason::kDefault: return "default";
  }
  return "default";
}

double StickyPoint(std::string_view key) {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a 64 offset basis.
  for (unsigned char c : key) {
    h ^= c;
    h *= 0x100000001b3ull;  // FNV-1a 64 prime.
  }
  // fmix64 (MurmurHash3's finalizer).
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return static_cast<double>(h >> 11) * 0x1.0p-53;  // 53 bits: exact in a double, in [0, 1).
}

int64_t PickWeighted(const config::ModelRouting& routing, double point, absl::FunctionRef<bool(int64_t)> ready) {
  double total = 0;
  // At most a handful of splits: two passes over them beat any allocation.
  uint64_t ready_mask = 0;
  const int n = std::min(routing.split_size(), 64);
  for (int i = 0; i < n; ++i) {
    if (ready(routing.split(i).version())) {
      ready_mask |= uint64_t{1} << i;
      total += routing.split(i).weight();
    }
  }
  if (total <= 0) return 0;
  const double target = point * total;
  double edge = 0;
  int64_t last = 0;
  for (int i = 0; i < n; ++i) {
    if ((ready_mask & (uint64_t{1} << i)) == 0) continue;
    edge += routing.split(i).weight();
    last = routing.split(i).version();
    if (target < edge) return last;
  }
  return last;  // point * total rounded up to the total.
}

namespace {

std::optional<double> ConfiguredStickyPoint(const config::ModelRouting& routing, const InferRequest& request) {
  if (!routing.sticky_header().empty()) {
    if (request.headers == nullptr) return std::nullopt;
    // Header names are case-insensitive; the front ends look them up lower-case.
    char name[128];
    const std::string& configured = routing.sticky_header();
    if (configured.size() > sizeof(name)) return std::nullopt;
    for (size_t i = 0; i < configured.size(); ++i) {
      name[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(configured[i])));
    }
    auto value = request.headers->Get(std::string_view(name, configured.size()));
    if (!value || value->empty()) return std::nullopt;
    return StickyPoint(*value);
  }
  if (!routing.sticky_parameter().empty()) {
    const ParameterValue* value = request.parameters.Find(routing.sticky_parameter());
    if (value == nullptr) return std::nullopt;
    return std::visit(
        [](const auto& v) -> double {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, std::string>) {
            return StickyPoint(v);
          } else if constexpr (std::is_same_v<T, bool>) {
            return StickyPoint(v ? "true" : "false");
          } else {
            char text[64];
            auto [end, ec] = std::to_chars(text, text + sizeof(text), v);
            return StickyPoint(std::string_view(text, ec == std::errc() ? end - text : 0));
          }
        },
        *value);
  }
  return std::nullopt;
}

}  // namespace

std::optional<double> StickyPointOf(const config::ModelRouting& routing, const InferRequest& request) {
  if (auto point = ConfiguredStickyPoint(routing, request)) return point;
  // The key a front end chose for the request (the SAE endpoint's patientId).
  if (auto key = request.parameters.FindString(kStickyKeyParameter); key && !key->empty()) {
    return StickyPoint(*key);
  }
  return std::nullopt;
}

std::optional<NamedVersion> RequestedVersion(const InferRequest& request) {
  if (!request.model_version.empty()) return NamedVersion{request.model_version, RouteReason::kExplicit};
  if (request.headers != nullptr) {
    if (auto value = request.headers->Get(kVersionHeader); value && !value->empty()) {
      return NamedVersion{*value, RouteReason::kOverride};
    }
  }
  return std::nullopt;
}

Resolution ResolveVersion(const config::ModelRouting& routing, const InferRequest& request, double random_point,
                          absl::FunctionRef<bool(int64_t)> ready) {
  if (auto named = RequestedVersion(request)) return {{0, named->reason}, named->text};
  if (routing.split_size() == 0) return {};
  if (auto point = StickyPointOf(routing, request)) {
    if (int64_t version = PickWeighted(routing, *point, ready); version > 0) {
      return {{version, RouteReason::kSticky}, {}};
    }
    return {};
  }
  if (int64_t version = PickWeighted(routing, random_point, ready); version > 0) {
    return {{version, RouteReason::kSplit}, {}};
  }
  return {};
}

}  // namespace ortserve::router
