// SPDX-License-Identifier: Apache-2.0
// HttpServer: the KServe v2 REST front end (Open Inference Protocol plus the
// Triton extensions clients rely on), on Boost.Beast over a fixed pool of I/O
// threads, each running its own event loop; a connection stays on the loop
// that accepted it. HTTP/1.1 keep-alive; no thread per connection or request.
// A client that hangs up while its request waits cancels the request.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "admission/admission.h"
#include "admission/tls_context.h"
#include "frontend/http/pipeline_routes.h"
#include "frontend/inference_service.h"

namespace ortserve::alerts {
class AlertService;
}  // namespace ortserve::alerts

namespace ortserve::console {
class Console;
}  // namespace ortserve::console

namespace ortserve::retrieval {
class CollectionStore;
}  // namespace ortserve::retrieval
namespace ortserve::generation {
class SessionStore;
}  // namespace ortserve::generation

namespace ortserve::frontend {

class AccessControl;

// Thread-safe: Start and Stop may be called from any thread, once each.
class HttpServer {
 public:
  // Connections past max_connections that may still be served health
  // probes (a kubelet's, a load balancer's) while ordinary clients hold
  // every slot.
  static constexpr size_t kProbeReserve = 32;

  struct Options {
    std::string address = "0.0.0.0";
    uint16_t port = 8000;  // 0: any free port; see port().
    int threads = 4;
    size_t max_body_bytes = 64 << 20;  // Larger bodies get 413.
    // A connection whose request read or response write has not finished
    // this long after it began is closed (checked every quarter of it, at
    // most every second). No limit while the request is being answered.
    absl::Duration idle_timeout = absl::Seconds(60);
    // Connections open at once for ordinary requests; past it a connection is
    // served only health probes (a reserve of kProbeReserve more), and past
    // that it is answered 503 and closed at once. 0: from the open-files
    // limit (docs/security.md#limits).
    size_t max_connections = 0;
    InferenceService* service = nullptr;  // Not owned.
    // Where inferences (KServe infer, the text APIs) take their permit, once
    // their header is read (not owned); null: no admission.
    admission::Admission* admission = nullptr;
    // Which models answer the text endpoints (SAE, TEI, OpenAI).
    PipelineRouteOptions pipeline;
    // Serve GET /v2/admin/profile/cpu and /heap (pprof CPU profile, heap sample).
    bool enable_profiling = false;
    // The SAE alert service behind GET /v2/admin/alerts and POST
    // /v2/admin/alerts/replay; null: alerts are off (404). Not owned.
    alerts::AlertService* alerts = nullptr;
    // Authentication, authorization by route class, the audit log (not
    // owned); null: every request is served as before authentication existed.
    const AccessControl* access = nullptr;
    // HTTPS: each accepted connection takes the provider's current context
    // (so a reloaded certificate reaches new connections) and handshakes on
    // its loop before reading (not owned); null: plain HTTP.
    admission::TlsContextProvider* tls = nullptr;
    // The live console behind GET /console (docs/console.md); null: off (404).
    // Not owned.
    console::Console* console = nullptr;
    // Vector collections behind /v1/collections (docs/retrieval.md); null: off (404). Not owned.
    retrieval::CollectionStore* collections = nullptr;
    // Conversation sessions of /v1/chat/completions (X-Session-Id or
    // `session_id`; docs/generation.md); null: off (400 for a session id).
    // Not owned.
    generation::SessionStore* sessions = nullptr;
  };

  // Binds and starts the I/O threads. Errors: InvalidArgument for a bad
  // address, Unavailable when the port cannot be bound.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(Options options);

  // Stops accepting, closes connections, joins the I/O threads.
  ~HttpServer();
  void Stop();

  // Shutdown: closes the listening socket (new connections are refused);
  // open connections keep being served. Blocks until it is closed.
  void StopAccepting();
  // Requests read and not yet answered (their response not yet written).
  size_t ActiveRequests() const;
  // HTTP connections open now.
  size_t OpenConnections() const;

  // The bound port (the real one when Options::port was 0).
  uint16_t port() const;

 private:
  struct Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The HTTP status for an error code (one table for the whole server).
unsigned HttpStatusFor(absl::StatusCode code);

}  // namespace ortserve::frontend
