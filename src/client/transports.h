// SPDX-License-Identifier: Apache-2.0
// The two Client implementations, behind Client::Create. Internal to the
// client library. Thread-safety: as Client (client.h).
#pragma once

#include <algorithm>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/client.h"

namespace ortserve::client {

// Both expect validated options (Client::Create checks them).
absl::StatusOr<std::unique_ptr<Client>> CreateHttpClient(ClientOptions options);
absl::StatusOr<std::unique_ptr<Client>> CreateGrpcClient(ClientOptions options);

// The deadline of a call started now: the earlier of now + timeout and the
// request's own deadline.
inline absl::Time CallDeadline(absl::Duration timeout, absl::Time request_deadline = absl::InfiniteFuture()) {
  return std::min(absl::Now() + timeout, request_deadline);
}

// The W3C `traceparent` a call carries for `trace` ("00-<trace>-<span>-01",
// or -00 when the trace is not sampled here); empty when the trace id is
// all zero (the request is in no trace).
std::string TraceparentOf(const RequestTrace& trace);

}  // namespace ortserve::client
