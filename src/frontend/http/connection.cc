// SPDX-License-Identifier: Apache-2.0
// Connection: reading requests, routing them, writing answers.
#include "frontend/http/connection.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <tuple>
#include <utility>

#include "boost/asio/dispatch.hpp"
#include "boost/asio/write.hpp"
#include "boost/beast/core/string.hpp"
#include "admission/tls_context.h"
#include "core/strings.h"
#include "frontend/access_control.h"
#include "frontend/http/rest_json.h"
#include "observability/profiler.h"
#include "repository/model_manager.h"
#include "simdjson.h"

namespace ortserve::frontend {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

std::optional<std::string_view> Connection::Headers::Get(std::string_view name) const {
  if (request == nullptr) return std::nullopt;
  auto it = request->find(beast::string_view(name.data(), name.size()));
  if (it == request->end()) return std::nullopt;
  return std::string_view(it->value().data(), it->value().size());
}

void Connection::Start() {
  net::dispatch(stream_.get_executor(), [self = shared_from_this()] {
    if (!self->stream_.tls()) return self->ReadHeader();
    // The handshake is asynchronous like every other step, and bounded by
    // the idle timeout (the sweeper closes a client that stalls in it).
    self->ArmDeadline();
    self->stream_.tls_stream().async_handshake(
        net::ssl::stream_base::server, [self](beast::error_code ec) { self->OnHandshake(ec); });
  });
}

void Connection::OnHandshake(beast::error_code ec) {
  if (ec) return Close();  // A client that does not speak TLS, or whose certificate does not verify.
  client_subject_ = admission::VerifiedClientSubject(stream_.tls_stream().native_handle());
  ReadHeader();
}

void Connection::ArmDeadline() {
  // Saturating: a timeout of years (or infinite) means never.
  const auto now = Clock::now();
  const int64_t timeout = absl::ToInt64Nanoseconds(options_.idle_timeout);
  deadline_ = timeout >= (Clock::time_point::max() - now).count() ? Clock::time_point::max()
                                                                   : now + std::chrono::nanoseconds(timeout);
}

void Connection::ReadHeader() {
  parser_.reset();
  fields_arena_.release();
  parser_.emplace(std::piecewise_construct, std::make_tuple(), std::make_tuple(FieldAllocator(&fields_arena_)));
  parser_->body_limit(options_.max_body_bytes);
  parser_->header_limit(64 * 1024);
  if (buffer_.capacity() < kInitialRoom) buffer_.reserve(kInitialRoom);
  ArmDeadline();
  http::async_read_header(stream_, buffer_, *parser_,
                          [self = shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
}

namespace {

// RFC 9112 section 6: a request whose Transfer-Encoding does not end in
// chunked has no way to tell where its body ends, and one with both
// Transfer-Encoding and Content-Length may be read one way by a proxy and
// another way here (request smuggling). Both are refused and the connection
// closed. The one coding ortserve reads is plain "chunked".
std::optional<std::string> SmugglingRisk(const Connection::Request& request) {
  size_t codings = 0;
  std::string_view value;
  for (const auto& field : request) {
    if (field.name() != http::field::transfer_encoding) continue;
    ++codings;
    value = std::string_view(field.value().data(), field.value().size());
  }
  if (codings == 0) return std::nullopt;
  const size_t first = value.find_first_not_of(" \t");
  const size_t last = value.find_last_not_of(" \t");
  const std::string_view trimmed = first == std::string_view::npos ? "" : value.substr(first, last - first + 1);
  if (codings > 1 || !beast::iequals(beast::string_view(trimmed.data(), trimmed.size()), "chunked")) {
    return StrCat("Transfer-Encoding '", value, "' is not supported: only a single 'chunked' coding is");
  }
  if (request.find(http::field::content_length) != request.end()) {
    return std::string("a request may not carry both Transfer-Encoding and Content-Length");
  }
  return std::nullopt;
}

}  // namespace

void Connection::OnHeader(beast::error_code ec) {
  if (ec) return OnReadError(ec);
  auto& request = parser_->get();
  if (auto risk = SmugglingRisk(request)) {
    keep_alive_ = false;  // Its body cannot be told from the next request: never read on.
    BeginRecord();
    return Send(Error(400, *std::move(risk)));
  }
  // The JSON decoder reads a little past the end (simdjson's padding);
  // reserving it here lets the body be parsed where it lands, uncopied.
  if (auto length = parser_->content_length()) {
    if (*length > options_.max_body_bytes) return OnReadError(http::error::body_limit);
    request_bytes_ = *length;
    // The body lands in the buffer the last request's body used, when no
    // request or response holds that one any more: warm, it allocates nothing.
    if (body_.use_count() == 1 && body_->capacity() <= kRetainedBytes) {
      request.body().swap(*body_);
      request.body().clear();  // The reader appends.
    }
    request.body().reserve(*length + simdjson::SIMDJSON_PADDING);
    // Beast reads as much as the read buffer has room for (at least 512
    // bytes): a body of tensors would come in hundreds of small reads.
    // With room for 64 KiB (Beast's most per read) a 1 MB body takes ~16.
    // The room stays with the connection, for its next request.
    if (*length > kSmallBody) buffer_.reserve(std::min<size_t>(*length, kReadChunk));
  }
  if (!MatchAndAdmit()) return;
  if (beast::iequals(request[http::field::expect], "100-continue")) {
    static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    net::async_write(stream_, net::buffer(kContinue), [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->Close();
      self->ReadBody();
    });
    return;
  }
  ReadBody();
}

void Connection::ReadBody() {
  http::async_read(stream_, buffer_, *parser_,
                   [self = shared_from_this()](beast::error_code ec, size_t) { self->OnBody(ec); });
}

void Connection::OnReadError(beast::error_code ec) {
  if (ec == http::error::body_limit) {
    keep_alive_ = false;
    return Send(Error(413, StrCat("request body exceeds the limit of ", options_.max_body_bytes,
                                  " bytes (--http-max-body-bytes)")));
  }
  if (ec == http::error::header_limit || ec.category() == http::make_error_code(http::error::bad_target).category()) {
    if (ec == http::error::end_of_stream || ec == http::error::partial_message) return Close();
    keep_alive_ = false;
    return Send(Error(400, StrCat("malformed HTTP request: ", ec.message())));
  }
  Close();
}

void Connection::OnBody(beast::error_code ec) {
  if (refusal_) {  // A refused request's body, read to keep the connection: now the answer.
    Reply refusal = *std::move(refusal_);
    refusal_.reset();
    keep_alive_ = !ec && parser_->get().keep_alive();
    parser_->get().body().clear();
    return Send(std::move(refusal));
  }
  if (ec) return OnReadError(ec);
  keep_alive_ = parser_->get().keep_alive();
  BeginRecord();
  if (!DecodeContentEncoding()) return;
  Route();
}

void Connection::BeginRecord() {
  // Answering may take longer than the idle timeout (a model run, a load).
  deadline_ = Clock::time_point::max();
  // Counted until its response is written: the shutdown drain waits for it.
  context_.active->fetch_add(1, std::memory_order_acq_rel);
  const auto traceparent = parser_->get()["traceparent"];
  record_.emplace(&options_.service->telemetry(), observability::Protocol::kHttp,
                  std::string_view(traceparent.data(), traceparent.size()));
}

bool Connection::MatchAndAdmit() {
  const Request& request = parser_->get();
  const std::string_view target(request.target().data(), request.target().size());
  const http::verb verb = request.method();
  const Method method = verb == http::verb::get    ? Method::kGet
                        : verb == http::verb::post   ? Method::kPost
                        : verb == http::verb::put    ? Method::kPut
                        : verb == http::verb::delete_ ? Method::kDelete
                                                     : Method::kOther;
  const auto method_name = request.method_string();
  route_.emplace(MatchRoute(method, std::string_view(method_name.data(), method_name.size()), target));
  audit_action_ = {};
  if (probes_only_) {
    const bool probe = route_->ok() && ((*route_)->id == RouteId::kHealthLive ||
                                        (*route_)->id == RouteId::kHealthReady || (*route_)->id == RouteId::kModelReady ||
                                        (*route_)->id == RouteId::kTeiHealth);
    if (!probe) {
      keep_alive_ = false;
      BeginRecord();
      Send(Error(503, StrCat("the server is at its connection limit (--http-max-connections ",
                             options_.max_connections, "); this connection serves health probes only")));
      return false;
    }
  }
  if (context_.access != nullptr && !Authorize()) return false;
  if (options_.admission == nullptr || !route_->ok()) return true;
  const RouteId id = (*route_)->id;
  // Collection writes and queries may embed text: admitted like the text APIs.
  const bool collection = id == RouteId::kCollectionDocuments || id == RouteId::kCollectionQuery;
  const bool text = id == RouteId::kSaeAnalyze || id == RouteId::kTeiEmbed || id == RouteId::kTeiPredict ||
                    id == RouteId::kOpenAiEmbeddings || id == RouteId::kOpenAiCompletions ||
                    id == RouteId::kOpenAiChatCompletions || id == RouteId::kTritonGenerate ||
                    id == RouteId::kTritonGenerateStream || collection;
  if (id != RouteId::kModelInfer && !text) return true;
  // A chunked body's size is not known yet, nor what a compressed body
  // decodes to: each is counted at the most it may be (--http-max-input-size).
  const auto coding = request[http::field::content_encoding];
  const bool compressed = !coding.empty() && !beast::iequals(coding, "identity");
  const uint64_t body =
      compressed ? options_.max_body_bytes : parser_->content_length().value_or(options_.max_body_bytes);
  uint64_t json = body;
  if (const auto header = request["Inference-Header-Content-Length"]; !header.empty() && !text) {
    uint64_t length = 0;
    auto [end, ec] = std::from_chars(header.data(), header.data() + header.size(), length);
    if (ec == std::errc() && end == header.data() + header.size()) json = std::min(length, body);
  }
  const uint64_t cost = admission::Admission::BodyCost(json, /*json=*/true) + (body - json);
  // Rate limits count per credential when there is one (all of a key's
  // connections and addresses share its bucket), else per client address.
  if (identity_ && identity_->kind != admission::Identity::Kind::kAnonymous) {
    client_key_.assign("id:").append(identity_->id);
  } else if (client_key_.empty() || client_key_.starts_with("id:")) {
    beast::error_code ec;
    const auto endpoint = stream_.socket().remote_endpoint(ec);  // The address: its connections share a bucket.
    client_key_ = ec ? std::string("unknown") : endpoint.address().to_string();
  }
  auto permit = options_.admission->TryAdmit(
      {.model = collection ? std::string_view() : std::string_view((*route_)->model), .client = client_key_, .bytes = cost});
  if (permit.ok()) {
    permit_ = *std::move(permit);
    return true;
  }
  BeginRecord();
  if (id == RouteId::kModelInfer) record_->MarkInference();
  // Refused before its body is read. A small body is read and dropped first
  // (into the buffer the connection reuses), so the client, which may still
  // be sending it, reads the answer instead of a reset and keeps its
  // connection; a large one (or one the client waits for 100-continue to
  // send) is never read, and the connection closes after the answer.
  const auto length = parser_->content_length();
  if (length.has_value() && *length <= kDiscardBody && !beast::iequals(request[http::field::expect], "100-continue")) {
    refusal_.emplace(Error(permit.status()));
    ReadBody();
    return false;
  }
  keep_alive_ = false;
  Send(Error(permit.status()));
  return false;
}

Connection::Reply Connection::Error(unsigned status, std::string message) {
  return Reply{status, kJson, EncodeError(message)};
}

Connection::Reply Connection::Error(const absl::Status& status) {
  Reply reply = Error(HttpStatusFor(status.code()), std::string(ToStd(status.message())));
  // A lazy model still loading says when to come back.
  if (auto retry = status.GetPayload(repository::kRetryAfterPayload)) {
    reply.headers.emplace_back("Retry-After", std::string(*retry));
  }
  return reply;
}

void Connection::Route() {
  const Request& request = parser_->get();
  const std::string_view target(request.target().data(), request.target().size());
  absl::StatusOr<RouteMatch>& route = *route_;
  if (!route.ok()) {
    const unsigned status = IsMethodNotAllowed(route.status()) ? 405 : HttpStatusFor(route.status().code());
    return Send(Error(status, std::string(ToStd(route.status().message()))));
  }
  InferenceService& service = *options_.service;
  switch (route->id) {
    case RouteId::kServerMetadata: return Send(Ok(ServerMetadataJson(options_.service->Extensions())));
    case RouteId::kHealthLive: return Send(Bare(service.Live() ? 200 : 503));
    case RouteId::kHealthReady: return Send(Bare(service.Ready() ? 200 : 503));
    case RouteId::kLogging: return Logging();
    case RouteId::kProfileCpu: return ProfileCpu(route->query);
    case RouteId::kProfileHeap: return ProfileHeap();
    case RouteId::kAlerts: return Alerts(route->query);
    case RouteId::kAlertsReplay: return AlertsReplay(route->query);
    case RouteId::kRepositoryIndex: return RepositoryIndex();
    case RouteId::kRepositoryLoad: return RepositoryControl(route->model, /*load=*/true);
    case RouteId::kRepositoryUnload: return RepositoryControl(route->model, /*load=*/false);
    case RouteId::kAllStats: return Send(Stats("", ""));
    case RouteId::kModelMetadata: return ModelMetadata(*route);
    case RouteId::kModelReady: return ModelReady(*route);
    case RouteId::kModelConfig: return ModelConfig(*route);
    case RouteId::kModelStats: return Send(Stats(route->model, route->version));
    case RouteId::kModelInfer: return Infer(std::move(route->model), std::move(route->version));
    case RouteId::kTraceSetting:
    case RouteId::kSystemShmStatus:
    case RouteId::kSystemShmRegister:
    case RouteId::kSystemShmUnregister:
    case RouteId::kCudaShm: return TritonExtension(*route);
    case RouteId::kTeiInfo:
    case RouteId::kTeiHealth:
    case RouteId::kOpenAiModels: return CompatRoute(route->id);
    case RouteId::kSaeAnalyze:
    case RouteId::kTeiEmbed:
    case RouteId::kTeiPredict:
    case RouteId::kOpenAiEmbeddings: {
      if (auto refused = CheckBodyModel(); !refused.ok()) return Send(Error(refused));
      return PipelineRoute(route->id);
    }
    case RouteId::kConsole:
    case RouteId::kConsoleScript:
    case RouteId::kConsoleStyle:
    case RouteId::kConsoleSnapshot: return Console(route->id, route->query);
    case RouteId::kOpenAiCompletions:
    case RouteId::kOpenAiChatCompletions: {
      if (auto refused = CheckBodyModel(); !refused.ok()) return Send(Error(refused));
      return Completions(route->id);
    }
    case RouteId::kTritonGenerate:
    case RouteId::kTritonGenerateStream: return TritonGenerate(*route);
    case RouteId::kGenerationStats: return GenerationStats(*route);
    case RouteId::kCollections:
    case RouteId::kCollection:
    case RouteId::kCollectionDocuments:
    case RouteId::kCollectionDocument:
    case RouteId::kCollectionQuery: return CollectionRoute(*route);
  }
  Send(Error(404, StrCat("no such endpoint: ", target)));
}

std::shared_ptr<CancellationFlag> Connection::FreshCancellation() {
  if (spare_cancellation_.use_count() != 1 || spare_cancellation_->cancelled()) {
    spare_cancellation_ = std::make_shared<CancellationFlag>();
  }
  return spare_cancellation_;
}

void Connection::Send(Reply reply) {
  reply_ = std::move(reply);
  SendReply({}, 0);
}

void Connection::SendReply(std::span<const std::span<const std::byte>> extra, size_t extra_size) {
  if (!audit_action_.empty()) AuditAction(reply_.status);
  head_.clear();
  head_.append("HTTP/1.1 ");
  AppendNumber(reply_.status);
  head_.push_back(' ');
  const auto reason = http::obsolete_reason(static_cast<http::status>(reply_.status));
  head_.append(reason.data(), reason.size());
  head_.append("\r\nServer: ortserve\r\nContent-Type: ");
  head_.append(reply_.content_type);
  // Compressed when the client asks: the body and binary sections as one
  // stream; the Inference-Header-Content-Length still counts decoded bytes.
  std::string_view body = reply_.body;
  if (const ContentCoding coding = ResponseCoding();
      coding != ContentCoding::kIdentity && !body.empty() && CompressReply(coding, extra)) {
    body = compressed_;
    extra = {};
    extra_size = 0;
    head_.append("\r\nContent-Encoding: ").append(ContentCodingName(coding));
  }
  head_.append("\r\nContent-Length: ");
  AppendNumber(body.size() + extra_size);
  if (reply_.inference_header_length != Reply::kNoHeaderLength) {
    head_.append("\r\nInference-Header-Content-Length: ");
    AppendNumber(reply_.inference_header_length);
  }
  for (const auto& [key, value] : reply_.headers) {
    head_.append("\r\n").append(key).append(": ").append(value);
  }
  if (record_ && record_->inference()) {
    // W3C trace context: the caller learns this request's span.
    if (std::string traceparent = record_->ResponseTraceparent(); !traceparent.empty()) {
      head_.append("\r\ntraceparent: ").append(traceparent);
    }
  }
  if (keep_alive_) {
    head_.append("\r\nConnection: keep-alive");
    if (!context_.keep_alive_header.empty()) head_.append("\r\n").append(context_.keep_alive_header);
    head_.append("\r\n\r\n");
  } else {
    head_.append("\r\nConnection: close\r\n\r\n");
  }
  buffers_.clear();
  buffers_.emplace_back(head_.data(), head_.size());
  if (!body.empty()) buffers_.emplace_back(body.data(), body.size());
  for (const auto& b : extra) buffers_.emplace_back(b.data(), b.size());
  StopWatchingForClose();
  ArmDeadline();
  net::async_write(stream_, buffers_, [self = shared_from_this()](beast::error_code ec, size_t written) {
    self->permit_.Release();
    self->FinishRecord(written);
    self->response_.reset();
    self->encoded_.binary.clear();  // Views into the response just released.
    self->encoded_.owned.clear();
    self->TrimRetained();
    // A large body's memory (the body, its decoding) goes back to the OS.
    observability::HeapProfiler::AfterRequest(std::exchange(self->request_bytes_, 0));
    if (ec || !self->keep_alive_) return self->Close();
    self->ReadHeader();
  });
}

void Connection::TrimRetained() {
  if (reply_.body.capacity() > kRetainedBytes) std::string().swap(reply_.body);
  if (compressed_.capacity() > kRetainedBytes) std::string().swap(compressed_);
  if (encoded_.json.capacity() > kRetainedBytes) std::string().swap(encoded_.json);
  if (body_ && body_->capacity() > kRetainedBytes) body_.reset();
}

void Connection::AppendNumber(size_t value) {
  char digits[24];
  const auto end = std::to_chars(digits, digits + sizeof(digits), value).ptr;
  head_.append(digits, end);
}

void Connection::FinishRecord(size_t written) {
  if (!record_) return;
  auto& request = parser_->get();
  const auto method = request.method_string();
  const auto target = request.target();
  const size_t body_bytes = written > head_.size() ? written - head_.size() : 0;
  record_->Finish({std::string_view(method.data(), method.size()), std::string_view(target.data(), target.size()),
                   reply_.status},
                  observability::OutcomeForHttpStatus(reply_.status), body_bytes,
                  reply_.status >= 400 ? std::string_view(reply_.body) : std::string_view());
  record_.reset();
  context_.active->fetch_sub(1, std::memory_order_acq_rel);
}

void Connection::Close() {
  if (cancellation_) cancellation_->Cancel();
  deadline_ = Clock::time_point::max();
  beast::error_code ignored;
  // Under TLS no close_notify is sent: every answer carries its length, so
  // a client cannot take the close for a cut answer.
  stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  stream_.socket().close(ignored);
}

void Connection::WatchForClose() {
  // Readable with data means the client pipelined its next request: that
  // stays in the socket for the next read.
  // Under TLS the raw socket is watched: bytes waiting (a TLS record) are
  // left for the next read; end of stream is a client gone either way.
  stream_.socket().async_wait(tcp::socket::wait_read, [self = shared_from_this(), watch = ++watch_](beast::error_code ec) {
    // Answered first (the wait was cancelled), or a wait of an earlier request.
    if (ec || watch != self->watch_) return;
    char byte;
    const ssize_t n = ::recv(self->stream_.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
      if (self->cancellation_) self->cancellation_->Cancel();
      self->keep_alive_ = false;
    }
  });
}

void Connection::StopWatchingForClose() {
  ++watch_;
  beast::error_code ignored;
  stream_.socket().cancel(ignored);
}

void Connection::PipelineRoute(RouteId id) {
  cancellation_ = FreshCancellation();
  // Routing (X-Model-Version) and X-Request-Id read the headers, which live
  // in the parser until the next request is read.
  headers_.request = &parser_->get();
  HandlePipelineRoute(*options_.service, options_.pipeline, id, parser_->get().body(),
                      {&headers_, &*record_, identity_ ? std::string_view(identity_->id) : std::string_view(),
                       identity_ ? admission::KindName(identity_->kind) : std::string_view()},
                      cancellation_, [self = shared_from_this()](PipelineAnswer answer) mutable {
                        self->Post([self, answer = std::move(answer)]() mutable {
                          self->cancellation_.reset();
                          Reply reply{answer.status, kJson, std::move(answer.body)};
                          if (!answer.request_id.empty()) {
                            reply.headers.emplace_back("X-Request-Id", std::move(answer.request_id));
                          }
                          self->Send(std::move(reply));
                        });
                      });
  WatchForClose();
}

}  // namespace ortserve::frontend
