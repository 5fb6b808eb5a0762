// SPDX-License-Identifier: Apache-2.0
// ortserve-keys: makes API keys and JWT verification keys, and checks the
// files ortserve reads them from (docs/security.md).
//
//   ortserve-keys generate --id ci --scopes infer [--models iris,sae_*] [--tenant t]
//                          [--expires 2026-06-30T00:00:00Z] [--key-file keys.txt]
//   ortserve-keys check --key-file keys.txt
//   ortserve-keys jwk --kid k1 --hs256                  # a new HS256 secret as a JWK
//   ortserve-keys jwk --kid r1 --rsa-public-key pub.pem # an RSA public key as a JWK
//   ortserve-keys check-jwks --file jwks.json
#include <fcntl.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/time/time.h"
#include "admission/api_keys.h"
#include "admission/crypto.h"
#include "admission/jwt.h"
#include "core/strings.h"

namespace {

using namespace ortserve::admission;  // NOLINT: a small tool.
using ortserve::StrCat;
using ortserve::ToStd;

int Fail(std::string_view message) {
  std::cerr << "ortserve-keys: " << message << "\n";
  return 1;
}

absl::StatusOr<std::string> ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(StrCat("cannot read '", path, "'"));
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Replaces `path` with `content` (mode 0600) through a temporary file and a
// rename, so the server never reads a half-written file.
absl::Status WriteAtomically(const std::string& path, std::string_view content) {
  const std::string tmp = StrCat(path, ".tmp.", ::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return absl::InternalError(StrCat("cannot create '", tmp, "'"));
  size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n <= 0) {
      ::close(fd);
      ::unlink(tmp.c_str());
      return absl::InternalError(StrCat("cannot write '", tmp, "'"));
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return absl::InternalError(StrCat("cannot replace '", path, "'"));
  }
  return absl::OkStatus();
}

std::vector<std::string> SplitComma(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream in(list);
  for (std::string item; std::getline(in, item, ',');) out.push_back(item);
  if (!list.empty() && list.back() == ',') out.emplace_back();
  return out;
}

int Generate(const std::string& id, const std::string& scopes, const std::string& models, const std::string& tenant,
             const std::string& expires, const std::string& key_file) {
  ApiKeySpec spec{.id = id, .tenant = tenant};
  auto scope_set = ParseScopeList(scopes);
  if (!scope_set.ok()) return Fail(ToStd(scope_set.status().message()));
  spec.scopes = *scope_set;
  if (!models.empty()) {
    auto list = ModelAllowList::Only(SplitComma(models));
    if (!list.ok()) return Fail(ToStd(list.status().message()));
    spec.models = *std::move(list);
  }
  if (!expires.empty()) {
    absl::Time t;
    std::string error;
    if (!absl::ParseTime(absl::RFC3339_full, expires, &t, &error)) {
      return Fail("--expires is not an RFC 3339 time (2026-06-30T00:00:00Z)");
    }
    spec.expires = t;
  }
  auto key = GenerateApiKey(spec);
  if (!key.ok()) return Fail(ToStd(key.status().message()));
  if (key_file.empty()) {
    std::cout << key->key << "\n" << key->line << "\n";
    return 0;
  }
  std::string content;
  if (std::filesystem::exists(key_file)) {
    auto existing = ReadText(key_file);
    if (!existing.ok()) return Fail(ToStd(existing.status().message()));
    content = *std::move(existing);
    if (!content.empty() && content.back() != '\n') content.push_back('\n');
  }
  content += key->line + "\n";
  // The file as the server will read it: a duplicate id or an old mistake
  // is caught here, before the server would refuse to reload it.
  if (auto parsed = ApiKeySet::Parse(content); !parsed.ok()) return Fail(ToStd(parsed.status().message()));
  if (auto status = WriteAtomically(key_file, content); !status.ok()) return Fail(ToStd(status.message()));
  std::cout << key->key << "\n";
  std::cerr << "ortserve-keys: added key '" << id << "' to " << key_file
            << "; the key above is shown once and is not stored\n";
  return 0;
}

int Check(const std::string& key_file) {
  auto text = ReadText(key_file);
  if (!text.ok()) return Fail(ToStd(text.status().message()));
  auto set = ApiKeySet::Parse(*text);
  if (!set.ok()) return Fail(ToStd(set.status().message()));
  std::cout << key_file << ": " << (*set)->size() << " keys\n";
  return 0;
}

int Jwk(const std::string& kid, bool hs256, const std::string& rsa_public_key) {
  if (hs256 == !rsa_public_key.empty()) return Fail("give one of --hs256 or --rsa-public-key");
  std::string jwk;
  if (hs256) {
    auto secret = RandomBytes(32);
    if (!secret.ok()) return Fail(ToStd(secret.status().message()));
    jwk = StrCat(R"({"kty":"oct","kid":")", kid, R"(","alg":"HS256","use":"sig","k":")", Base64UrlEncode(*secret),
                 R"("})");
  } else {
    auto pem = ReadText(rsa_public_key);
    if (!pem.ok()) return Fail(ToStd(pem.status().message()));
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem->data(), static_cast<int>(pem->size())),
                                                  BIO_free);
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr),
                                                            EVP_PKEY_free);
    auto members = RsaJwkMembersOf(key.get());
    if (!members.ok()) return Fail(StrCat("'", rsa_public_key, "' is not a PEM RSA public key (openssl rsa -pubout)"));
    jwk = StrCat(R"({"kty":"RSA","kid":")", kid, R"(","alg":"RS256","use":"sig","n":")", members->n, R"(","e":")",
                 members->e, R"("})");
  }
  // The server's own parser has the last word on what it will accept.
  if (auto set = JwtKeySet::Parse(StrCat(R"({"keys":[)", jwk, "]}")); !set.ok()) {
    return Fail(ToStd(set.status().message()));
  }
  std::cout << jwk << "\n";
  return 0;
}

