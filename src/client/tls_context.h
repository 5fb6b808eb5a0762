// SPDX-License-Identifier: Apache-2.0
// The TLS client context of an HTTPS connection pool: TLS 1.2 or later, the
// server's certificate verified against `ca_file` (empty: the system's CAs);
// with `cert_file` and `key_file`, a client certificate for mTLS. The
// server-name check is per connection (the caller's). Shared by the client
// library's HTTP transport and the remote models' TF Serving transport.
// A pure function: safe from any thread.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "boost/asio/ssl/context.hpp"

namespace ortserve::client {

// InvalidArgument naming the file that could not be read.
absl::StatusOr<std::unique_ptr<boost::asio::ssl::context>> MakeTlsClientContext(const std::string& ca_file,
                                                                                const std::string& cert_file,
                                                                                const std::string& key_file);

}  // namespace ortserve::client
