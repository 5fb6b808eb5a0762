// SPDX-License-Identifier: Apache-2.0
#include "alerts/webhook_client.h"

#include <openssl/ssl.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url/parse.hpp>
#include <exception>

#include "absl/strings/ascii.h"
#include "core/strings.h"

namespace ortserve::alerts {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

constexpr size_t kResponseBodyLimit = 64 * 1024;

struct Exchange {
  const WebhookUrl* url;
  http::request<http::string_body> request;
  std::chrono::steady_clock::time_point deadline;
  const char* step = "resolve";
  WebhookResponse response;
};

template <class Stream>
asio::awaitable<void> WriteAndRead(Stream& stream, Exchange& ex) {
  ex.step = "write";
  co_await http::async_write(stream, ex.request, asio::use_awaitable);
  ex.step = "read";
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.header_limit(16 * 1024);
  parser.body_limit(kResponseBodyLimit);
  co_await http::async_read(stream, buffer, parser, asio::use_awaitable);
  ex.response.status = parser.get().result_int();
  // The receiver's words end up in logs and in the operations view: keep
  // printable ASCII only.
  ex.response.body_prefix = parser.get().body().substr(0, 256);
  for (char& c : ex.response.body_prefix) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
}

asio::awaitable<void> Run(Exchange& ex, ssl::context& tls) {
  auto executor = co_await asio::this_coro::executor;
  tcp::resolver resolver(executor);
  ex.step = "resolve";
  auto endpoints = co_await resolver.async_resolve(ex.url->host, ex.url->port, asio::use_awaitable);
  if (!ex.url->tls) {
    beast::tcp_stream stream(executor);
    // One deadline for every later step: tcp_stream applies it to each
    // operation started until it is changed.
    stream.expires_at(ex.deadline);
    ex.step = "connect";
    co_await stream.async_connect(endpoints, asio::use_awaitable);
    co_await WriteAndRead(stream, ex);
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    co_return;
  }
  beast::ssl_stream<beast::tcp_stream> stream(executor, tls);
  if (!SSL_set_tlsext_host_name(stream.native_handle(), ex.url->host.c_str())) {
    throw beast::system_error(beast::error_code(static_cast<int>(::ERR_get_error()), asio::error::get_ssl_category()));
  }
  stream.set_verify_mode(ssl::verify_peer);
  stream.set_verify_callback(ssl::host_name_verification(ex.url->host));
  beast::get_lowest_layer(stream).expires_at(ex.deadline);
  ex.step = "connect";
  co_await beast::get_lowest_layer(stream).async_connect(endpoints, asio::use_awaitable);
  ex.step = "TLS handshake";
  co_await stream.async_handshake(ssl::stream_base::client, asio::use_awaitable);
  co_await WriteAndRead(stream, ex);
  // No close_notify wait: the response is complete, and a receiver that never
  // answers it must not cost the deadline.
}

}  // namespace

struct WebhookClient::Impl {
  Options options;
  asio::io_context ioc{1};
  ssl::context tls{ssl::context::tls_client};
};

absl::StatusOr<WebhookUrl> ParseWebhookUrl(std::string_view text) {
  auto parsed = boost::urls::parse_absolute_uri(text);
  if (!parsed) return absl::InvalidArgumentError(ortserve::StrCat("webhook URL '", text, "' is not an absolute URL"));
  const boost::urls::url_view& u = *parsed;
  const std::string scheme = absl::AsciiStrToLower(std::string(u.scheme()));
  WebhookUrl url;
  if (scheme == "https") {
    url.tls = true;
  } else if (scheme != "http") {
    return absl::InvalidArgumentError(ortserve::StrCat("webhook URL '", text, "': the scheme must be http or https"));
  }
  if (u.has_userinfo()) {
    return absl::InvalidArgumentError(
        ortserve::StrCat("webhook URL for host ", std::string(u.encoded_host()),
                     ": no user info in the URL; the receiver verifies the HMAC signature instead"));
  }
  if (u.encoded_host().empty()) return absl::InvalidArgumentError(ortserve::StrCat("webhook URL '", text, "' has no host"));
  if (u.has_fragment()) return absl::InvalidArgumentError(ortserve::StrCat("webhook URL '", text, "' has a fragment"));
  url.host = std::string(u.host_address());
  url.port = u.has_port() ? std::string(u.port()) : (url.tls ? "443" : "80");
  if (url.port.empty()) url.port = url.tls ? "443" : "80";
  url.host_header = std::string(u.encoded_host_and_port());
  url.target = std::string(u.encoded_path());
  if (url.target.empty()) url.target = "/";
  if (u.has_query()) url.target += "?" + std::string(u.encoded_query());
  return url;
}

WebhookClient::WebhookClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
WebhookClient::~WebhookClient() = default;

absl::StatusOr<std::unique_ptr<WebhookClient>> WebhookClient::Create(Options options) {
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  beast::error_code ec;
  impl->tls.set_default_verify_paths(ec);  // A machine without a CA bundle can still use ca_file.
  impl->tls.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                        ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  if (!impl->options.ca_file.empty()) {
    impl->tls.load_verify_file(impl->options.ca_file, ec);
    if (ec) {
      return absl::InvalidArgumentError(
          ortserve::StrCat("webhook CA file ", impl->options.ca_file, " cannot be loaded: ", ec.message()));
    }
  }
  return std::unique_ptr<WebhookClient>(new WebhookClient(std::move(impl)));
}

absl::StatusOr<WebhookResponse> WebhookClient::Post(const WebhookUrl& url,
                                                    const std::vector<std::pair<std::string, std::string>>& headers,
                                                    std::string_view body) {
  Exchange ex;
  ex.url = &url;
  ex.deadline = std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(impl_->options.timeout);
  ex.request.method(http::verb::post);
  ex.request.target(url.target);
  ex.request.version(11);
  ex.request.set(http::field::host, url.host_header);
  ex.request.set(http::field::user_agent, "ortserve-alerts/1");
  ex.request.set(http::field::content_type, "application/json");
  ex.request.set(http::field::connection, "close");
  for (const auto& [name, value] : headers) ex.request.set(name, value);
  ex.request.body() = std::string(body);
  ex.request.prepare_payload();

  std::string error;
  asio::co_spawn(impl_->ioc, Run(ex, impl_->tls), [&](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const boost::system::system_error& se) {
      error = se.code() == beast::error::timeout ? "timed out" : se.code().message();
    } catch (const std::exception& other) {
      error = other.what();
    }
  });
  impl_->ioc.restart();
  impl_->ioc.run();
  if (!error.empty()) return absl::UnavailableError(ortserve::StrCat(ex.step, ": ", error));
  return std::move(ex.response);
}

}  // namespace ortserve::alerts
