// SPDX-License-Identifier: Apache-2.0
// A webhook receiver for the alert tests: a real HTTP/1.1 server on
// 127.0.0.1 (Asio + Beast, one thread per connection) that behaves as a
// receiver honouring Idempotency-Key should: it verifies the signature with
// its own HMAC code (OpenSSL directly, not alerts/signing.h), applies each
// key once, and counts repeats. Knobs: answer 2xx, answer 503, hang without
// answering (after applying), be down (connections refused), answer slowly.
//
// Thread-safe.
#pragma once

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <rapidjson/document.h>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace ortserve::alerts::testing {

class TestReceiver {
 public:
  enum class Mode {
    kOk,        // 200 after applying.
    kFail503,   // 503, nothing applied.
    kHang,      // Applies, then holds the request unanswered until the mode changes.
  };
  struct Delivery {
    std::string key;          // Idempotency-Key.
    std::string request_id;   // From the body.
    std::string patient_key;  // From the body.
    std::string body;
    bool signature_ok = false;
    int attempt = 0;
    absl::Time received;
  };

  // HTTPS with this certificate chain and key (PEM files) when set.
  struct Tls {
    std::string cert_file;
    std::string key_file;
  };

  explicit TestReceiver(std::string secret, std::optional<Tls> tls = std::nullopt) : secret_(std::move(secret)) {
    if (tls.has_value()) {
      namespace ssl = boost::asio::ssl;
      tls_ = std::make_unique<ssl::context>(ssl::context::tls_server);
      tls_->use_certificate_chain_file(tls->cert_file);
      tls_->use_private_key_file(tls->key_file, ssl::context::pem);
    }
    Up();
  }
  ~TestReceiver() {
    Down();
    {
      absl::MutexLock lock(&mu_);
      closing_ = true;
    }
    std::vector<std::thread> connections;
    {
      absl::MutexLock lock(&mu_);
      connections.swap(connections_);
    }
    for (auto& t : connections) t.join();
  }

  uint16_t port() const { return port_; }
  std::string url(std::string_view path = "/alerts", std::string_view host = "127.0.0.1") const {
    return std::string(tls_ ? "https://" : "http://") + std::string(host) + ":" + std::to_string(port_) +
           std::string(path);
  }
  size_t tls_failures() const {
    absl::MutexLock lock(&mu_);
    return tls_failures_;
  }

  void SetMode(Mode mode) {
    absl::MutexLock lock(&mu_);
    mode_ = mode;
    hang_after_ = -1;
  }
  // Answer kOk for the next `n` applied alerts, then switch to kHang.
  void HangAfter(int n) {
    absl::MutexLock lock(&mu_);
    hang_after_ = n;
  }
  void SetDelay(absl::Duration max_delay) {
    absl::MutexLock lock(&mu_);
    max_delay_ = max_delay;
  }

  // Stops listening: connections are refused until Up.
  void Down() {
    listening_ = false;
    if (accept_thread_.joinable()) accept_thread_.join();
    acceptor_.reset();
  }
  // Listens again, on the same port after a Down.
  void Up() {
    namespace asio = boost::asio;
    acceptor_ = std::make_unique<asio::ip::tcp::acceptor>(ioc_);
    const asio::ip::tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), port_);
    acceptor_->open(endpoint.protocol());
    acceptor_->set_option(asio::socket_base::reuse_address(true));
    acceptor_->bind(endpoint);
    acceptor_->listen();
    port_ = acceptor_->local_endpoint().port();
    listening_ = true;
    accept_thread_ = std::thread([this] { AcceptLoop(); });
  }

  std::vector<Delivery> deliveries() const {
    absl::MutexLock lock(&mu_);
    return deliveries_;
  }
  // Keys in the order they were first applied.
  std::vector<Delivery> applied() const {
    absl::MutexLock lock(&mu_);
    return applied_;
  }
  size_t applied_count() const {
    absl::MutexLock lock(&mu_);
    return applied_.size();
  }
  size_t requests() const {
    absl::MutexLock lock(&mu_);
    return deliveries_.size();
  }
  // Requests whose key had been applied already.
  size_t repeats() const {
    absl::MutexLock lock(&mu_);
    return repeats_;
  }
  size_t bad_signatures() const {
    absl::MutexLock lock(&mu_);
    return bad_signatures_;
  }
  bool WaitForApplied(size_t n, absl::Duration timeout) const {
    absl::MutexLock lock(&mu_);
    auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return applied_.size() >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
  }
  bool WaitForRequests(size_t n, absl::Duration timeout) const {
    absl::MutexLock lock(&mu_);
    auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return deliveries_.size() >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
  }

  // Independent of the code under test: hex HMAC-SHA256 by OpenSSL.
  static std::string Hmac(const std::string& key, const std::string& data) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
         data.size(), mac, &len);
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < len; ++i) {
      out.push_back(kHex[mac[i] >> 4]);
      out.push_back(kHex[mac[i] & 15]);
    }
    return out;
  }

 private:
  void AcceptLoop() {
    const int fd = acceptor_->native_handle();
    while (listening_) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      boost::system::error_code ec;
      boost::asio::ip::tcp::socket socket(ioc_);
      acceptor_->accept(socket, ec);
      if (ec) continue;
      absl::MutexLock lock(&mu_);
      connections_.emplace_back([this, s = std::move(socket)]() mutable { Serve(std::move(s)); });
    }
  }

  bool CheckSignature(const std::string& header, const std::string& body) {
    // "t=<digits>,v1=<hex>"
    const size_t comma = header.find(',');
    if (header.rfind("t=", 0) != 0 || comma == std::string::npos) return false;
    const std::string t = header.substr(2, comma - 2);
    const std::string rest = header.substr(comma + 1);
    if (rest.rfind("v1=", 0) != 0) return false;
    if (t.empty() || t.size() > 18 || t.find_first_not_of("0123456789") != std::string::npos) return false;
    const int64_t seconds = std::stoll(t);
    if (std::abs(absl::ToUnixSeconds(absl::Now()) - seconds) > 300) return false;
    return rest.substr(3) == Hmac(secret_, t + "." + body);
  }

  void Serve(boost::asio::ip::tcp::socket socket) {
    if (!tls_) {
      Handle(socket, socket);
      return;
    }
    boost::asio::ssl::stream<boost::asio::ip::tcp::socket> stream(std::move(socket), *tls_);
    boost::system::error_code ec;
    stream.handshake(boost::asio::ssl::stream_base::server, ec);
    if (ec) {
      absl::MutexLock lock(&mu_);
      ++tls_failures_;
      return;
    }
    Handle(stream, stream.next_layer());
  }

  template <class Stream>
  void Handle(Stream& stream, boost::asio::ip::tcp::socket& socket) {
    namespace http = boost::beast::http;
    boost::beast::flat_buffer buffer;
    http::request<http::string_body> request;
    boost::system::error_code ec;
    http::read(stream, buffer, request, ec);
    if (ec) return;
    Delivery d;
    d.key = std::string(request["Idempotency-Key"]);
    d.body = request.body();
    d.received = absl::Now();
    d.attempt = std::atoi(std::string(request["X-Ortserve-Alert-Attempt"]).c_str());
    d.signature_ok = request.method() == http::verb::post &&
                     request[http::field::content_type] == "application/json" &&
                     CheckSignature(std::string(request["X-Ortserve-Signature"]), d.body);
    rapidjson::Document doc;
    doc.Parse(d.body.c_str());
    if (!doc.HasParseError() && doc.IsObject()) {
      if (doc.HasMember("requestId") && doc["requestId"].IsString()) d.request_id = doc["requestId"].GetString();
      if (doc.HasMember("patientKey") && doc["patientKey"].IsString()) d.patient_key = doc["patientKey"].GetString();
    }
    Mode mode;
    absl::Duration delay;
    {
      absl::MutexLock lock(&mu_);
      deliveries_.push_back(d);
      mode = mode_;
      delay = max_delay_;
      if (!d.signature_ok) ++bad_signatures_;
      if (mode != Mode::kFail503 && d.signature_ok) {
        if (applied_keys_.insert(d.key).second) {
          applied_.push_back(d);
          if (hang_after_ >= 0 && static_cast<int>(applied_.size()) > hang_after_) mode_ = mode = Mode::kHang;
        } else {
          ++repeats_;
        }
      }
    }
    if (delay > absl::ZeroDuration()) {
      absl::SleepFor(delay * (static_cast<double>(rng_.fetch_add(7919) % 1000) / 1000.0));
    }
    if (mode == Mode::kHang) {
      absl::MutexLock lock(&mu_);
      auto released = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return mode_ != Mode::kHang || closing_; };
      mu_.Await(absl::Condition(&released));
      mode = Mode::kOk;
    }
    http::response<http::string_body> response;
    response.version(11);
    response.keep_alive(false);
    if (!d.signature_ok) {
      response.result(http::status::unauthorized);
      response.body() = "bad signature";
    } else if (mode == Mode::kFail503) {
      response.result(http::status::service_unavailable);
      response.body() = "receiver overloaded";
    } else {
      response.result(http::status::ok);
      response.body() = "{}";
    }
    response.prepare_payload();
    http::write(stream, response, ec);
    socket.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
  }

  const std::string secret_;
  std::unique_ptr<boost::asio::ssl::context> tls_;
  boost::asio::io_context ioc_;
  std::unique_ptr<boost::asio::ip::tcp::acceptor> acceptor_;
  uint16_t port_ = 0;
  std::atomic<bool> listening_{false};
  std::thread accept_thread_;
  std::atomic<uint64_t> rng_{12345};

  mutable absl::Mutex mu_;
  Mode mode_ ABSL_GUARDED_BY(mu_) = Mode::kOk;
  int hang_after_ ABSL_GUARDED_BY(mu_) = -1;
  absl::Duration max_delay_ ABSL_GUARDED_BY(mu_);
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<Delivery> deliveries_ ABSL_GUARDED_BY(mu_);
  std::vector<Delivery> applied_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> applied_keys_ ABSL_GUARDED_BY(mu_);
  size_t repeats_ ABSL_GUARDED_BY(mu_) = 0;
  size_t bad_signatures_ ABSL_GUARDED_BY(mu_) = 0;
  size_t tls_failures_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::thread> connections_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ortserve::alerts::testing
