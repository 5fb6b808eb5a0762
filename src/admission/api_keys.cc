// SPDX-License-Identifier: Apache-2.0
#include "admission/api_keys.h"

#include <utility>

#include "absl/time/time.h"
#include "core/status.h"
#include "core/strings.h"

namespace ortserve::admission {
namespace {

constexpr std::string_view kHashScheme = "hmac-sha256";
constexpr size_t kSaltBytes = 16;
constexpr size_t kSecretBytes = 32;
constexpr size_t kMaxTenantBytes = 128;
constexpr size_t kMaxModelPatterns = 256;

bool IsIdByte(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == '-';
}

absl::Status ValidateTenant(std::string_view tenant) {
  if (tenant.size() > kMaxTenantBytes) return absl::InvalidArgumentError("tenant longer than 128 bytes");
  for (const char c : tenant) {
    if (!IsIdByte(c)) return absl::InvalidArgumentError("tenant holds a byte outside [A-Za-z0-9._-]");
  }
  return absl::OkStatus();
}

std::vector<std::string> SplitComma(std::string_view list) {
  std::vector<std::string> items;
  size_t start = 0;
  while (start <= list.size()) {
    const size_t comma = list.find(',', start);
    const size_t end = comma == std::string_view::npos ? list.size() : comma;
    items.emplace_back(list.substr(start, end - start));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return items;
}

absl::Status LineError(size_t line, std::string_view what) {
  return absl::InvalidArgumentError(StrCat("API key file line ", line, ": ", what));
}

// Parses the hash field: "hmac-sha256:<32 hex>:<64 hex>".
bool ParseHashField(std::string_view field, std::string* salt, Digest256* digest) {
  const size_t first = field.find(':');
  if (first == std::string_view::npos || field.substr(0, first) != kHashScheme) return false;
  const size_t second = field.find(':', first + 1);
  if (second == std::string_view::npos) return false;
  auto salt_bytes = HexDecode(field.substr(first + 1, second - first - 1));
  auto digest_bytes = HexDecode(field.substr(second + 1));
  if (!salt_bytes || salt_bytes->size() != kSaltBytes || !digest_bytes || digest_bytes->size() != digest->size()) {
    return false;
  }
  *salt = *std::move(salt_bytes);
  std::copy(digest_bytes->begin(), digest_bytes->end(), reinterpret_cast<char*>(digest->data()));
  return true;
}

// Splits "ortsk_<id>_<secret>"; false when it is not of that shape.
bool SplitKey(std::string_view key, std::string_view* id) {
  if (key.size() > kMaxApiKeyBytes || !LooksLikeApiKey(key)) return false;
  const std::string_view rest = key.substr(kApiKeyPrefix.size());
  if (rest.size() < kApiKeySecretChars + 2) return false;
  const size_t separator = rest.size() - kApiKeySecretChars - 1;
  if (rest[separator] != '_') return false;
  *id = rest.substr(0, separator);
  if (!ValidateApiKeyId(*id).ok()) return false;
  for (const char c : rest.substr(separator + 1)) {
    if (!IsIdByte(c) || c == '.') return false;  // base64url: [A-Za-z0-9_-].
  }
  return true;
}

}  // namespace

absl::Status ValidateApiKeyId(std::string_view id) {
  if (id.empty() || id.size() > kMaxApiKeyIdBytes) return absl::InvalidArgumentError("key id must be 1 to 64 bytes");
  for (const char c : id) {
    if (!IsIdByte(c)) return absl::InvalidArgumentError("key id holds a byte outside [A-Za-z0-9._-]");
  }
  return absl::OkStatus();
}

std::string ApiKeyHashField(std::string_view key, std::string_view salt) {
  return StrCat(kHashScheme, ":", HexEncode(salt), ":", HexEncode(AsBytes(HmacSha256(salt, key))));
}

std::string FormatApiKeyLine(const ApiKeySpec& spec, std::string_view hash_field) {
  std::string line = StrCat("id=", spec.id, " hash=", hash_field, " scopes=", spec.scopes.ToString());
  if (!spec.models.AllowsAll()) line += StrCat(" models=", spec.models.ToString());
  if (!spec.tenant.empty()) line += StrCat(" tenant=", spec.tenant);
  if (spec.expires) line += StrCat(" expires=", absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", *spec.expires, absl::UTCTimeZone()));
  return line;
}

absl::StatusOr<GeneratedApiKey> GenerateApiKey(const ApiKeySpec& spec) {
  RETURN_IF_ERROR(ValidateApiKeyId(spec.id));
  RETURN_IF_ERROR(ValidateTenant(spec.tenant));
  if (spec.scopes.empty()) return absl::InvalidArgumentError("a key needs at least one scope");
  if (!spec.models.AllowsAll() && spec.models.patterns().empty()) {
    return absl::InvalidArgumentError("a key's model list cannot be empty (leave it out for every model)");
  }
  ASSIGN_OR_RETURN(const std::string secret, RandomBytes(kSecretBytes));
  ASSIGN_OR_RETURN(const std::string salt, RandomBytes(kSaltBytes));
  GeneratedApiKey out;
  out.key = StrCat(kApiKeyPrefix, spec.id, "_", Base64UrlEncode(secret));
  out.line = FormatApiKeyLine(spec, ApiKeyHashField(out.key, salt));
  return out;
}

absl::StatusOr<std::shared_ptr<const ApiKeySet>> ApiKeySet::Parse(std::string_view text) {
  auto set = std::make_shared<ApiKeySet>();
  size_t line_number = 0;
  size_t start = 0;
  while (start < text.size()) {
    ++line_number;
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    start = end + 1;
    if (line.size() > kMaxLineBytes) return LineError(line_number, "longer than 4096 bytes");
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (const size_t hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);

    std::optional<std::string_view> id, hash_field, scopes, models, tenant, expires;
    size_t pos = 0;
    bool any = false;
    while (pos < line.size()) {
      while (pos < line.size() && (line[pos] == ' ' || line[pos] == '\t')) ++pos;
      if (pos == line.size()) break;
      size_t token_end = pos;
      while (token_end < line.size() && line[token_end] != ' ' && line[token_end] != '\t') ++token_end;
      const std::string_view token = line.substr(pos, token_end - pos);
      pos = token_end;
      any = true;
      const size_t eq = token.find('=');
      if (eq == std::string_view::npos) return LineError(line_number, "a field is not name=value");
      const std::string_view name = token.substr(0, eq);
      const std::string_view value = token.substr(eq + 1);
      std::optional<std::string_view>* slot = nullptr;
      if (name == "id") slot = &id;
      else if (name == "hash") slot = &hash_field;
      else if (name == "scopes") slot = &scopes;
      else if (name == "models") slot = &models;
      else if (name == "tenant") slot = &tenant;
      else if (name == "expires") slot = &expires;
      else return LineError(line_number, StrCat("unknown field '", name.substr(0, 32), "'"));
      if (slot->has_value()) return LineError(line_number, StrCat("field '", name, "' is repeated"));
      *slot = value;
    }
    if (!any) continue;
    if (!id || !hash_field || !scopes) return LineError(line_number, "id, hash and scopes are required");
    if (auto status = ValidateApiKeyId(*id); !status.ok()) return LineError(line_number, ToStd(status.message()));
    if (set->entries_.size() >= kMaxKeys) return LineError(line_number, "more than 10000 keys");
    if (set->entries_.contains(absl::string_view(id->data(), id->size()))) return LineError(line_number, StrCat("key id '", *id, "' appears twice"));

    Entry entry;
    if (!ParseHashField(*hash_field, &entry.salt, &entry.digest)) {
      return LineError(line_number, "hash is not hmac-sha256:<32 hex digits>:<64 hex digits>");
    }
    auto identity = std::make_shared<Identity>();
    identity->kind = Identity::Kind::kApiKey;
    identity->id = std::string(*id);
    auto scope_set = ParseScopeList(*scopes);
    if (!scope_set.ok()) return LineError(line_number, ToStd(scope_set.status().message()));
    if (scope_set->empty()) return LineError(line_number, "scopes is empty");
    identity->scopes = *scope_set;
    if (models) {
      std::vector<std::string> patterns = SplitComma(*models);
      if (patterns.size() > kMaxModelPatterns) return LineError(line_number, "more than 256 model patterns");
      auto list = ModelAllowList::Only(std::move(patterns));
      if (!list.ok()) return LineError(line_number, ToStd(list.status().message()));
      identity->models = *std::move(list);
    }
    if (tenant) {
      if (auto status = ValidateTenant(*tenant); !status.ok() || tenant->empty()) {
        return LineError(line_number, tenant->empty() ? "tenant is empty" : ToStd(status.message()));
      }
      identity->tenant = std::string(*tenant);
    }
    if (expires) {
      absl::Time t;
      std::string error;
      if (!absl::ParseTime(absl::RFC3339_full, absl::string_view(expires->data(), expires->size()), &t, &error)) {
        return LineError(line_number, "expires is not an RFC 3339 time (2026-06-30T00:00:00Z)");
      }
      identity->expires = t;
    }
    entry.identity = std::move(identity);
    set->entries_.emplace(std::string(*id), std::move(entry));
  }
  return set;
}

const ApiKeySet::Entry* ApiKeySet::Find(std::string_view id) const {
  auto it = entries_.find(absl::string_view(id.data(), id.size()));
  return it == entries_.end() ? nullptr : &it->second;
}

absl::StatusOr<std::unique_ptr<ApiKeyStore>> ApiKeyStore::Create(Options options) {
  const Clock* clock = options.clock != nullptr ? options.clock : Clock::Real();
  std::unique_ptr<ApiKeyStore> store(new ApiKeyStore(clock));
  ASSIGN_OR_RETURN(store->files_,
                   ReloadingFiles<ApiKeySet>::Create({
                       .paths = {options.path},
                       .parse = [](const std::vector<std::string>& contents) { return ApiKeySet::Parse(contents[0]); },
                       .check_interval = options.check_interval,
                       .clock = clock,
                       .on_reload = std::move(options.on_reload),
                   }));
  return store;
}

absl::StatusOr<IdentityPtr> ApiKeyStore::Verify(std::string_view key) {
  std::string_view id;
  if (!SplitKey(key, &id)) return absl::UnauthenticatedError("the API key is malformed (expected ortsk_<id>_<secret>)");
  const std::shared_ptr<const ApiKeySet> keys = files_->Current();
  const ApiKeySet::Entry* entry = keys->Find(id);
  // An unknown id costs the same HMAC as a known one, so timing does not
  // tell which ids exist.
  static const std::string kDummySalt(kSaltBytes, '\0');
  const Digest256 digest = HmacSha256(entry != nullptr ? std::string_view(entry->salt) : kDummySalt, key);
  if (entry == nullptr || !ConstantTimeEquals(AsBytes(digest), AsBytes(entry->digest))) {
    return absl::UnauthenticatedError("the API key is not recognised");
  }
  if (clock_->Now() >= entry->identity->expires) {
    return absl::UnauthenticatedError(
        StrCat("API key '", id, "' expired at ",
               absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", entry->identity->expires, absl::UTCTimeZone())));
  }
  return entry->identity;
}

}  // namespace ortserve::admission
