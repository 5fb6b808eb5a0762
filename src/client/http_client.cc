// SPDX-License-Identifier: Apache-2.0
// The HTTP transport: Boost.Beast on one I/O thread, with a pool of keep-alive
// connections. Blocking calls run the same asynchronous operations and wait
// for them, because Beast's timeouts (tcp_stream::expires_at) only apply to
// asynchronous operations.
#include <cctype>
#include <charconv>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "boost/asio/connect.hpp"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/post.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "boost/asio/ssl/host_name_verification.hpp"
#include "boost/beast/ssl.hpp"
#include "client/http_codec.h"
#include "client/tls_context.h"
#include "client/transports.h"
#include "core/status.h"
#include "core/strings.h"

namespace ortserve::client {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct HttpResult {
  unsigned status = 0;
  std::shared_ptr<std::string> body;
  std::optional<size_t> header_length;  // Inference-Header-Content-Length.
};
using HttpDone = absl::AnyInvocable<void(absl::StatusOr<HttpResult>) &&>;

// Percent-encodes a path segment (model names and versions).
std::string PathSegment(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string ModelTarget(std::string_view name, std::string_view version, std::string_view action) {
  std::string target = StrCat("/v2/models/", PathSegment(name));
  if (!version.empty()) target += StrCat("/versions/", PathSegment(version));
  if (!action.empty()) target += StrCat("/", action);
  return target;
}

class HttpClient;

// A connection: TCP, or TLS over it (https). Meets Asio's AsyncReadStream
// and AsyncWriteStream for completion handlers, so Beast's operations run on
// either. Runs only on the client's I/O thread.
class ClientStream {
 public:
  using TlsStream = beast::ssl_stream<beast::tcp_stream>;
  using executor_type = beast::tcp_stream::executor_type;
  ClientStream(asio::io_context& ioc, asio::ssl::context* tls) {
    if (tls != nullptr) {
      tls_.emplace(ioc, *tls);
    } else {
      plain_.emplace(ioc);
    }
  }
  beast::tcp_stream& tcp() { return tls_ ? tls_->next_layer() : *plain_; }
  TlsStream* tls() { return tls_ ? &*tls_ : nullptr; }
  executor_type get_executor() { return tcp().get_executor(); }
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
  std::optional<beast::tcp_stream> plain_;
  std::optional<TlsStream> tls_;
};

// One request/response exchange. Lives (shared) until its handlers finish;
// runs only on the client's I/O thread.
class Exchange : public std::enable_shared_from_this<Exchange> {
 public:
  Exchange(HttpClient* client, http::request<http::string_body> request, absl::Time deadline, HttpDone done)
      : client_(client), request_(std::move(request)), deadline_(deadline), done_(std::move(done)) {}
  void Start();

 private:
  void Connect();
  void Write();
  void OnError(beast::error_code ec, std::string_view during);
  void Finish(absl::StatusOr<HttpResult> result);
  void Arm() {
    if (deadline_ == absl::InfiniteFuture()) {
      stream_->tcp().expires_never();
    } else {
      stream_->tcp().expires_after(std::chrono::nanoseconds(
          std::max<int64_t>(0, absl::ToInt64Nanoseconds(deadline_ - absl::Now()))));
    }
  }

  HttpClient* client_;
  http::request<http::string_body> request_;
  absl::Time deadline_;
  HttpDone done_;
  std::unique_ptr<ClientStream> stream_;
  bool reused_ = false;  // stream_ came from the idle pool.
  beast::flat_buffer buffer_;
  std::optional<http::response_parser<http::string_body>> parser_;
};

class HttpClient final : public Client {
 public:
  HttpClient(ClientOptions options, std::unique_ptr<asio::ssl::context> tls)
      : options_(std::move(options)),
        tls_(std::move(tls)),
        work_(asio::make_work_guard(ioc_)),
        thread_([this] { ioc_.run(); }) {}

  // Shutdown order: wait for in-flight exchanges, then stop and join the I/O
  // thread; idle connections close after it (as members, before ioc_).
  ~HttpClient() override {
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(+[](int* n) { return *n == 0; }, &in_flight_));
    }
    work_.reset();
    ioc_.stop();
    thread_.join();
  }

