// SPDX-License-Identifier: Apache-2.0
// TLS for the HTTP server (Boost.Asio/Beast over OpenSSL): a provider of
// server contexts that follows the certificate, key and client-CA files, and
// the helpers that read a verified client certificate.
//
// Defaults: TLS 1.2 and 1.3 only; TLS 1.2 limited to ECDHE key exchange with
// AEAD ciphers (AES-GCM, ChaCha20-Poly1305); groups X25519, P-256, P-384; no
// compression, no renegotiation; ALPN answers "http/1.1" when offered.
#pragma once

#include <openssl/ssl.h>

#include <functional>
#include <memory>
#include <string>

#include <boost/asio/ssl/context.hpp>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "admission/file_reloader.h"
#include "core/clock.h"

namespace ortserve::admission {

// Whether the server asks clients for a certificate (mutual TLS).
enum class ClientCertMode {
  // Not asked.
  kNone,
  // Asked; a client may send none, but one it sends must verify against the
  // client CA.
  kOptional,
  // Required and verified against the client CA; the handshake fails without.
  kRequire,
};

// The files a TLS server reads. PEM; the key unencrypted (keep it 0600).
struct TlsFiles {
  // The server certificate first, then the intermediates.
  std::string cert_chain_path{};
  std::string private_key_path{};
  // The CA bundle that client certificates must chain to; required unless
  // client_cert is kNone, refused when it is.
  std::string client_ca_path{};
  ClientCertMode client_cert = ClientCertMode::kNone;
};

// What a log line or a metric says about the certificate in service.
struct CertificateInfo {
  std::string subject{};     // RFC 2253.
  std::string serial_hex{};  // Upper-case hex, as `openssl x509 -serial` prints.
  absl::Time not_before{};
  absl::Time not_after{};
};

// Builds a server context from PEM texts (as read from TlsFiles) and checks
// it: the key matches the certificate, the certificate is valid at `now`, the
// client CA parses. InvalidArgument / FailedPrecondition naming the file and
// the problem otherwise.
struct TlsServerContext {
  std::shared_ptr<boost::asio::ssl::context> context{};
  CertificateInfo certificate{};
};
absl::StatusOr<TlsServerContext> BuildTlsServerContext(const TlsFiles& files, std::string_view cert_chain_pem,
                                                       std::string_view private_key_pem,
                                                       std::string_view client_ca_pem, absl::Time now);

// The server contexts for new HTTPS connections, rebuilt when the files
// change (polled as ReloadingFiles describes). A connection takes Current()
// when it is accepted and keeps the shared_ptr for its whole life: existing
// connections keep the context they started with, new ones get the new one.
// A change that does not load (a key that does not match the certificate, an
// expired certificate, a file half-written) keeps the last good context and
// is reported through on_reload.
//
// Thread-safe.
class TlsContextProvider {
 public:
  struct Options {
    TlsFiles files{};
    absl::Duration check_interval = absl::Seconds(5);
    // Certificate validity and file checks; must follow the real clock
    // (compared with certificate dates and file times). Not owned; null:
    // Clock::Real().
    const Clock* clock = nullptr;
    std::function<void(const absl::Status&)> on_reload{};
  };
  // InvalidArgument for inconsistent options (client CA without client
  // certificates, or the reverse); the errors of BuildTlsServerContext.
  static absl::StatusOr<std::unique_ptr<TlsContextProvider>> Create(Options options);

  std::shared_ptr<boost::asio::ssl::context> Current();
  CertificateInfo certificate() { return files_->Current()->certificate; }
  absl::Status CheckNow() { return files_->CheckNow(); }

 private:
  TlsContextProvider() = default;
  std::unique_ptr<ReloadingFiles<TlsServerContext>> files_;
};

// InvalidArgument unless the cert mode and the client CA path agree and the
// certificate and key paths are set.
absl::Status ValidateTlsFiles(const TlsFiles& files);

// The RFC 2253 subject of the client certificate of `ssl` when the
// handshake verified one against the client CA; empty otherwise.
std::string VerifiedClientSubject(const SSL* ssl);

// The RFC 2253 form of an X.509 name, and the details of a certificate.
std::string X509NameText(const X509_NAME* name);
CertificateInfo DescribeCertificate(const X509* cert);

}  // namespace ortserve::admission
