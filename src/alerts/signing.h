// SPDX-License-Identifier: Apache-2.0
// Keys and signatures of the alerts module: secret files, the keyed hash
// that stands in for a patient id, and the webhook signature header
//   X-Ortserve-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
// (docs/alerts.md shows how a receiver verifies it).
//
// Thread-safe (free functions and an immutable class; OpenSSL 3 is thread-safe).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace ortserve::alerts {

// Lower-case hex of HMAC-SHA256(key, data).
std::string HmacSha256Hex(std::string_view key, std::string_view data);

// Reads a key or secret from `path`: the file's bytes less trailing spaces and
// newlines. Errors: NotFound / PermissionDenied when it cannot be read,
// InvalidArgument when the key is shorter than 16 bytes or longer than 4 KiB
// (the message names `what` and the path, never the key).
absl::StatusOr<std::string> ReadKeyFile(std::string_view what, const std::string& path);

// The value of X-Ortserve-Signature for `body` sent at `unix_seconds`.
std::string SignatureHeader(std::string_view secret, int64_t unix_seconds, std::string_view body);

// What a receiver does: parses `header` ("t=...,v1=..."; other fields and
// several v1 values allowed), refuses a timestamp further than `tolerance`
// from `now`, and compares in constant time. True when a v1 matches.
bool VerifySignatureHeader(std::string_view secret, std::string_view header, std::string_view body,
                           absl::Time now, absl::Duration tolerance = absl::Minutes(5));

// Stands in for a patient id everywhere the alerts module stores or sends
// one: hex HMAC-SHA256(key, patient id). The same id always gives the same
// key under one key file, so a receiver can group a patient's alerts, and no
// one without the key file can recover or test guesses of the id.
//
// Thread-safe (immutable).
class PatientKeyHasher {
 public:
  explicit PatientKeyHasher(std::string key) : key_(std::move(key)) {}
  std::string Hash(std::string_view patient_id) const { return HmacSha256Hex(key_, patient_id); }

 private:
  std::string key_;
};

}  // namespace ortserve::alerts