  Protocol protocol() const override { return Protocol::kHttp; }

  absl::StatusOr<bool> ServerLive() override { return Health("/v2/health/live"); }
  absl::StatusOr<bool> ServerReady() override { return Health("/v2/health/ready"); }
  absl::StatusOr<bool> ModelReady(std::string_view name, std::string_view version) override {
    return Health(ModelTarget(name, version, "ready"));
  }

  absl::StatusOr<ServerMetadata> GetServerMetadata() override {
    ASSIGN_OR_RETURN(HttpResult result, RoundTrip(http::verb::get, "/v2", {}, std::nullopt, CallDeadline(options_.timeout)));
    RETURN_IF_ERROR(ErrorOf(result));
    return DecodeHttpServerMetadata(*result.body);
  }

  absl::StatusOr<ModelMetadata> GetModelMetadata(std::string_view name, std::string_view version) override {
    ASSIGN_OR_RETURN(HttpResult result, RoundTrip(http::verb::get, ModelTarget(name, version, ""), {}, std::nullopt,
                                                  CallDeadline(options_.timeout)));
    RETURN_IF_ERROR(ErrorOf(result));
    return DecodeHttpModelMetadata(*result.body);
  }

  absl::StatusOr<std::vector<ModelIndexEntry>> RepositoryIndex() override {
    ASSIGN_OR_RETURN(HttpResult result, RoundTrip(http::verb::post, "/v2/repository/index", "{}", std::nullopt,
                                                  CallDeadline(options_.timeout)));
    RETURN_IF_ERROR(ErrorOf(result));
    return DecodeHttpRepositoryIndex(*result.body);
  }

  absl::StatusOr<InferResponse> Infer(const InferRequest& request) override {
    ASSIGN_OR_RETURN(HttpInferBody body, EncodeHttpInferRequest(request, options_.binary_http));
    ASSIGN_OR_RETURN(HttpResult result,
                     RoundTrip(http::verb::post, ModelTarget(request.model_name, request.model_version, "infer"),
                               std::move(body.body), body.header_length,
                               CallDeadline(options_.timeout, request.deadline), TraceparentOf(request.trace)));
    return InferResult(std::move(result));
  }

  void InferAsync(const InferRequest& request, InferDone done) override {
    absl::StatusOr<HttpInferBody> body = EncodeHttpInferRequest(request, options_.binary_http);
    if (!body.ok()) return std::move(done)(body.status());
    Send(http::verb::post, ModelTarget(request.model_name, request.model_version, "infer"), std::move(body->body),
         body->header_length, CallDeadline(options_.timeout, request.deadline),
         [done = std::move(done)](absl::StatusOr<HttpResult> result) mutable {
           if (!result.ok()) return std::move(done)(result.status());
           std::move(done)(InferResult(std::move(*result)));
         },
         TraceparentOf(request.trace));
  }

 private:
  friend class Exchange;

  static absl::Status ErrorOf(const HttpResult& result) {
    if (result.status == 200) return absl::OkStatus();
    return HttpErrorStatus(result.status, *result.body);
  }

  static absl::StatusOr<InferResponse> InferResult(HttpResult result) {
    RETURN_IF_ERROR(ErrorOf(result));
    return DecodeHttpInferResponse(std::move(result.body), result.header_length);
  }

  absl::StatusOr<bool> Health(const std::string& target) {
    ASSIGN_OR_RETURN(HttpResult result, RoundTrip(http::verb::get, target, {}, std::nullopt, CallDeadline(options_.timeout)));
    if (result.status == 200) return true;
    if (result.body->empty()) return false;
    return HttpErrorStatus(result.status, *result.body);
  }

