// SPDX-License-Identifier: Apache-2.0
#include "admission/jwt.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include <algorithm>
#include <cmath>
#include <optional>

#include "admission/crypto.h"
#include "core/status.h"
#include "core/strings.h"
#include "simdjson.h"

namespace ortserve::admission {
namespace {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::object;

constexpr size_t kMaxHeaderMembers = 16;
constexpr size_t kMaxClaims = 64;
constexpr size_t kMaxKidBytes = 256;
constexpr size_t kMaxSubjectBytes = 256;
constexpr size_t kMaxTenantBytes = 128;
constexpr size_t kMaxAudiences = 16;
constexpr size_t kMaxScopes = 256;
constexpr size_t kMaxModelPatterns = 256;
constexpr size_t kMinHmacKeyBytes = 32;
constexpr size_t kMaxHmacKeyBytes = 1024;
constexpr int kMinRsaBits = 2048;
constexpr int kMaxRsaBits = 8192;
// NumericDate values outside ±1e11 s (about ±3000 years) are refused.
constexpr double kMaxNumericDate = 1e11;

absl::Status Refused(std::string_view why) { return absl::UnauthenticatedError(StrCat("bearer token refused: ", why)); }

// One parser per thread: parsing allocates only when a document is larger
// than any this thread parsed before (bounded by max_token_bytes).
simdjson::dom::parser& ThreadParser() {
  thread_local simdjson::dom::parser parser;
  return parser;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

bool HasControlBytes(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

// A short, printable rendering of a value from a signed token or an
// operator's file, for messages.
std::string Quoted(std::string_view s) {
  if (s.size() > 64 || HasControlBytes(s)) return "(unprintable)";
  return StrCat("'", s, "'");
}

// Refuses repeated member names (parsers disagree on which one wins, a known
// way to smuggle claims) and more than `max_members` members.
absl::Status CheckMembers(object obj, size_t max_members, std::string_view what) {
  std::vector<std::string_view> keys;
  for (auto field : obj) {
    if (keys.size() == max_members) return absl::InvalidArgumentError(StrCat(what, " has more than ", max_members, " members"));
    keys.push_back(field.key);
  }
  std::sort(keys.begin(), keys.end());
  if (std::adjacent_find(keys.begin(), keys.end()) != keys.end()) {
    return absl::InvalidArgumentError(StrCat(what, " repeats a member name"));
  }
  return absl::OkStatus();
}

std::optional<JwtAlgorithm> AlgorithmFromName(std::string_view name) {
  if (name == "HS256") return JwtAlgorithm::kHS256;
  if (name == "RS256") return JwtAlgorithm::kRS256;
  return std::nullopt;
}

absl::StatusOr<std::shared_ptr<EVP_PKEY>> RsaPublicKey(std::string_view n_bytes, std::string_view e_bytes) {
  if (e_bytes.empty() || e_bytes.size() > 8) return absl::InvalidArgumentError("RSA exponent e must be 1 to 8 bytes");
  std::unique_ptr<BIGNUM, decltype(&BN_free)> n(
      BN_bin2bn(reinterpret_cast<const unsigned char*>(n_bytes.data()), static_cast<int>(n_bytes.size()), nullptr),
      BN_free);
  std::unique_ptr<BIGNUM, decltype(&BN_free)> e(
      BN_bin2bn(reinterpret_cast<const unsigned char*>(e_bytes.data()), static_cast<int>(e_bytes.size()), nullptr),
      BN_free);
  if (!n || !e) return absl::InternalError(StrCat("cannot build RSA numbers: ", DrainOpenSslErrors()));
  const int bits = BN_num_bits(n.get());
  if (bits < kMinRsaBits || bits > kMaxRsaBits) {
    return absl::InvalidArgumentError(StrCat("RSA modulus has ", bits, " bits (2048 to 8192 accepted)"));
  }
  if (!BN_is_odd(e.get()) || BN_is_one(e.get())) return absl::InvalidArgumentError("RSA exponent e must be odd and above 1");
  std::unique_ptr<OSSL_PARAM_BLD, decltype(&OSSL_PARAM_BLD_free)> build(OSSL_PARAM_BLD_new(), OSSL_PARAM_BLD_free);
  if (!build || OSSL_PARAM_BLD_push_BN(build.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(build.get(), OSSL_PKEY_PARAM_RSA_E, e.get()) != 1) {
    return absl::InternalError(StrCat("cannot build RSA parameters: ", DrainOpenSslErrors()));
  }
  std::unique_ptr<OSSL_PARAM, decltype(&OSSL_PARAM_free)> params(OSSL_PARAM_BLD_to_param(build.get()), OSSL_PARAM_free);
  std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx(EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr),
                                                                  EVP_PKEY_CTX_free);
  EVP_PKEY* pkey = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &pkey, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    return absl::InvalidArgumentError(StrCat("not a usable RSA public key: ", DrainOpenSslErrors()));
  }
  return std::shared_ptr<EVP_PKEY>(pkey, EVP_PKEY_free);
}

bool VerifyRs256(EVP_PKEY* key, std::string_view signing_input, std::string_view signature) {
  if (signature.size() != static_cast<size_t>(EVP_PKEY_get_size(key))) return false;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> md(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_PKEY_CTX* pctx = nullptr;
  if (!md || EVP_DigestVerifyInit(md.get(), &pctx, EVP_sha256(), nullptr, key) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1) {
    DrainOpenSslErrors();
    return false;
  }
  const int ok = EVP_DigestVerify(md.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                                  reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size());
  if (ok != 1) DrainOpenSslErrors();
  return ok == 1;
}

// A NumericDate claim as a time; nullopt when absent.
absl::StatusOr<std::optional<absl::Time>> NumericDate(object claims, std::string_view name) {
  element value;
  if (claims[name].get(value) != simdjson::SUCCESS) return std::nullopt;
  double seconds = 0;
  if (value.get_double().get(seconds) != simdjson::SUCCESS) return Refused(StrCat("claim '", name, "' is not a number"));
  if (!std::isfinite(seconds) || std::fabs(seconds) > kMaxNumericDate) {
    return Refused(StrCat("claim '", name, "' is out of range"));
  }
  return absl::UnixEpoch() + absl::Seconds(seconds);
}

std::string Rfc3339(absl::Time t) { return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone()); }

// Adds the scopes named in `words` (space-separated) to `scopes`.
absl::Status AddScopes(std::string_view words, std::string_view prefix, ScopeSet* scopes, size_t* count) {
  size_t pos = 0;
  while (pos < words.size()) {
    while (pos < words.size() && words[pos] == ' ') ++pos;
    size_t end = words.find(' ', pos);
    if (end == std::string_view::npos) end = words.size();
    if (end > pos) {
      if (++*count > kMaxScopes) return Refused("more than 256 scopes");
      std::string_view word = words.substr(pos, end - pos);
      if (word.substr(0, prefix.size()) == prefix) {
        word.remove_prefix(prefix.size());
        if (auto scope = ParseScope(word)) scopes->Add(*scope);
      }
    }
    pos = end;
  }
  return absl::OkStatus();
}

}  // namespace

std::string_view JwtAlgorithmName(JwtAlgorithm alg) { return alg == JwtAlgorithm::kHS256 ? "HS256" : "RS256"; }

absl::StatusOr<RsaJwkMembers> RsaJwkMembersOf(const EVP_PKEY* key) {
  BIGNUM* n = nullptr;
  BIGNUM* e = nullptr;
  if (key == nullptr || EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &n) != 1 ||
      EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &e) != 1) {
    BN_free(n);
    DrainOpenSslErrors();
    return absl::InvalidArgumentError("not an RSA key");
  }
  const auto bytes = [](BIGNUM* bn) {
    std::string out(static_cast<size_t>(BN_num_bytes(bn)), '\0');
    BN_bn2bin(bn, reinterpret_cast<unsigned char*>(out.data()));
    BN_free(bn);
    return Base64UrlEncode(out);
  };
  RsaJwkMembers members;
  members.n = bytes(n);
  members.e = bytes(e);
  return members;
}

