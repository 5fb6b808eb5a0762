// SPDX-License-Identifier: Apache-2.0
// WebhookClient: one HTTP or HTTPS POST at a time, with one deadline over
// the whole exchange (connect, TLS handshake, write, read). A fresh
// connection per request (alerts are rare; no pool to go stale).
//
// Not thread-safe: each dispatcher worker owns one.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace ortserve::alerts {

// A webhook's address, parsed once (Boost.URL).
struct WebhookUrl {
  bool tls = false;
  std::string host;         // Without brackets for IPv6, for the resolver.
  std::string port;         // "80" / "443" when the URL has none.
  std::string host_header;  // As in the URL: "[::1]:8443".
  std::string target;       // Path and query; "/" when empty.
};

// Accepts absolute http:// and https:// URLs with a host and no user info
// (credentials belong in the secret file, not in a URL that ends up in logs).
// Errors: InvalidArgument naming what was wrong.
absl::StatusOr<WebhookUrl> ParseWebhookUrl(std::string_view url);

struct WebhookResponse {
  unsigned status = 0;
  std::string body_prefix;  // The first 256 bytes of the body, for last_error; bytes outside printable ASCII become '?'.
};

class WebhookClient {
 public:
  struct Options {
    // The whole exchange; past it the connection is closed and the attempt fails.
    absl::Duration timeout = absl::Seconds(10);
    // Extra trusted CA certificates (PEM) for HTTPS beside the system's;
    // empty: the system's only. Peers are always verified, host name included.
    std::string ca_file;
  };
  // Errors: InvalidArgument when the CA file cannot be loaded.
  static absl::StatusOr<std::unique_ptr<WebhookClient>> Create(Options options);
  ~WebhookClient();

  // POSTs `body`. Any HTTP answer is a response (the caller judges its
  // status); Unavailable when no answer came: resolve, connect, TLS, write or
  // read failed or the deadline passed (the message says which step).
  absl::StatusOr<WebhookResponse> Post(const WebhookUrl& url,
                                       const std::vector<std::pair<std::string, std::string>>& headers,
                                       std::string_view body);

 private:
  struct Impl;
  explicit WebhookClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ortserve::alerts
