// SPDX-License-Identifier: Apache-2.0
// The REST route table: which endpoint a request target names, with the
// model name and version it carries. One table lists every endpoint with its
// method; the target is parsed by Boost.URL (origin form, percent-decoding),
// so no URL handling is written by hand.
//
// Thread-safe: the table is immutable; MatchRoute is a pure function.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace ortserve::frontend {

// Every REST endpoint. The comment is the path; {m} and {v} are captures.
enum class RouteId : uint8_t {
  kServerMetadata,     // GET  /v2
  kHealthLive,         // GET  /v2/health/live
  kHealthReady,        // GET  /v2/health/ready
  kLogging,            // GET|POST /v2/logging
  kProfileCpu,         // GET|POST /v2/admin/profile/cpu
  kProfileHeap,        // GET  /v2/admin/profile/heap
  kAlerts,             // GET  /v2/admin/alerts
  kAlertsReplay,       // POST /v2/admin/alerts/replay
  kRepositoryIndex,    // POST /v2/repository/index
  kRepositoryLoad,     // POST /v2/repository/models/{m}/load
  kRepositoryUnload,   // POST /v2/repository/models/{m}/unload
  kAllStats,           // GET  /v2/models/stats
  kModelMetadata,      // GET  /v2/models/{m}[/versions/{v}]
  kModelReady,         // GET  /v2/models/{m}[/versions/{v}]/ready
  kModelConfig,        // GET  /v2/models/{m}[/versions/{v}]/config
  kModelStats,         // GET  /v2/models/{m}[/versions/{v}]/stats
  kModelInfer,         // POST /v2/models/{m}[/versions/{v}]/infer
  kSaeAnalyze,         // POST /api/v1/sae/analyze
  kTeiEmbed,           // POST /embed
  kTeiPredict,         // POST /predict
  kOpenAiEmbeddings,   // POST /v1/embeddings
  kConsole,            // GET  /console (docs/console.md)
  kConsoleScript,      // GET  /console/console.js
  kConsoleStyle,       // GET  /console/console.css
  kConsoleSnapshot,    // GET  /console/api/snapshot
  // Triton's extensions (issue 21); for shared memory {m} is the region name.
  kTraceSetting,       // GET|POST /v2[/models/{m}]/trace/setting
  kSystemShmStatus,    // GET  /v2/systemsharedmemory[/region/{m}]/status
  kSystemShmRegister,  // POST /v2/systemsharedmemory/region/{m}/register
  kSystemShmUnregister,  // POST /v2/systemsharedmemory[/region/{m}]/unregister
  kCudaShm,            // /v2/cudasharedmemory/...: not served (400 saying so)
  kTeiInfo,            // GET  /info
  kTeiHealth,          // GET  /health
  kOpenAiModels,       // GET  /v1/models
  kOpenAiCompletions,      // POST /v1/completions (issue 22)
  kOpenAiChatCompletions,  // POST /v1/chat/completions
  kTritonGenerate,         // POST /v2/models/{m}[/versions/{v}]/generate (Triton's generate extension)
  kTritonGenerateStream,   // POST /v2/models/{m}[/versions/{v}]/generate_stream
  kGenerationStats,        // GET  /v2/models/{m}[/versions/{v}]/generation_stats (the batcher's counters)
  // Collections (docs/retrieval.md); {m} is the collection, {v} a document id.
  kCollections,        // GET  /v1/collections
  kCollection,         // GET|PUT|DELETE /v1/collections/{m}
  kCollectionDocuments,  // POST /v1/collections/{m}/documents
  kCollectionDocument,   // GET|DELETE /v1/collections/{m}/documents/{v}
  kCollectionQuery,    // POST /v1/collections/{m}/query
};

// HTTP methods the table distinguishes.
enum class Method : uint8_t { kGet, kPost, kPut, kDelete, kOther };

struct RouteMatch {
  RouteId id;
  std::string model;    // {m}, percent-decoded; empty when the route has none.
  std::string version;  // {v} (a version, or a collection's document id), percent-decoded; empty when absent.
  std::string_view query;  // The raw query string (no '?'), a view into the target.
};

// The route `target` (origin form: path and query) names for `method`.
// Empty path segments are ignored ("/v2//models/x/" is "/v2/models/x").
// Errors, with the message a client sees:
//  - InvalidArgument: a target Boost.URL cannot parse, or a capture whose
//    percent-encoding is malformed or decodes to an empty or NUL-holding name;
//  - NotFound: no such endpoint ("no such endpoint: <target>");
//  - Unimplemented is never returned; a known path with another method is
//    FailedPrecondition with the 405 message ("method X is not allowed on
//    <target>"), which front ends answer with 405 (see IsMethodNotAllowed).
absl::StatusOr<RouteMatch> MatchRoute(Method method, std::string_view method_name, std::string_view target);

// Whether `status` is MatchRoute's "method not allowed".
bool IsMethodNotAllowed(const absl::Status& status);

}  // namespace ortserve::frontend
