// SPDX-License-Identifier: Apache-2.0
#include "frontend/http/route_table.h"

#include <array>
#include <initializer_list>
#include <optional>

#include "absl/container/inlined_vector.h"
#include "absl/strings/cord.h"
#include "boost/url/parse.hpp"
#include "boost/url/url_view.hpp"
#include "core/strings.h"

namespace ortserve::frontend {
namespace {

constexpr char kMethodNotAllowedPayload[] = "ortserve/method-not-allowed";

// One endpoint: its path segments, where "{m}" and "{v}" capture the model
// name and version, and the methods it answers. `versioned` routes also
// match with "versions/{v}" after the model name.
struct Route {
  RouteId id;
  std::initializer_list<std::string_view> segments;
  bool get = false;
  bool post = false;
  bool versioned = false;
  bool put = false;
  bool del = false;
};

// Longest paths need no special order: a target matches at most one route
// (literal segments differ, or the segment counts do).
const Route kRoutes[] = {
    {RouteId::kServerMetadata, {"v2"}, true, false},
    {RouteId::kHealthLive, {"v2", "health", "live"}, true, false},
    {RouteId::kHealthReady, {"v2", "health", "ready"}, true, false},
    {RouteId::kLogging, {"v2", "logging"}, true, true},
    {RouteId::kProfileCpu, {"v2", "admin", "profile", "cpu"}, true, true},
    {RouteId::kProfileHeap, {"v2", "admin", "profile", "heap"}, true, false},
    {RouteId::kAlerts, {"v2", "admin", "alerts"}, true, false},
    {RouteId::kAlertsReplay, {"v2", "admin", "alerts", "replay"}, false, true},
    {RouteId::kRepositoryIndex, {"v2", "repository", "index"}, false, true},
    {RouteId::kRepositoryLoad, {"v2", "repository", "models", "{m}", "load"}, false, true},
    {RouteId::kRepositoryUnload, {"v2", "repository", "models", "{m}", "unload"}, false, true},
    {RouteId::kAllStats, {"v2", "models", "stats"}, true, false},
    {RouteId::kModelMetadata, {"v2", "models", "{m}"}, true, false, true},
    {RouteId::kModelReady, {"v2", "models", "{m}", "ready"}, true, false, true},
    {RouteId::kModelConfig, {"v2", "models", "{m}", "config"}, true, false, true},
    {RouteId::kModelStats, {"v2", "models", "{m}", "stats"}, true, false, true},
    {RouteId::kModelInfer, {"v2", "models", "{m}", "infer"}, false, true, true},
    {RouteId::kSaeAnalyze, {"api", "v1", "sae", "analyze"}, false, true},
    {RouteId::kTeiEmbed, {"embed"}, false, true},
    {RouteId::kTeiPredict, {"predict"}, false, true},
    {RouteId::kOpenAiEmbeddings, {"v1", "embeddings"}, false, true},
    {RouteId::kConsole, {"console"}, true, false},
    {RouteId::kConsoleScript, {"console", "console.js"}, true, false},
    {RouteId::kConsoleStyle, {"console", "console.css"}, true, false},
    {RouteId::kConsoleSnapshot, {"console", "api", "snapshot"}, true, false},
    {RouteId::kTraceSetting, {"v2", "trace", "setting"}, true, true},
    {RouteId::kTraceSetting, {"v2", "models", "{m}", "trace", "setting"}, true, true},
    {RouteId::kSystemShmStatus, {"v2", "systemsharedmemory", "status"}, true, false},
    {RouteId::kSystemShmStatus, {"v2", "systemsharedmemory", "region", "{m}", "status"}, true, false},
    {RouteId::kSystemShmRegister, {"v2", "systemsharedmemory", "region", "{m}", "register"}, false, true},
    {RouteId::kSystemShmUnregister, {"v2", "systemsharedmemory", "unregister"}, false, true},
    {RouteId::kSystemShmUnregister, {"v2", "systemsharedmemory", "region", "{m}", "unregister"}, false, true},
    {RouteId::kCudaShm, {"v2", "cudasharedmemory", "status"}, true, false},
    {RouteId::kCudaShm, {"v2", "cudasharedmemory", "region", "{m}", "status"}, true, false},
    {RouteId::kCudaShm, {"v2", "cudasharedmemory", "region", "{m}", "register"}, false, true},
    {RouteId::kCudaShm, {"v2", "cudasharedmemory", "unregister"}, false, true},
    {RouteId::kCudaShm, {"v2", "cudasharedmemory", "region", "{m}", "unregister"}, false, true},
    {RouteId::kTeiInfo, {"info"}, true, false},
    {RouteId::kTeiHealth, {"health"}, true, false},
    {RouteId::kOpenAiModels, {"v1", "models"}, true, false},
    {RouteId::kOpenAiCompletions, {"v1", "completions"}, false, true},
    {RouteId::kOpenAiChatCompletions, {"v1", "chat", "completions"}, false, true},
    {RouteId::kTritonGenerate, {"v2", "models", "{m}", "generate"}, false, true, true},
    {RouteId::kTritonGenerateStream, {"v2", "models", "{m}", "generate_stream"}, false, true, true},
    {RouteId::kGenerationStats, {"v2", "models", "{m}", "generation_stats"}, true, false, true},
    {RouteId::kCollections, {"v1", "collections"}, true, false},
    {RouteId::kCollection, {"v1", "collections", "{m}"}, true, false, false, true, true},
    {RouteId::kCollectionDocuments, {"v1", "collections", "{m}", "documents"}, false, true},
    {RouteId::kCollectionDocument, {"v1", "collections", "{m}", "documents", "{v}"}, true, false, false, false, true},
    {RouteId::kCollectionQuery, {"v1", "collections", "{m}", "query"}, false, true},
};

// Every endpoint has at most 7 segments; a few more fit on the stack.
using Segments = absl::InlinedVector<boost::urls::pct_string_view, 8>;

// Decodes a captured name; nullopt when it is empty or holds a NUL.
std::optional<std::string> DecodeName(boost::urls::pct_string_view segment) {
  std::string out;
  out.reserve(segment.decoded_size());
  for (char c : segment.decode()) {
    if (c == '\0') return std::nullopt;
    out.push_back(c);
  }
  if (out.empty()) return std::nullopt;
  return out;
}

// Matches `segments` against `route`, with `skip_version` the index of the
// "versions/{v}" pair to step over (or npos). Captures go to `match`.
enum class Fit { kNo, kYes, kBadName };
Fit Match(const Route& route, const Segments& segments, size_t version_at, RouteMatch& match) {
  const size_t extra = version_at == std::string_view::npos ? 0 : 2;
  if (segments.size() != route.segments.size() + extra) return Fit::kNo;
  size_t s = 0;
  for (std::string_view want : route.segments) {
    if (s == version_at) s += 2;
    const boost::urls::pct_string_view got = segments[s++];
    if (want == "{m}" || want == "{v}") continue;
    if (std::string_view(got.data(), got.size()) != want) return Fit::kNo;
  }
  // Only now, on a match, are captures decoded (they allocate).
  s = 0;
  for (std::string_view want : route.segments) {
    if (s == version_at) s += 2;
    if (want == "{m}" || want == "{v}") {
      auto name = DecodeName(segments[s]);
      if (!name) return Fit::kBadName;
      (want == "{m}" ? match.model : match.version) = *std::move(name);
    }
    ++s;
  }
  if (version_at != std::string_view::npos) {
    auto version = DecodeName(segments[version_at + 1]);
    if (!version) return Fit::kBadName;
    match.version = *std::move(version);
  }
  return Fit::kYes;
}

}  // namespace

absl::StatusOr<RouteMatch> MatchRoute(Method method, std::string_view method_name, std::string_view target) {
  auto url = boost::urls::parse_origin_form(boost::core::string_view(target.data(), target.size()));
  if (!url) return absl::InvalidArgumentError(StrCat("malformed request target ", target));
  Segments segments;
  for (boost::urls::pct_string_view segment : url->encoded_segments()) {
    if (!segment.empty()) segments.push_back(segment);
  }
  RouteMatch match{};
  if (url->has_query()) {
    const auto query = url->encoded_query();
    match.query = std::string_view(query.data(), query.size());
  }
  // "versions/{v}" sits right after the model name: segment 3 of /v2/models/{m}/...
  constexpr size_t kVersionAt = 3;
  const bool versioned_path = segments.size() >= 5 &&
                              std::string_view(segments[kVersionAt].data(), segments[kVersionAt].size()) == "versions";
  for (const Route& route : kRoutes) {
    Fit fit = Match(route, segments, std::string_view::npos, match);
    if (fit == Fit::kNo && route.versioned && versioned_path) fit = Match(route, segments, kVersionAt, match);
    if (fit == Fit::kNo) continue;
    if (fit == Fit::kBadName) return absl::InvalidArgumentError(StrCat("malformed model name in ", target));
    const bool allowed = method == Method::kGet      ? route.get
                         : method == Method::kPost   ? route.post
                         : method == Method::kPut    ? route.put
                         : method == Method::kDelete ? route.del
                                                     : false;
    if (!allowed) {
      absl::Status status = absl::FailedPreconditionError(
          StrCat("method ", method_name, " is not allowed on ", target));
      status.SetPayload(kMethodNotAllowedPayload, absl::Cord("1"));
      return status;
    }
    match.id = route.id;
    return match;
  }
  return absl::NotFoundError(StrCat("no such endpoint: ", target));
}

bool IsMethodNotAllowed(const absl::Status& status) {
  return status.GetPayload(kMethodNotAllowedPayload).has_value();
}

}  // namespace ortserve::frontend
