// SPDX-License-Identifier: Apache-2.0
// Small cryptographic and encoding helpers over OpenSSL 3 for the admission
// module: base64url and hex (strict decoders for hostile input), SHA-256,
// HMAC-SHA256, random bytes and a constant-time comparison.
//
// Thread-safe (free functions; OpenSSL 3 is thread-safe).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace ortserve::admission {

using Digest256 = std::array<uint8_t, 32>;

// RFC 4648 §5 base64url without padding.
std::string Base64UrlEncode(std::string_view bytes);
// Decodes unpadded base64url. Refuses padding, any byte outside the alphabet,
// an impossible length and a non-canonical last character (unused low bits
// set), so that one byte string has exactly one accepted encoding.
std::optional<std::string> Base64UrlDecode(std::string_view text);

// Lower-case hex.
std::string HexEncode(std::string_view bytes);
// Decodes hex (either case); nullopt on an odd length or a non-hex byte.
std::optional<std::string> HexDecode(std::string_view text);

Digest256 Sha256(std::string_view data);
Digest256 HmacSha256(std::string_view key, std::string_view data);
inline std::string_view AsBytes(const Digest256& d) {
  return {reinterpret_cast<const char*>(d.data()), d.size()};
}

// `n` bytes from OpenSSL's CSPRNG; Internal if it cannot provide them.
absl::StatusOr<std::string> RandomBytes(size_t n);

// True when `a` and `b` hold the same bytes. The time taken depends on the
// lengths only, never on where the bytes differ.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// The text of OpenSSL's error queue (oldest first, "; "-separated), which it
// also clears; "no detail" when empty. For messages to operators.
std::string DrainOpenSslErrors();

}  // namespace ortserve::admission
