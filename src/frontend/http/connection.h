// SPDX-License-Identifier: Apache-2.0
// One HTTP/1.1 connection of the REST front end: reads a request, routes it
// (route_table.h) to its handler, writes the answer, and reads the next
// (keep-alive). Handlers are members defined per area: connection.cc holds
// the I/O, kserve_routes.cc the KServe v2 endpoints (metadata, readiness,
// config, statistics, infer), admin_routes.cc logging, profiling and the
// model repository, pipeline_routes.cc's HandlePipelineRoute the text APIs.
//
// Runs only on the event loop (I/O thread) that accepted it, from accept to
// close: its handlers never run concurrently, and answers from other threads
// (model runners, loader threads) are posted back to it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <memory_resource>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/ssl/context.hpp"
#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/http.hpp"
#include "boost/beast/ssl/ssl_stream.hpp"
#include "admission/admission.h"
#include "admission/identity.h"
#include "frontend/http/compression.h"
#include "frontend/http/http_server.h"
#include "frontend/http/kserve_json_codec.h"
#include "frontend/http/route_table.h"
#include "observability/request_record.h"

namespace ortserve::observability {
class ProfileWorker;
}  // namespace ortserve::observability

namespace ortserve::frontend {

// The byte stream under a connection: a plain TCP socket or TLS over one
// (Beast's ssl_stream over OpenSSL), chosen when the connection is accepted.
// It meets Asio's AsyncReadStream and AsyncWriteStream for completion
// handlers (what Beast's and Asio's composed operations pass), so the
// connection's code is the same for both; the plain path pays one branch.
//
// Not thread-safe (the connection's loop only).
class HttpStream {
 public:
  using tcp = boost::asio::ip::tcp;
  using TlsStream = boost::beast::ssl_stream<tcp::socket>;
  using executor_type = tcp::socket::executor_type;

  explicit HttpStream(tcp::socket socket) : plain_(std::move(socket)) {}
  // TLS with `context` (kept alive by the stream: a certificate reload does
  // not touch connections already open).
  HttpStream(tcp::socket socket, std::shared_ptr<boost::asio::ssl::context> context)
      : context_(std::move(context)), tls_(std::make_unique<TlsStream>(std::move(socket), *context_)) {}

  bool tls() const { return tls_ != nullptr; }
  TlsStream& tls_stream() { return *tls_; }
  tcp::socket& socket() { return tls_ ? tls_->next_layer() : *plain_; }
  executor_type get_executor() { return tls_ ? tls_->get_executor() : plain_->get_executor(); }

  template <typename Buffers, typename Handler>
  void async_read_some(const Buffers& buffers, Handler&& handler) {
    if (tls_) {
      tls_->async_read_some(buffers, std::forward<Handler>(handler));
    } else {
      plain_->async_read_some(buffers, std::forward<Handler>(handler));
    }
  }
  template <typename Buffers, typename Handler>
  void async_write_some(const Buffers& buffers, Handler&& handler) {
    if (tls_) {
      tls_->async_write_some(buffers, std::forward<Handler>(handler));
    } else {
      plain_->async_write_some(buffers, std::forward<Handler>(handler));
    }
  }

 private:
  std::optional<tcp::socket> plain_;  // Empty under TLS.
  std::shared_ptr<boost::asio::ssl::context> context_;  // Declared before tls_: outlives it.
  std::unique_ptr<TlsStream> tls_;
};

class AccessControl;
struct GenerationJob;
class GenerationOutbox;

// What every connection of a server shares; outlives them all.
struct ConnectionContext {
  const HttpServer::Options* options = nullptr;
  std::atomic<int64_t>* active = nullptr;  // Requests read and not yet answered.
  observability::ProfileWorker* profiler = nullptr;  // Null unless profiling is on.
  const AccessControl* access = nullptr;  // Authentication, authorization, audit; null: none.
  std::atomic<int64_t>* connections = nullptr;  // Open connections (each counts itself).
  // "Keep-Alive: timeout=N" with N under the idle timeout, so that clients
  // retire an idle connection before the server closes it under them.
  std::string keep_alive_header;
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  using Clock = std::chrono::steady_clock;
  using tcp = boost::asio::ip::tcp;

