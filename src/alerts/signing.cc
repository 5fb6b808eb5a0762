// SPDX-License-Identifier: Apache-2.0
#include "alerts/signing.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "core/strings.h"

namespace ortserve::alerts {
namespace {

constexpr size_t kMinKeyBytes = 16;
constexpr size_t kMaxKeyBytes = 4096;

std::string Hex(const unsigned char* bytes, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = kDigits[bytes[i] >> 4];
    out[2 * i + 1] = kDigits[bytes[i] & 0xf];
  }
  return out;
}

}  // namespace

std::string HmacSha256Hex(std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  // HMAC() wants a non-null key pointer even for an empty key.
  static const unsigned char kEmpty = 0;
  const unsigned char* key_ptr = key.empty() ? &kEmpty : reinterpret_cast<const unsigned char*>(key.data());
  HMAC(EVP_sha256(), key_ptr, static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), mac, &mac_len);
  return Hex(mac, mac_len);
}

absl::StatusOr<std::string> ReadKeyFile(std::string_view what, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    const std::string message = ortserve::StrCat(what, ": cannot read ", path, ": ", std::strerror(err));
    if (err == EACCES) return absl::PermissionDeniedError(message);
    return absl::NotFoundError(message);
  }
  std::string key;
  char buf[1024];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    key.append(buf, static_cast<size_t>(in.gcount()));
    if (key.size() > kMaxKeyBytes + 64) break;  // never read a huge file whole
  }
  while (!key.empty() && (key.back() == '\n' || key.back() == '\r' || key.back() == ' ' || key.back() == '\t')) {
    key.pop_back();
  }
  if (key.size() < kMinKeyBytes || key.size() > kMaxKeyBytes) {
    return absl::InvalidArgumentError(ortserve::StrCat(what, ": the key in ", path, " must be ", kMinKeyBytes, " to ",
                                                   kMaxKeyBytes, " bytes (e.g. `openssl rand -hex 32 > ", path,
                                                   "`), it has ", key.size()));
  }
  return key;
}

std::string SignatureHeader(std::string_view secret, int64_t unix_seconds, std::string_view body) {
  const std::string t = std::to_string(unix_seconds);
  std::string signed_text;
  signed_text.reserve(t.size() + 1 + body.size());
  signed_text.append(t).append(".").append(body);
  return ortserve::StrCat("t=", t, ",v1=", HmacSha256Hex(secret, signed_text));
}

bool VerifySignatureHeader(std::string_view secret, std::string_view header, std::string_view body, absl::Time now,
                           absl::Duration tolerance) {
  std::string_view t;
  std::vector<std::string_view> v1s;
  std::vector<std::string_view> parts;
  for (size_t start = 0; start <= header.size();) {
    size_t comma = header.find(',', start);
    if (comma == std::string_view::npos) comma = header.size();
    parts.push_back(header.substr(start, comma - start));
    start = comma + 1;
  }
  for (std::string_view part : parts) {
    const size_t eq = part.find('=');
    if (eq == std::string_view::npos) continue;
    const std::string_view name = part.substr(0, eq);
    const std::string_view value = part.substr(eq + 1);
    if (name == "t") t = value;
    if (name == "v1") v1s.push_back(value);
  }
  int64_t seconds = 0;
  if (t.empty() || t.size() > 18) return false;
  const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), seconds);
  if (ec != std::errc() || end != t.data() + t.size()) return false;
  if (absl::AbsDuration(now - absl::FromUnixSeconds(seconds)) > tolerance) return false;
  std::string signed_text = ortserve::StrCat(t, ".", body);
  const std::string expected = HmacSha256Hex(secret, signed_text);
  bool match = false;
  for (std::string_view v1 : v1s) {
    if (v1.size() == expected.size() && CRYPTO_memcmp(v1.data(), expected.data(), expected.size()) == 0) match = true;
  }
  return match;
}

}  // namespace ortserve::alerts