absl::StatusOr<std::shared_ptr<const JwtKeySet>> JwtKeySet::Parse(std::string_view jwks_json) {
  simdjson::dom::parser parser;
  element root;
  if (parser.parse(jwks_json.data(), jwks_json.size()).get(root) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError("JWT key set is not valid JSON");
  }
  array keys;
  if (root["keys"].get_array().get(keys) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError("JWT key set has no \"keys\" array");
  }
  auto set = std::make_shared<JwtKeySet>();
  size_t index = 0;
  for (element item : keys) {
    if (index++ >= kMaxKeys) return absl::InvalidArgumentError("JWT key set has more than 100 keys");
    const auto key_error = [&](std::string_view what) {
      return absl::InvalidArgumentError(StrCat("JWT key set: key ", index - 1, ": ", what));
    };
    object jwk;
    if (item.get_object().get(jwk) != simdjson::SUCCESS) return key_error("not an object");
    if (auto status = CheckMembers(jwk, 64, "the key"); !status.ok()) return key_error(ToStd(status.message()));
    std::string_view kty, kid, use, alg_name;
    if (jwk["kty"].get_string().get(kty) != simdjson::SUCCESS) return key_error("no \"kty\" string");
    if (jwk["kid"].get_string().get(kid) != simdjson::SUCCESS || kid.empty() || kid.size() > kMaxKidBytes ||
        HasControlBytes(kid)) {
      return key_error("no \"kid\" of 1 to 256 printable bytes");
    }
    const auto kid_error = [&](std::string_view what) { return key_error(StrCat("kid ", Quoted(kid), ": ", what)); };
    const bool has_use = jwk["use"].get_string().get(use) == simdjson::SUCCESS;
    const bool has_alg = jwk["alg"].get_string().get(alg_name) == simdjson::SUCCESS;
    std::optional<JwtAlgorithm> alg;
    if (kty == "oct") alg = JwtAlgorithm::kHS256;
    if (kty == "RSA") alg = JwtAlgorithm::kRS256;
    if (!alg || (has_use && use != "sig")) {
      ++set->skipped_;
      continue;
    }
    if (has_alg && alg_name != JwtAlgorithmName(*alg)) {
      // Another algorithm of a type we read (HS512, PS256, RSA-OAEP...).
      ++set->skipped_;
      continue;
    }
    if (set->Find(kid) != nullptr) return kid_error("appears twice");
    Key key{.kid = std::string(kid), .alg = *alg, .hmac_secret = {}, .rsa_public = nullptr};
    if (*alg == JwtAlgorithm::kHS256) {
      std::string_view k;
      if (jwk["k"].get_string().get(k) != simdjson::SUCCESS) return kid_error("no \"k\" member");
      auto secret = Base64UrlDecode(k);
      if (!secret) return kid_error("\"k\" is not base64url");
      if (secret->size() < kMinHmacKeyBytes || secret->size() > kMaxHmacKeyBytes) {
        return kid_error(StrCat("an HS256 secret must be 32 to 1024 bytes (it has ", secret->size(), ")"));
      }
      key.hmac_secret = *std::move(secret);
    } else {
      std::string_view n, e;
      if (jwk["n"].get_string().get(n) != simdjson::SUCCESS || jwk["e"].get_string().get(e) != simdjson::SUCCESS) {
        return kid_error("an RSA key needs \"n\" and \"e\"");
      }
      auto n_bytes = Base64UrlDecode(n);
      auto e_bytes = Base64UrlDecode(e);
      if (!n_bytes || !e_bytes) return kid_error("\"n\" or \"e\" is not base64url");
      auto pkey = RsaPublicKey(*n_bytes, *e_bytes);
      if (!pkey.ok()) return kid_error(ToStd(pkey.status().message()));
      key.rsa_public = *std::move(pkey);
    }
    set->keys_.push_back(std::move(key));
  }
  if (set->keys_.empty()) {
    return absl::InvalidArgumentError(StrCat("JWT key set has no HS256 or RS256 signing key (", set->skipped_,
                                             " keys of other types or uses skipped)"));
  }
  return set;
}