  // `probes_only`: accepted past --http-max-connections; serves health
  // probes only.
  Connection(HttpStream stream, const ConnectionContext& context, bool probes_only = false)
      : stream_(std::move(stream)), context_(context), options_(*context.options), probes_only_(probes_only) {
    if (context_.connections != nullptr) context_.connections->fetch_add(1, std::memory_order_relaxed);
  }
  ~Connection() {
    if (context_.connections != nullptr) context_.connections->fetch_sub(1, std::memory_order_relaxed);
  }

  // Starts reading requests (after the TLS handshake, under TLS).
  void Start();

  // Called by the loop's sweeper (on this connection's thread): closes the
  // connection when a read or write has outlived the idle timeout. No timer
  // per operation: a deadline check every sweep costs no system call.
  void CloseIfExpired(Clock::time_point now) {
    if (now >= deadline_ && stream_.socket().is_open()) Close();
  }

 // A request's header fields. Beast allocates each field on its own; they
  // come from the connection's arena, emptied before each request, so a warm
  // connection reads headers without touching the heap.
  using FieldAllocator = std::pmr::polymorphic_allocator<char>;
  using Request = boost::beast::http::request<boost::beast::http::string_body,
                                              boost::beast::http::basic_fields<FieldAllocator>>;
  using RequestParser = boost::beast::http::request_parser<boost::beast::http::string_body, FieldAllocator>;

 private:

  static constexpr std::string_view kJson = "application/json";

  struct Reply {
    static constexpr size_t kNoHeaderLength = ~size_t{0};
    Reply() = default;
    Reply(unsigned status, std::string_view content_type, std::string body)
        : status(status), content_type(content_type), body(std::move(body)) {}
    unsigned status = 200;
    std::string_view content_type = kJson;  // Always a literal.
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;  // Rare ones (Retry-After).
    // Inference-Header-Content-Length, for binary tensor responses.
    size_t inference_header_length = kNoHeaderLength;
  };

  static constexpr size_t kSmallBody = 4096;
  // A body refused at its header is read and dropped up to this size (and
  // the connection kept); a larger one closes the connection unread.
  static constexpr size_t kDiscardBody = 1 << 20;
  static constexpr size_t kReadChunk = 65536;
  // Beast reads as much as the buffer has room for, at least 512 bytes; with
  // this much room a typical request (headers and a small body) is one read.
  static constexpr size_t kInitialRoom = 16384;
  // Buffers a connection keeps for its next request (body, encoded response)
  // are dropped after use when larger than this: an idle kept-alive
  // connection holds at most a few of these, however large its last request
  // was (thousands of idle connections must not hold gigabytes). Typical
  // text and tabular requests fit; large tensors are allocated per request.
  static constexpr size_t kRetainedBytes = 64 << 10;