  // Starts an exchange on the I/O thread; `done` runs there. A non-empty
  // `traceparent` is sent as the W3C header.
  void Send(http::verb verb, const std::string& target, std::string body, std::optional<size_t> header_length,
            absl::Time deadline, HttpDone done, const std::string& traceparent = {}) {
    http::request<http::string_body> request(verb, target, 11);
    request.set(http::field::host, StrCat(options_.address, ":", options_.port));
    request.set(http::field::user_agent, "ortserve-client");
    if (!options_.api_key.empty()) request.set("X-API-Key", options_.api_key);
    if (!options_.bearer_token.empty()) request.set(http::field::authorization, StrCat("Bearer ", options_.bearer_token));
    if (!traceparent.empty()) request.set("traceparent", traceparent);
    request.keep_alive(true);
    if (verb == http::verb::post) {
      request.set(http::field::content_type, header_length ? "application/octet-stream" : "application/json");
      if (header_length) request.set("Inference-Header-Content-Length", std::to_string(*header_length));
      request.body() = std::move(body);
      request.prepare_payload();
    }
    {
      absl::MutexLock lock(&mu_);
      ++in_flight_;
    }
    auto exchange = std::make_shared<Exchange>(this, std::move(request), deadline, std::move(done));
    asio::post(ioc_, [exchange] { exchange->Start(); });
  }

  absl::StatusOr<HttpResult> RoundTrip(http::verb verb, const std::string& target, std::string body,
                                       std::optional<size_t> header_length, absl::Time deadline,
                                       const std::string& traceparent = {}) {
    if (std::this_thread::get_id() == thread_.get_id()) {
      return absl::FailedPreconditionError(
          "a blocking ortserve client call was made from an asynchronous callback (the client's I/O thread)");
    }
    absl::Notification finished;
    absl::StatusOr<HttpResult> out;
    Send(verb, target, std::move(body), header_length, deadline, [&](absl::StatusOr<HttpResult> result) {
      out = std::move(result);
      finished.Notify();
    }, traceparent);
    finished.WaitForNotification();
    return out;
  }

  // Called by an exchange after its `done` ran.
  void Completed() {
    absl::MutexLock lock(&mu_);
    --in_flight_;
  }

  const ClientOptions options_;
  const std::unique_ptr<asio::ssl::context> tls_;  // Null: plain HTTP. Outlives the connections.
  asio::io_context ioc_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  // Runs only on the I/O thread: keep-alive connections not in use.
  std::vector<std::unique_ptr<ClientStream>> idle_;
  absl::Mutex mu_;
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;  // Last: starts after everything it uses exists.
};

void Exchange::Start() {
  if (!client_->idle_.empty()) {
    stream_ = std::move(client_->idle_.back());
    client_->idle_.pop_back();
    reused_ = true;
    return Write();
  }
  Connect();
}

void Exchange::Connect() {
  reused_ = false;
  stream_ = std::make_unique<ClientStream>(client_->ioc_, client_->tls_.get());
  auto resolver = std::make_shared<tcp::resolver>(client_->ioc_);
  resolver->async_resolve(
      client_->options_.address, std::to_string(client_->options_.port),
      [self = shared_from_this(), resolver](beast::error_code ec, tcp::resolver::results_type endpoints) {
        if (ec) return self->OnError(ec, "resolving");
        self->Arm();
        self->stream_->tcp().async_connect(endpoints, [self](beast::error_code ec, const tcp::endpoint&) {
          if (ec) return self->OnError(ec, "connecting to");
          ClientStream::TlsStream* tls = self->stream_->tls();
          if (tls == nullptr) return self->Write();
          // The server's name for SNI and for checking its certificate.
          const ClientOptions& options = self->client_->options_;
          const std::string& host = options.tls_server_name.empty() ? options.address : options.tls_server_name;
          beast::error_code not_literal;
          asio::ip::make_address(host, not_literal);
          if (not_literal) SSL_set_tlsext_host_name(tls->native_handle(), host.c_str());
          tls->set_verify_callback(asio::ssl::host_name_verification(host));
          tls->async_handshake(asio::ssl::stream_base::client, [self](beast::error_code ec) {
            if (ec) return self->OnError(ec, "TLS handshake with");
            self->Write();
          });
        });
      });
}

