// SPDX-License-Identifier: Apache-2.0
// The pure parts of reading a remote model's config block: endpoint
// addresses (with their scheme) and the tensors a TF Serving remote takes.
// Internal to backend/remote; no sockets, so unit tests cover them. Pure
// functions: safe from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "backend/session.h"
#include "proto/model_config.pb.h"

namespace ortserve::backend::remote {

// One endpoint as configured: "host:port", "[v6]:port", or either behind
// "http://" or "https://" (TLS). Nothing after the port.
struct EndpointAddress {
  std::string host;  // Without brackets.
  uint16_t port = 0;
  enum class Scheme { kNone, kHttp, kHttps } scheme = Scheme::kNone;
};

// InvalidArgument naming `text` when it is not one of the forms above.
absl::StatusOr<EndpointAddress> ParseEndpoint(std::string_view text);

// Whether calls to `address` use TLS: "https://", or the model's `tls`
// block is present. InvalidArgument when the two disagree ("http://" with
// a tls block).
absl::StatusOr<bool> UsesTls(const EndpointAddress& address, std::string_view text, const config::ModelRemote& remote);

// A TF Serving remote's tensors, from the config's inputs and outputs (a
// leading -1 when max_batch_size > 0). InvalidArgument when either list is
// empty or a tensor has no data_type.
absl::StatusOr<ModelSignature> SignatureFromConfig(const config::ModelConfig& config);

}  // namespace ortserve::backend::remote