  // --- I/O (connection.cc) ---
  void ArmDeadline();
  void OnHandshake(boost::beast::error_code ec);
  void ReadHeader();
  void OnHeader(boost::beast::error_code ec);
  void ReadBody();
  void OnReadError(boost::beast::error_code ec);
  void OnBody(boost::beast::error_code ec);
  // Matches the request's route as soon as its header is read, and takes
  // the admission permit of an inference; false when it was refused (the
  // refusal is being sent, without reading the body).
  bool MatchAndAdmit();
  // Authenticates and authorizes the matched request (AccessControl); false
  // when refused (401 with WWW-Authenticate, or 403, is being sent).
  bool Authorize();
  // The OpenAI route's body may name its model: checked against a
  // credential's model list (PermissionDenied, recorded) once the body is read.
  absl::Status CheckBodyModel();
  // The peer's "ip:port", for the audit log (computed when first needed).
  const std::string& PeerAddress();
  // Whether the peer is on this host (a loopback address).
  bool LoopbackPeer();
  // Records the admin or model-control action being answered (audit log).
  void AuditAction(unsigned status);
  // Starts the request's record (metrics, access log, span).
  void BeginRecord();
  // Routes the request that was just read to its handler.
  void Route();
  static Reply Error(unsigned status, std::string message);
  static Reply Error(const absl::Status& status);
  static Reply Ok(std::string body) { return Reply{200, kJson, std::move(body)}; }
  static Reply Bare(unsigned status) { return Reply{status, "text/plain", ""}; }
  // A cancellation flag for the next request: the last one's when nothing
  // else holds it (and it was never raised), else a new one.
  std::shared_ptr<CancellationFlag> FreshCancellation();
  void Send(Reply reply);
  // Writes reply_, then `extra` (binary sections, `extra_size` bytes in all).
  void SendReply(std::span<const std::span<const std::byte>> extra, size_t extra_size);
  void TrimRetained();
  void AppendNumber(size_t value);
  // The request is answered (or its client is gone): metrics, span, access log.
  void FinishRecord(size_t written);
  void Close();
  // While a request waits for its answer nothing is read, so a client that
  // hangs up would go unnoticed until the write. Watching the socket instead
  // cancels the request (it is dropped before it runs, see the scheduler).
  void WatchForClose();
  // Before a write: no read or write is pending then, only a watch (if any).
  void StopWatchingForClose();
  // Runs `then` back on this connection's thread.
  template <typename F>
  void Post(F&& then);

  // --- KServe v2 endpoints (kserve_routes.cc) ---
  void ModelMetadata(const RouteMatch& route);
  void ModelReady(const RouteMatch& route);
  void ModelConfig(const RouteMatch& route);
  Reply Stats(const std::string& name, const std::string& version);
  void Infer(std::string name, std::string version);
  absl::StatusOr<InferRequest> DecodeRawRequestFor(const repository::ModelVersion& model,
                                                   const std::shared_ptr<std::string>& body);
  void OnInferDone(absl::StatusOr<InferResponse> result);
  // A request that failed before reaching the service still counts against
  // its model when the model exists.
  void ResolveModelForRecord(const std::string& name, const std::string& version);

  // --- logging, profiling, model repository (admin_routes.cc) ---
  void Logging();
  void RepositoryIndex();
  void RepositoryControl(const std::string& name, bool load);
  void ProfileCpu(std::string_view query);
  void ProfileHeap();
  // The SAE alert outbox (docs/alerts.md): its state, and a replay of failed alerts.
  void Alerts(std::string_view query);
  void AlertsReplay(std::string_view query);

  // --- content codings (connection_coding.cc) ---
  // Replaces a body sent with Content-Encoding gzip or deflate by its
  // decoding, bounded by max_body_bytes; false when refused (415 for another
  // coding, 400 for bad data, 413 past the bound; the answer is being sent).
  bool DecodeContentEncoding();
  // The coding the response is sent with: what the request's
  // Accept-Encoding asks for (identity when absent).
  ContentCoding ResponseCoding() const;
  // Compresses reply_.body followed by `extra` into compressed_; false when
  // zlib fails (the reply then goes uncompressed).
  bool CompressReply(ContentCoding coding, std::span<const std::span<const std::byte>> extra);

  // --- Triton's trace-setting and shared-memory extensions, TEI/OpenAI GET routes (triton_routes.cc) ---
  void TritonExtension(const RouteMatch& route);
  // TEI's GET /info and GET /health, OpenAI's GET /v1/models.
  void CompatRoute(RouteId id);

  // --- the text APIs (pipeline_routes.h) ---
  void PipelineRoute(RouteId id);

  // --- vector collections (collection_routes.cc) ---
  void CollectionRoute(const RouteMatch& route);

