// SPDX-License-Identifier: Apache-2.0
#include "client/client.h"

#include <utility>

#include "client/transports.h"
#include "core/strings.h"

namespace ortserve::client {

absl::StatusOr<Protocol> ParseProtocol(std::string_view name) {
  if (name == "http") return Protocol::kHttp;
  if (name == "grpc") return Protocol::kGrpc;
  return absl::InvalidArgumentError(StrCat("protocol '", name, "' is not one of http, grpc"));
}

std::string_view ProtocolName(Protocol protocol) { return protocol == Protocol::kHttp ? "http" : "grpc"; }

absl::StatusCode StatusCodeForHttpStatus(unsigned http_status) {
  switch (http_status) {
    case 200: return absl::StatusCode::kOk;
    case 400: return absl::StatusCode::kInvalidArgument;
    case 401: return absl::StatusCode::kUnauthenticated;
    case 403: return absl::StatusCode::kPermissionDenied;
    case 404: return absl::StatusCode::kNotFound;
    case 405:
    case 501: return absl::StatusCode::kUnimplemented;
    case 409: return absl::StatusCode::kAlreadyExists;
    case 413:
    case 429: return absl::StatusCode::kResourceExhausted;
    case 499: return absl::StatusCode::kCancelled;
    case 503: return absl::StatusCode::kUnavailable;
    case 504: return absl::StatusCode::kDeadlineExceeded;
    default:
      if (http_status >= 400 && http_status < 500) return absl::StatusCode::kFailedPrecondition;
      return absl::StatusCode::kInternal;
  }
}

absl::StatusOr<std::unique_ptr<Client>> Client::Create(ClientOptions options) {
  if (options.address.empty()) return absl::InvalidArgumentError("ClientOptions.address is empty");
  if (options.port == 0) return absl::InvalidArgumentError("ClientOptions.port is 0");
  if (options.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(StrCat("ClientOptions.timeout ", absl::FormatDuration(options.timeout),
                                             " is not positive"));
  }
  if (!options.api_key.empty() && !options.bearer_token.empty()) {
    return absl::InvalidArgumentError("set one credential: an API key or a bearer token, not both");
  }
  for (const std::string* credential : {&options.api_key, &options.bearer_token}) {
    // A header value cannot hold a line break (or it would start another header).
    if (credential->find_first_of("\r\n") != std::string::npos) {
      return absl::InvalidArgumentError("a credential holds a line break");
    }
  }
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return absl::InvalidArgumentError("a TLS client certificate needs its key, and the reverse");
  }
  if (options.tls_server_name.find_first_of(std::string_view("\0\r\n", 3)) != std::string::npos) {
    return absl::InvalidArgumentError("ClientOptions.tls_server_name holds a NUL or a line break");
  }
  if (!options.tls_ca_file.empty() || !options.tls_cert_file.empty() || !options.tls_server_name.empty()) {
    options.tls = true;
  }
  if (options.protocol == Protocol::kHttp) return CreateHttpClient(std::move(options));
  return CreateGrpcClient(std::move(options));
}

std::string TraceparentOf(const RequestTrace& trace) {
  if (std::all_of(trace.trace_id.begin(), trace.trace_id.end(), [](uint8_t b) { return b == 0; })) return {};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "00-";
  out.reserve(55);
  for (uint8_t b : trace.trace_id) out += {kHex[b >> 4], kHex[b & 15]};
  out += '-';
  for (uint8_t b : trace.span_id) out += {kHex[b >> 4], kHex[b & 15]};
  out += trace.sampled() ? "-01" : "-00";
  return out;
}

}  // namespace ortserve::client
