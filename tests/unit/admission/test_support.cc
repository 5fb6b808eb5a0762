// SPDX-License-Identifier: Apache-2.0
#include "unit/admission/test_support.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "admission/crypto.h"
#include "admission/jwt.h"

namespace ortserve::admission::testing {
namespace {

void Check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("test support: ") + what + ": " + DrainOpenSslErrors());
}

std::string BioText(BIO* bio) {
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(len));
}

std::string PemOfKey(EVP_PKEY* key) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  Check(PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1, "write key");
  return BioText(bio.get());
}

std::string PemOfCert(X509* cert) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  Check(PEM_write_bio_X509(bio.get(), cert) == 1, "write cert");
  return BioText(bio.get());
}

void AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value);
  Check(ext != nullptr, "make extension");
  Check(X509_add_ext(cert, ext, -1) == 1, "add extension");
  X509_EXTENSION_free(ext);
}

X509* NewCert(EVP_PKEY* key, std::string_view cn, uint64_t serial, absl::Duration not_before_offset,
              absl::Duration lifetime) {
  X509* cert = X509_new();
  Check(cert != nullptr, "X509_new");
  X509_set_version(cert, 2);
  std::unique_ptr<BIGNUM, decltype(&BN_free)> bn(BN_new(), BN_free);
  BN_set_word(bn.get(), serial);
  BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert));
  X509_gmtime_adj(X509_getm_notBefore(cert), absl::ToInt64Seconds(not_before_offset));
  X509_gmtime_adj(X509_getm_notAfter(cert), absl::ToInt64Seconds(not_before_offset + lifetime));
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("ortserve-test"), -1, -1, 0);
  const std::string cn_text(cn);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn_text.c_str()), -1, -1,
                             0);
  return cert;
}

}  // namespace

ScopedTempDir::ScopedTempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/ortserve-admission-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

ScopedTempDir::~ScopedTempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void ReplaceFile(const std::string& path, std::string_view content) {
  static int counter = 0;
  const std::string tmp = path + ".tmp" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    if (!out) throw std::runtime_error("cannot write " + tmp);
  }
  std::filesystem::rename(tmp, path);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

TestCa::TestCa(std::string_view common_name) {
  key_ = EVP_EC_gen("P-256");
  Check(key_ != nullptr, "CA key");
  X509* cert = NewCert(key_, common_name, 1000, absl::Hours(-2), absl::Hours(24 * 30));
  X509_set_issuer_name(cert, X509_get_subject_name(cert));
  AddExtension(cert, cert, NID_basic_constraints, "critical,CA:TRUE");
  AddExtension(cert, cert, NID_key_usage, "critical,keyCertSign,cRLSign");
  AddExtension(cert, cert, NID_subject_key_identifier, "hash");
  Check(X509_sign(cert, key_, EVP_sha256()) > 0, "sign CA");
  cert_ = cert;
  ca_.key_pem = PemOfKey(key_);
  ca_.cert_pem = PemOfCert(cert);
}

TestCa::~TestCa() {
  X509_free(static_cast<X509*>(cert_));
  EVP_PKEY_free(key_);
}

KeyAndCert TestCa::Issue(const Request& request) const {
  X509* ca = static_cast<X509*>(cert_);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"), EVP_PKEY_free);
  Check(key != nullptr, "leaf key");
  std::unique_ptr<X509, decltype(&X509_free)> cert(
      NewCert(key.get(), request.common_name, request.serial, request.not_before_offset, request.lifetime), X509_free);
  X509_set_issuer_name(cert.get(), X509_get_subject_name(ca));
  AddExtension(cert.get(), ca, NID_basic_constraints, "critical,CA:FALSE");
  AddExtension(cert.get(), ca, NID_key_usage, "critical,digitalSignature");
  AddExtension(cert.get(), ca, NID_ext_key_usage, request.server ? "serverAuth" : "clientAuth");
  AddExtension(cert.get(), ca, NID_authority_key_identifier, "keyid");
  if (request.server) AddExtension(cert.get(), ca, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
  Check(X509_sign(cert.get(), key_, EVP_sha256()) > 0, "sign leaf");
  return {PemOfKey(key.get()), PemOfCert(cert.get())};
}

std::string SerialOfPem(std::string_view cert_pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size())),
                                                BIO_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), X509_free);
  if (!cert) return {};
  std::unique_ptr<BIGNUM, decltype(&BN_free)> bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert.get()), nullptr),
                                                 BN_free);
  char* hex = BN_bn2hex(bn.get());
  std::string out(hex);
  OPENSSL_free(hex);
  return out;
}

std::string SignHs256(std::string_view header_json, std::string_view payload_json, std::string_view secret) {
  const std::string input = Base64UrlEncode(header_json) + "." + Base64UrlEncode(payload_json);
  return input + "." + Base64UrlEncode(AsBytes(HmacSha256(secret, input)));
}

TestRsaKey::TestRsaKey(int bits) {
  EVP_PKEY* key = EVP_RSA_gen(static_cast<unsigned int>(bits));
  Check(key != nullptr, "RSA key");
  key_.reset(key, EVP_PKEY_free);
}

std::string TestRsaKey::PublicJwk(std::string_view kid, std::string_view alg) const {
  auto members = RsaJwkMembersOf(key_.get());
  if (!members.ok()) throw std::runtime_error("test support: not an RSA key");
  std::string jwk = "{\"kty\":\"RSA\",\"kid\":\"" + std::string(kid) + "\",\"use\":\"sig\",";
  if (!alg.empty()) jwk += "\"alg\":\"" + std::string(alg) + "\",";
  return jwk + "\"n\":\"" + members->n + "\",\"e\":\"" + members->e + "\"}";
}

std::string TestRsaKey::PublicPem() const {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  Check(PEM_write_bio_PUBKEY(bio.get(), key_.get()) == 1, "write public key");
  return BioText(bio.get());
}

std::string TestRsaKey::Sign(std::string_view header_json, std::string_view payload_json) const {
  const std::string input = Base64UrlEncode(header_json) + "." + Base64UrlEncode(payload_json);
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> md(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  Check(EVP_DigestSignInit(md.get(), nullptr, EVP_sha256(), nullptr, key_.get()) == 1, "sign init");
  size_t len = 0;
  Check(EVP_DigestSign(md.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1,
        "sign size");
  std::string sig(len, '\0');
  Check(EVP_DigestSign(md.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                       reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1,
        "sign");
  sig.resize(len);
  return input + "." + Base64UrlEncode(sig);
}

std::string HmacJwk(std::string_view kid, std::string_view secret, std::string_view alg) {
  std::string jwk = "{\"kty\":\"oct\",\"kid\":\"" + std::string(kid) + "\",";
  if (!alg.empty()) jwk += "\"alg\":\"" + std::string(alg) + "\",";
  return jwk + "\"k\":\"" + Base64UrlEncode(secret) + "\"}";
}

}  // namespace ortserve::admission::testing