void Exchange::Write() {
  Arm();
  http::async_write(*stream_, request_, [self = shared_from_this()](beast::error_code ec, size_t) {
    if (ec) return self->OnError(ec, "sending to");
    self->parser_.emplace();
    self->parser_->body_limit(boost::none);
    self->buffer_.clear();
    http::async_read(*self->stream_, self->buffer_, *self->parser_, [self](beast::error_code ec, size_t) {
      if (ec) return self->OnError(ec, "reading from");
      auto& response = self->parser_->get();
      HttpResult result;
      result.status = response.result_int();
      result.body = std::make_shared<std::string>(std::move(response.body()));
      auto header = response.find("Inference-Header-Content-Length");
      if (header != response.end()) {
        size_t length = 0;
        std::string_view text(header->value().data(), header->value().size());
        auto [end, err] = std::from_chars(text.data(), text.data() + text.size(), length);
        if (err != std::errc() || end != text.data() + text.size()) {
          return self->Finish(absl::InternalError(
              StrCat("malformed response from the server: Inference-Header-Content-Length '", text, "'")));
        }
        result.header_length = length;
      }
      if (response.keep_alive()) {
        self->stream_->tcp().expires_never();
        self->client_->idle_.push_back(std::move(self->stream_));
      }
      self->Finish(std::move(result));
    });
  });
}

void Exchange::OnError(beast::error_code ec, std::string_view during) {
  // A pooled connection the server closed while it was idle fails on first
  // use; that request never reached the server, so retry once on a new one.
  const bool stale = ec == http::error::end_of_stream || ec == asio::error::eof ||
                     ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
                     ec == asio::ssl::error::stream_truncated;
  if (reused_ && stale && (!parser_ || !parser_->got_some())) return Connect();
  const std::string where = StrCat(during, " ", client_->options_.address, ":", client_->options_.port);
  if (ec == beast::error::timeout) {
    return Finish(absl::DeadlineExceededError(
        StrCat("HTTP request timed out (", absl::FormatDuration(client_->options_.timeout), ") ", where)));
  }
  Finish(absl::UnavailableError(StrCat("HTTP error ", where, ": ", ec.message())));
}

void Exchange::Finish(absl::StatusOr<HttpResult> result) {
  HttpClient* client = client_;
  std::move(done_)(std::move(result));
  done_ = nullptr;
  client->Completed();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Client>> CreateHttpClient(ClientOptions options) {
  std::unique_ptr<asio::ssl::context> tls;
  if (options.tls) {
    // The server's name is checked per connection.
    ASSIGN_OR_RETURN(tls, MakeTlsClientContext(options.tls_ca_file, options.tls_cert_file, options.tls_key_file));
  }
  return std::unique_ptr<Client>(new HttpClient(std::move(options), std::move(tls)));
}

absl::StatusOr<std::unique_ptr<asio::ssl::context>> MakeTlsClientContext(const std::string& ca_file,
                                                                         const std::string& cert_file,
                                                                         const std::string& key_file) {
  auto tls = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
  tls->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                   asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
  tls->set_verify_mode(asio::ssl::verify_peer);
  beast::error_code ec;
  if (ca_file.empty()) {
    tls->set_default_verify_paths(ec);
  } else {
    tls->load_verify_file(ca_file, ec);
  }
  if (ec) return absl::InvalidArgumentError(StrCat("TLS CA file '", ca_file, "': ", ec.message()));
  if (!cert_file.empty()) {
    tls->use_certificate_chain_file(cert_file, ec);
    if (ec) return absl::InvalidArgumentError(StrCat("TLS certificate '", cert_file, "': ", ec.message()));
    tls->use_private_key_file(key_file, asio::ssl::context::pem, ec);
    if (ec) return absl::InvalidArgumentError(StrCat("TLS key '", key_file, "': ", ec.message()));
  }
  return tls;
}

}  // namespace ortserve::client
