// SPDX-License-Identifier: Apache-2.0
// Test support for the admission module: temporary folders, files replaced
// the way operators replace them, X.509 certificates from a throwaway CA, and
// JWTs signed with HS256 or RS256 (OpenSSL's C API; nothing leaves the test).
#pragma once

#include <openssl/evp.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/time/time.h"

namespace ortserve::admission::testing {

// A fresh folder under $TMPDIR, removed with its contents at destruction.
class ScopedTempDir {
 public:
  ScopedTempDir();
  ~ScopedTempDir();
  const std::string& path() const { return path_; }
  std::string File(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

// Writes `content` to a temporary file beside `path` and renames it over
// `path` (an atomic replacement, as deploy tools do).
void ReplaceFile(const std::string& path, std::string_view content);
std::string ReadFile(const std::string& path);

struct KeyAndCert {
  std::string key_pem;
  std::string cert_pem;
};

// A certificate authority that issues P-256 certificates. Dates are real
// time (TLS peers check them against the system clock).
class TestCa {
 public:
  explicit TestCa(std::string_view common_name);
  ~TestCa();
  const std::string& cert_pem() const { return ca_.cert_pem; }

  struct Request {
    std::string common_name;
    uint64_t serial = 1;
    bool server = true;  // serverAuth + SAN localhost/127.0.0.1; else clientAuth.
    absl::Duration not_before_offset = absl::Hours(-1);
    absl::Duration lifetime = absl::Hours(24);
  };
  KeyAndCert Issue(const Request& request) const;

 private:
  EVP_PKEY* key_ = nullptr;
  void* cert_ = nullptr;  // X509*
  KeyAndCert ca_;
};

// The serial (upper-case hex) and RFC 2253 subject of a PEM certificate.
std::string SerialOfPem(std::string_view cert_pem);

// base64url(header).base64url(payload).base64url(HMAC-SHA256(secret, ...)).
std::string SignHs256(std::string_view header_json, std::string_view payload_json, std::string_view secret);

// An RSA key pair for RS256 tokens.
class TestRsaKey {
 public:
  explicit TestRsaKey(int bits = 2048);
  // A JWK of the public key: {"kty":"RSA","kid":...,"n":...,"e":...}
  // (`alg` added when not empty).
  std::string PublicJwk(std::string_view kid, std::string_view alg = "RS256") const;
  // The public key as PEM (SubjectPublicKeyInfo).
  std::string PublicPem() const;
  std::string Sign(std::string_view header_json, std::string_view payload_json) const;

 private:
  std::shared_ptr<EVP_PKEY> key_;
};

// A JWK for an HS256 secret.
std::string HmacJwk(std::string_view kid, std::string_view secret, std::string_view alg = "HS256");

}  // namespace ortserve::admission::testing