  // --- the live console (console_routes.cc) ---
  void Console(RouteId id, std::string_view query);

  // --- OpenAI completions and chat completions (generation_routes.cc, issue 22) ---
  void Completions(RouteId id);
  // Hands a parsed generation to its model's batcher and answers it (whole
  // or streamed) from the batcher's callbacks.
  void RunGeneration(std::shared_ptr<GenerationJob> job);
  // Triton's generate extension: /generate and /generate_stream.
  void TritonGenerate(const RouteMatch& route);
  // GET .../generation_stats: the model's batcher counters and pool gauges.
  void GenerationStats(const RouteMatch& route);
  // Server-Sent Events over a chunked response: the head, then the events
  // (whole chunks) a GenerationOutbox hands over, then the final chunk, and
  // the request is answered.
  friend class GenerationOutbox;
  void StartStream();
  // Writes what `job`'s feed held (GenerationJob::taken; then empty): after
  // the head when the stream starts, with the final chunk when it ends.
  void DeliverStream(GenerationJob& job);
  void FlushStream();
  struct SseState {
    bool active = false;   // a streamed answer is being written
    bool writing = false;  // a write is in flight (of in_flight)
    bool done = false;     // the final chunk is queued
    size_t written = 0;
    std::string pending, in_flight;
  } sse_;

  HttpStream stream_;
  Clock::time_point deadline_ = Clock::time_point::max();
  uint32_t watch_ = 0;  // Which WatchForClose is current; bumped to retire it.
  const ConnectionContext& context_;
  const HttpServer::Options& options_;
  boost::beast::flat_buffer buffer_;
  // Room for typical headers; more (up to the 64 KiB limit) comes from the heap.
  alignas(std::max_align_t) std::byte fields_memory_[4096];
  std::pmr::monotonic_buffer_resource fields_arena_{fields_memory_, sizeof(fields_memory_)};
  std::optional<RequestParser> parser_;  // Declared after its arena: destroyed first.
  // The current request's headers, as routing sees them.
  struct Headers final : RequestHeaders {
    std::optional<std::string_view> Get(std::string_view name) const override;
    const Request* request = nullptr;
  } headers_;
  bool keep_alive_ = true;
  Reply reply_;
  std::string head_;
  std::string compressed_;  // The response body, compressed when the client asks.
  std::vector<boost::asio::const_buffer> buffers_;
  InferRequest encode_request_;             // The output choices of the request in flight.
  std::optional<InferResponse> response_;  // Alive while its binary outputs are written.
  EncodedResponse encoded_;
  std::shared_ptr<CancellationFlag> cancellation_;  // The request in flight's.
  std::shared_ptr<CancellationFlag> spare_cancellation_;
  std::shared_ptr<std::string> body_;  // The last request's body buffer, reused.
  std::optional<observability::RequestRecord> record_;  // The request being answered.
  std::optional<absl::StatusOr<RouteMatch>> route_;  // The request being answered's.
  admission::Permit permit_;  // An inference's, until its answer is written.
  // Who sent the request being answered (anonymous while authentication is off).
  admission::IdentityPtr identity_;
  std::string client_subject_;  // The verified client certificate's subject (mTLS); empty: none.
  std::string peer_;            // PeerAddress()'s cache.
  // Set while answering an admin or model-control request: the audit action.
  std::string_view audit_action_;
  bool audit_model_control_ = false;
  // The rate limits' client key: the peer's address, read once per connection.
  std::string client_key_;
  const bool probes_only_ = false;
  size_t request_bytes_ = 0;  // The request being answered's Content-Length.
  // A request refused at its header whose small body is read (and dropped)
  // before this answer, so that the connection stays usable and the client,
  // still sending, is not reset before it reads the answer.
  std::optional<Reply> refusal_;
};

template <typename F>
void Connection::Post(F&& then) {
  boost::asio::post(stream_.get_executor(), std::forward<F>(then));
}

}  // namespace ortserve::frontend
