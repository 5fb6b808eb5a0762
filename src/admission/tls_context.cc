// SPDX-License-Identifier: Apache-2.0
#include "admission/tls_context.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstring>
#include <ctime>

#include <boost/asio/buffer.hpp>

#include "admission/crypto.h"
#include "core/status.h"
#include "core/strings.h"

namespace ortserve::admission {
namespace {

namespace ssl = boost::asio::ssl;

// TLS 1.2 suites: ECDHE (forward secrecy) with AEAD only. TLS 1.3 has its own
// list below; all three of its common suites are AEAD.
constexpr char kTls12Ciphers[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr char kTls13Suites[] = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
constexpr char kGroups[] = "X25519:P-256:P-384";
// Binds resumed sessions to this server's verification settings (OpenSSL
// refuses resumption with client verification when it is unset).
constexpr unsigned char kSessionIdContext[] = "ortserve";

// Encrypted keys are refused rather than prompting on a terminal.
int NoPassword(char*, int, int, void*) { return 0; }

absl::Time AsnTime(const ASN1_TIME* t) {
  struct tm tm {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return absl::InfinitePast();
  return absl::FromTimeT(timegm(&tm));
}

// ALPN: Beast speaks HTTP/1.1; a client offering h2 as well gets http/1.1, a
// client offering neither goes on without ALPN.
int SelectAlpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned int inlen,
               void*) {
  static constexpr unsigned char kHttp11[] = {'h', 't', 't', 'p', '/', '1', '.', '1'};
  unsigned int i = 0;
  while (i < inlen) {
    const unsigned int len = in[i];
    if (i + 1 + len > inlen) break;
    if (len == sizeof(kHttp11) && std::memcmp(in + i + 1, kHttp11, len) == 0) {
      *out = in + i + 1;
      *outlen = static_cast<unsigned char>(len);
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + len;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

// Adds every certificate of `pem` to the list of CA names sent to clients in
// the certificate request (so a client with several certificates picks one
// that chains to them).
absl::Status AddClientCaNames(SSL_CTX* ctx, std::string_view pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  int count = 0;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    const int ok = SSL_CTX_add_client_CA(ctx, cert);
    X509_free(cert);
    if (ok != 1) return absl::InvalidArgumentError(StrCat("client CA: ", DrainOpenSslErrors()));
    ++count;
  }
  ERR_clear_error();  // The loop ends on "no start line".
  if (count == 0) return absl::InvalidArgumentError("client CA file holds no PEM certificate");
  return absl::OkStatus();
}

}  // namespace

std::string X509NameText(const X509_NAME* name) {
  if (name == nullptr) return {};
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  if (!bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) return {};
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

CertificateInfo DescribeCertificate(const X509* cert) {
  CertificateInfo info;
  if (cert == nullptr) return info;
  info.subject = X509NameText(X509_get_subject_name(cert));
  if (BIGNUM* serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr)) {
    if (char* hex = BN_bn2hex(serial)) {
      info.serial_hex = hex;
      OPENSSL_free(hex);
    }
    BN_free(serial);
  }
  info.not_before = AsnTime(X509_get0_notBefore(cert));
  info.not_after = AsnTime(X509_get0_notAfter(cert));
  return info;
}

absl::Status ValidateTlsFiles(const TlsFiles& files) {
  if (files.cert_chain_path.empty() || files.private_key_path.empty()) {
    return absl::InvalidArgumentError("TLS needs a certificate chain file and a private key file");
  }
  if (files.client_cert == ClientCertMode::kNone && !files.client_ca_path.empty()) {
    return absl::InvalidArgumentError("a client CA file is set but client certificates are not requested");
  }
  if (files.client_cert != ClientCertMode::kNone && files.client_ca_path.empty()) {
    return absl::InvalidArgumentError("client certificates are requested but no client CA file is set");
  }
  return absl::OkStatus();
}

absl::StatusOr<TlsServerContext> BuildTlsServerContext(const TlsFiles& files, std::string_view cert_chain_pem,
                                                       std::string_view private_key_pem,
                                                       std::string_view client_ca_pem, absl::Time now) {
  auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* ctx = context->native_handle();
  const auto fail = [&](std::string_view what) {
    return absl::InvalidArgumentError(StrCat("TLS: ", what, ": ", DrainOpenSslErrors()));
  };
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) return fail("cannot set the minimum version");
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_set_cipher_list(ctx, kTls12Ciphers) != 1) return fail("cannot set the TLS 1.2 ciphers");
  if (SSL_CTX_set_ciphersuites(ctx, kTls13Suites) != 1) return fail("cannot set the TLS 1.3 suites");
  if (SSL_CTX_set1_groups_list(ctx, kGroups) != 1) return fail("cannot set the key exchange groups");
  SSL_CTX_set_alpn_select_cb(ctx, SelectAlpn, nullptr);
  SSL_CTX_set_session_id_context(ctx, kSessionIdContext, sizeof(kSessionIdContext) - 1);

  boost::system::error_code ec;
  context->use_certificate_chain(boost::asio::buffer(cert_chain_pem.data(), cert_chain_pem.size()), ec);
  if (ec) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        StrCat("TLS: certificate chain '", files.cert_chain_path, "' does not load: ", ec.message()));
  }
  std::unique_ptr<BIO, decltype(&BIO_free)> key_bio(
      BIO_new_mem_buf(private_key_pem.data(), static_cast<int>(private_key_pem.size())), BIO_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      key_bio ? PEM_read_bio_PrivateKey(key_bio.get(), nullptr, NoPassword, nullptr) : nullptr, EVP_PKEY_free);
  if (!key) {
    return absl::InvalidArgumentError(StrCat("TLS: private key '", files.private_key_path,
                                             "' does not load (PEM, unencrypted): ", DrainOpenSslErrors()));
  }
  if (X509_check_private_key(SSL_CTX_get0_certificate(ctx), key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(StrCat("TLS: private key '", files.private_key_path,
                                             "' does not match certificate '", files.cert_chain_path, "'"));
  }
  if (SSL_CTX_use_PrivateKey(ctx, key.get()) != 1) return fail("cannot use the private key");
  CertificateInfo info = DescribeCertificate(SSL_CTX_get0_certificate(ctx));
  if (now < info.not_before) {
    return absl::FailedPreconditionError(StrCat("TLS: certificate '", files.cert_chain_path, "' is not valid before ",
                                                absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", info.not_before, absl::UTCTimeZone())));
  }
  if (now >= info.not_after) {
    return absl::FailedPreconditionError(StrCat("TLS: certificate '", files.cert_chain_path, "' expired at ",
                                                absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", info.not_after, absl::UTCTimeZone())));
  }

  if (files.client_cert != ClientCertMode::kNone) {
    context->add_certificate_authority(boost::asio::buffer(client_ca_pem.data(), client_ca_pem.size()), ec);
    if (ec) {
      ERR_clear_error();
      return absl::InvalidArgumentError(StrCat("TLS: client CA '", files.client_ca_path, "' does not load: ", ec.message()));
    }
    if (auto status = AddClientCaNames(ctx, client_ca_pem); !status.ok()) {
      return absl::InvalidArgumentError(StrCat("TLS: client CA '", files.client_ca_path, "': ", ToStd(status.message())));
    }
    int mode = SSL_VERIFY_PEER;
    if (files.client_cert == ClientCertMode::kRequire) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(ctx, mode, nullptr);
    SSL_CTX_set_verify_depth(ctx, 8);
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  }
  return TlsServerContext{std::move(context), std::move(info)};
}

absl::StatusOr<std::unique_ptr<TlsContextProvider>> TlsContextProvider::Create(Options options) {
  RETURN_IF_ERROR(ValidateTlsFiles(options.files));
  const Clock* clock = options.clock != nullptr ? options.clock : Clock::Real();
  std::vector<std::string> paths = {options.files.cert_chain_path, options.files.private_key_path};
  if (!options.files.client_ca_path.empty()) paths.push_back(options.files.client_ca_path);
  std::unique_ptr<TlsContextProvider> provider(new TlsContextProvider());
  ASSIGN_OR_RETURN(
      provider->files_,
      ReloadingFiles<TlsServerContext>::Create({
          .paths = std::move(paths),
          .parse = [files = options.files, clock](const std::vector<std::string>& contents)
              -> absl::StatusOr<std::shared_ptr<const TlsServerContext>> {
            ASSIGN_OR_RETURN(TlsServerContext built,
                             BuildTlsServerContext(files, contents[0], contents[1],
                                                   contents.size() > 2 ? std::string_view(contents[2]) : "",
                                                   clock->Now()));
            return std::make_shared<const TlsServerContext>(std::move(built));
          },
          .check_interval = options.check_interval,
          .clock = clock,
          .on_reload = std::move(options.on_reload),
      }));
  return provider;
}

std::shared_ptr<boost::asio::ssl::context> TlsContextProvider::Current() {
  std::shared_ptr<const TlsServerContext> current = files_->Current();
  // Shares ownership of the whole TlsServerContext.
  return std::shared_ptr<boost::asio::ssl::context>(current, current->context.get());
}

std::string VerifiedClientSubject(const SSL* ssl) {
  if (ssl == nullptr) return {};
  const X509* peer = SSL_get0_peer_certificate(ssl);
  if (peer == nullptr || SSL_get_verify_result(ssl) != X509_V_OK) return {};
  return X509NameText(X509_get_subject_name(peer));
}

}  // namespace ortserve::admission