const JwtKeySet::Key* JwtKeySet::Find(std::string_view kid) const {
  for (const Key& key : keys_) {
    if (key.kid == kid) return &key;
  }
  return nullptr;
}

std::vector<const JwtKeySet::Key*> JwtKeySet::ForAlgorithm(JwtAlgorithm alg) const {
  std::vector<const Key*> out;
  for (const Key& key : keys_) {
    if (key.alg == alg) out.push_back(&key);
  }
  return out;
}

absl::StatusOr<std::unique_ptr<JwtVerifier>> JwtVerifier::Create(Options options) {
  if (options.issuers.empty()) return absl::InvalidArgumentError("JWT: at least one accepted issuer is required");
  if (options.audiences.empty()) return absl::InvalidArgumentError("JWT: at least one accepted audience is required");
  if (options.algorithms.empty()) return absl::InvalidArgumentError("JWT: at least one algorithm is required");
  if (options.clock_skew < absl::ZeroDuration() || options.clock_skew > absl::Minutes(5)) {
    return absl::InvalidArgumentError("JWT: clock skew must be between 0 and 5 minutes");
  }
  if (options.max_lifetime < absl::ZeroDuration()) return absl::InvalidArgumentError("JWT: max lifetime is negative");
  if (options.max_token_bytes < 256 || options.max_token_bytes > 65536) {
    return absl::InvalidArgumentError("JWT: the token length bound must be 256 to 65536 bytes");
  }
  if (options.models_claim.empty() || options.tenant_claim.empty()) {
    return absl::InvalidArgumentError("JWT: the models and tenant claim names cannot be empty");
  }
  if (options.clock == nullptr) options.clock = Clock::Real();
  std::unique_ptr<JwtVerifier> verifier(new JwtVerifier(std::move(options)));
  ASSIGN_OR_RETURN(verifier->keys_,
                   ReloadingFiles<JwtKeySet>::Create({
                       .paths = {verifier->options_.keys_path},
                       .parse = [](const std::vector<std::string>& contents) { return JwtKeySet::Parse(contents[0]); },
                       .check_interval = verifier->options_.check_interval,
                       .clock = verifier->options_.clock,
                       .on_reload = verifier->options_.on_reload,
                   }));
  return verifier;
}