int CheckJwks(const std::string& file) {
  auto text = ReadText(file);
  if (!text.ok()) return Fail(ToStd(text.status().message()));
  auto set = JwtKeySet::Parse(*text);
  if (!set.ok()) return Fail(ToStd(set.status().message()));
  std::cout << file << ": " << (*set)->size() << " signing keys (HS256: "
            << (*set)->ForAlgorithm(JwtAlgorithm::kHS256).size()
            << ", RS256: " << (*set)->ForAlgorithm(JwtAlgorithm::kRS256).size() << "), " << (*set)->skipped()
            << " skipped\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ortserve-keys: API keys and JWT keys for ortserve (docs/security.md)", "ortserve-keys"};
  app.require_subcommand(1);

  std::string id, scopes, models, tenant, expires, key_file;
  auto* generate = app.add_subcommand(
      "generate",
      "make an API key: prints the key (once; it is not stored) and, without --key-file, the line for the key file");
  generate->add_option("--id", id, "the key's name in logs and the audit log: 1-64 of [A-Za-z0-9._-]")->required();
  generate->add_option("--scopes", scopes, "comma-separated: infer, model_control, admin, metrics")->required();
  generate->add_option("--models", models, "comma-separated model names or prefixes ending in * (default: every model)");
  generate->add_option("--tenant", tenant, "the tenant the key belongs to");
  generate->add_option("--expires", expires, "RFC 3339 time after which the key is refused");
  generate->add_option("--key-file", key_file, "append the line to this key file (checked, replaced atomically)");

  std::string check_file;
  auto* check = app.add_subcommand("check", "check a key file as the server reads it");
  check->add_option("--key-file", check_file, "the key file")->required();

  std::string kid, rsa_public_key;
  bool hs256 = false;
  auto* jwk = app.add_subcommand("jwk", "print a JWK for the server's JWT key set");
  jwk->add_option("--kid", kid, "the key id tokens name in their header")->required();
  jwk->add_flag("--hs256", hs256, "a new random HS256 secret (share it with the token issuer only)");
  jwk->add_option("--rsa-public-key", rsa_public_key, "a PEM RSA public key (the issuer's RS256 key)");

  std::string jwks_file;
  auto* check_jwks = app.add_subcommand("check-jwks", "check a JWT key set as the server reads it");
  check_jwks->add_option("--file", jwks_file, "the JWKS file")->required();

  CLI11_PARSE(app, argc, argv);
  if (generate->parsed()) return Generate(id, scopes, models, tenant, expires, key_file);
  if (check->parsed()) return Check(check_file);
  if (jwk->parsed()) return Jwk(kid, hs256, rsa_public_key);
  if (check_jwks->parsed()) return CheckJwks(jwks_file);
  return 1;
}