absl::StatusOr<IdentityPtr> JwtVerifier::Verify(std::string_view token) {
  // 1. Shape, before any decoding or crypto.
  if (token.size() > options_.max_token_bytes) {
    return Refused(StrCat("longer than ", options_.max_token_bytes, " bytes"));
  }
  const size_t dot1 = token.find('.');
  const size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return Refused("not a JWS compact token (header.payload.signature)");
  }
  const std::string_view signing_input = token.substr(0, dot2);
  auto header_json = Base64UrlDecode(token.substr(0, dot1));
  auto payload_json = Base64UrlDecode(token.substr(dot1 + 1, dot2 - dot1 - 1));
  auto signature = Base64UrlDecode(token.substr(dot2 + 1));
  if (!header_json || !payload_json || !signature) return Refused("a part is not unpadded base64url");

  // 2. Header: algorithm and key.
  simdjson::dom::parser& parser = ThreadParser();
  std::string kid;
  bool has_kid = false;
  std::string_view alg_name;
  std::optional<JwtAlgorithm> alg;
  {
    object header;
    if (parser.parse(header_json->data(), header_json->size()).get_object().get(header) != simdjson::SUCCESS) {
      return Refused("the header is not a JSON object");
    }
    if (auto status = CheckMembers(header, kMaxHeaderMembers, "the header"); !status.ok()) {
      return Refused(ToStd(status.message()));
    }
    if (header["crit"].error() == simdjson::SUCCESS) return Refused("the header has critical extensions (crit)");
    if (header["alg"].get_string().get(alg_name) != simdjson::SUCCESS) return Refused("the header has no alg");
    if (EqualsIgnoreCase(alg_name, "none")) return Refused("alg 'none' is never accepted");
    alg = AlgorithmFromName(alg_name);
    if (!alg) return Refused(StrCat("alg ", Quoted(alg_name), " is not supported (HS256, RS256)"));
    if (std::find(options_.algorithms.begin(), options_.algorithms.end(), *alg) == options_.algorithms.end()) {
      return Refused(StrCat("alg ", JwtAlgorithmName(*alg), " is not accepted by this server"));
    }
    std::string_view typ;
    if (header["typ"].error() == simdjson::SUCCESS) {
      if (header["typ"].get_string().get(typ) != simdjson::SUCCESS ||
          !(EqualsIgnoreCase(typ, "JWT") || EqualsIgnoreCase(typ, "at+jwt") ||
            EqualsIgnoreCase(typ, "application/at+jwt"))) {
        return Refused("typ is not JWT");
      }
    }
    std::string_view kid_view;
    if (header["kid"].error() == simdjson::SUCCESS) {
      if (header["kid"].get_string().get(kid_view) != simdjson::SUCCESS || kid_view.size() > kMaxKidBytes) {
        return Refused("kid is not a string of at most 256 bytes");
      }
      kid = std::string(kid_view);
      has_kid = true;
    }
  }
  const std::shared_ptr<const JwtKeySet> keys = keys_->Current();
  const JwtKeySet::Key* key = nullptr;
  if (has_kid) {
    key = keys->Find(kid);
    if (key == nullptr) return Refused("its kid is not in the key set");
    if (key->alg != *alg) {
      // An RS256 public key must never serve as an HMAC secret.
      return Refused(StrCat("key ", Quoted(key->kid), " is for ", JwtAlgorithmName(key->alg), ", the token says ",
                            JwtAlgorithmName(*alg)));
    }
  } else {
    const std::vector<const JwtKeySet::Key*> candidates = keys->ForAlgorithm(*alg);
    if (candidates.size() != 1) {
      return Refused(StrCat("it has no kid and the key set has ", candidates.size(), " ", JwtAlgorithmName(*alg),
                            " keys"));
    }
    key = candidates[0];
  }

  // 3. Signature, before the claims are read.
  bool valid = false;
  if (*alg == JwtAlgorithm::kHS256) {
    valid = ConstantTimeEquals(AsBytes(HmacSha256(key->hmac_secret, signing_input)), *signature);
  } else {
    valid = VerifyRs256(key->rsa_public.get(), signing_input, *signature);
  }
  if (!valid) return Refused("the signature does not verify");

  // 4. Claims.
  object claims;
  if (parser.parse(payload_json->data(), payload_json->size()).get_object().get(claims) != simdjson::SUCCESS) {
    return Refused("the payload is not a JSON object");
  }
  if (auto status = CheckMembers(claims, kMaxClaims, "the payload"); !status.ok()) return Refused(ToStd(status.message()));

  std::string_view iss;
  if (claims["iss"].get_string().get(iss) != simdjson::SUCCESS) return Refused("no iss claim");
  if (std::find(options_.issuers.begin(), options_.issuers.end(), iss) == options_.issuers.end()) {
    return Refused(StrCat("issuer ", Quoted(iss), " is not accepted"));
  }
  std::string_view sub;
  if (claims["sub"].get_string().get(sub) != simdjson::SUCCESS || sub.empty() || sub.size() > kMaxSubjectBytes ||
      HasControlBytes(sub)) {
    return Refused("no sub claim of 1 to 256 printable bytes");
  }

  bool audience_ok = false;
  element aud;
  if (claims["aud"].get(aud) != simdjson::SUCCESS) return Refused("no aud claim");
  const auto accepted = [&](std::string_view a) {
    return std::find(options_.audiences.begin(), options_.audiences.end(), a) != options_.audiences.end();
  };
  if (std::string_view one; aud.get_string().get(one) == simdjson::SUCCESS) {
    audience_ok = accepted(one);
  } else if (array many; aud.get_array().get(many) == simdjson::SUCCESS) {
    size_t count = 0;
    for (element a : many) {
      std::string_view s;
      if (++count > kMaxAudiences || a.get_string().get(s) != simdjson::SUCCESS) {
        return Refused("aud is not a string or an array of at most 16 strings");
      }
      audience_ok = audience_ok || accepted(s);
    }
  } else {
    return Refused("aud is not a string or an array of strings");
  }
  if (!audience_ok) return Refused("it is not meant for this server (aud)");

  const absl::Time now = options_.clock->Now();
  const absl::Duration skew = options_.clock_skew;
  ASSIGN_OR_RETURN(const std::optional<absl::Time> exp, NumericDate(claims, "exp"));
  ASSIGN_OR_RETURN(const std::optional<absl::Time> nbf, NumericDate(claims, "nbf"));
  ASSIGN_OR_RETURN(const std::optional<absl::Time> iat, NumericDate(claims, "iat"));
  if (!exp) return Refused("no exp claim");
  if (now >= *exp + skew) return Refused(StrCat("expired at ", Rfc3339(*exp)));
  if (nbf && now + skew < *nbf) return Refused(StrCat("not valid before ", Rfc3339(*nbf)));
  if (iat && *iat > now + skew) return Refused(StrCat("issued in the future (", Rfc3339(*iat), ")"));
  if (options_.max_lifetime > absl::ZeroDuration()) {
    const absl::Time start = iat ? *iat : (nbf ? *nbf : now);
    if (*exp - start > options_.max_lifetime) {
      return Refused(StrCat("its lifetime exceeds ", absl::FormatDuration(options_.max_lifetime)));
    }
  }

  auto identity = std::make_shared<Identity>();
  identity->kind = Identity::Kind::kJwt;
  identity->id = std::string(sub);
  identity->issuer = std::string(iss);
  identity->expires = *exp;
  size_t scope_count = 0;
  if (element scope; claims["scope"].get(scope) == simdjson::SUCCESS) {
    std::string_view words;
    if (scope.get_string().get(words) != simdjson::SUCCESS) return Refused("scope is not a string");
    RETURN_IF_ERROR(AddScopes(words, options_.scope_prefix, &identity->scopes, &scope_count));
  }
  if (element scp; claims["scp"].get(scp) == simdjson::SUCCESS) {
    if (std::string_view words; scp.get_string().get(words) == simdjson::SUCCESS) {
      RETURN_IF_ERROR(AddScopes(words, options_.scope_prefix, &identity->scopes, &scope_count));
    } else if (array list; scp.get_array().get(list) == simdjson::SUCCESS) {
      for (element item : list) {
        std::string_view word;
        if (item.get_string().get(word) != simdjson::SUCCESS || word.find(' ') != std::string_view::npos) {
          return Refused("scp is not an array of scope names");
        }
        RETURN_IF_ERROR(AddScopes(word, options_.scope_prefix, &identity->scopes, &scope_count));
      }
    } else {
      return Refused("scp is not a string or an array of strings");
    }
  }
  if (element models; claims[options_.models_claim].get(models) == simdjson::SUCCESS) {
    array list;
    if (models.get_array().get(list) != simdjson::SUCCESS) return Refused(StrCat(options_.models_claim, " is not an array"));
    std::vector<std::string> patterns;
    for (element item : list) {
      std::string_view pattern;
      if (patterns.size() == kMaxModelPatterns || item.get_string().get(pattern) != simdjson::SUCCESS) {
        return Refused(StrCat(options_.models_claim, " is not an array of at most 256 strings"));
      }
      patterns.emplace_back(pattern);
    }
    auto allow = ModelAllowList::Only(std::move(patterns));
    if (!allow.ok()) return Refused(StrCat(options_.models_claim, ": ", ToStd(allow.status().message())));
    identity->models = *std::move(allow);
  }
  if (element tenant; claims[options_.tenant_claim].get(tenant) == simdjson::SUCCESS) {
    std::string_view name;
    if (tenant.get_string().get(name) != simdjson::SUCCESS || name.empty() || name.size() > kMaxTenantBytes ||
        HasControlBytes(name)) {
      return Refused(StrCat(options_.tenant_claim, " is not a string of 1 to 128 printable bytes"));
    }
    identity->tenant = std::string(name);
  }
  return IdentityPtr(std::move(identity));
}

}  // namespace ortserve::admission
