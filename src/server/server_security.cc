// SPDX-License-Identifier: Apache-2.0
// Security and rate limits from the flags (docs/security.md): the audit log,
// API keys, JWT, mTLS grants, TLS for HTTP and gRPC, the warning about a
// server anyone on the network may use, and the --rate-limit-* limiter.
#include <spdlog/spdlog.h>

#include <string>
#include <vector>

#include "core/status.h"
#include "core/strings.h"
#include "server/server_impl.h"

namespace ortserve::server {
namespace {

std::vector<std::string> SplitOn(std::string_view text, char separator) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t end = text.find(separator, start);
    parts.emplace_back(text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

// "SUBJECT|scopes[|models[|tenant]]" (--mtls-grant).
absl::StatusOr<admission::Authenticator::MtlsGrant> ParseMtlsGrant(std::string_view text) {
  const std::vector<std::string> parts = SplitOn(text, '|');
  if (parts.size() < 2 || parts.size() > 4) {
    return absl::InvalidArgumentError(
        StrCat("--mtls-grant '", text, "': expected SUBJECT|scopes[|models[|tenant]]"));
  }
  admission::Authenticator::MtlsGrant grant;
  grant.subject = parts[0];
  auto scopes = admission::ParseScopeList(parts[1]);
  if (!scopes.ok()) return absl::InvalidArgumentError(StrCat("--mtls-grant '", text, "': ", ToStd(scopes.status().message())));
  grant.scopes = *scopes;
  if (parts.size() >= 3 && !parts[2].empty() && parts[2] != "*") {
    auto models = admission::ModelAllowList::Only(SplitOn(parts[2], ','));
    if (!models.ok()) {
      return absl::InvalidArgumentError(StrCat("--mtls-grant '", text, "': ", ToStd(models.status().message())));
    }
    grant.models = *std::move(models);
  }
  if (parts.size() == 4) grant.tenant = parts[3];
  return grant;
}

bool IsLoopback(const std::string& address) {
  return address == "127.0.0.1" || address == "::1" || address == "localhost" || address.starts_with("127.");
}

absl::StatusOr<admission::ClientCertMode> ParseClientCertMode(const ServerOptions& options) {
  const std::string& mode = options.tls_client_cert;
  if (mode.empty()) {
    return options.tls_client_ca_file.empty() ? admission::ClientCertMode::kNone : admission::ClientCertMode::kRequire;
  }
  if (mode == "none") return admission::ClientCertMode::kNone;
  if (mode == "optional") return admission::ClientCertMode::kOptional;
  if (mode == "require") return admission::ClientCertMode::kRequire;
  return absl::InvalidArgumentError(StrCat("--tls-client-cert '", mode, "': expected none, optional or require"));
}

}  // namespace

void ReportReload(std::string_view what, const absl::Status& status) {
  if (status.ok()) {
    spdlog::info("{}: reloaded", what);
  } else {
    spdlog::error("{}: the changed file(s) do not load, the last good ones stay in service: {}", what,
                  ToStd(status.message()));
  }
}

absl::Status Server::Impl::SetUpRateLimits(const ServerOptions& options) {
  std::unique_ptr<admission::RedisTokenLease>* lease = &rate_limit_lease;
  std::unique_ptr<admission::RateLimiter>* limiter = &rate_limiter;
  admission::RateLimiter::Options limits;
  if (!options.rate_limit_per_client.empty()) {
    ASSIGN_OR_RETURN(limits.per_client,
                     admission::ParseRateSpec("--rate-limit-per-client", options.rate_limit_per_client));
  }
  for (const std::string& entry : options.rate_limit_per_model) {
    const size_t equals = entry.find('=');
    ASSIGN_OR_RETURN(admission::RateSpec spec,
                     admission::ParseRateSpec("--rate-limit-per-model",
                                              equals == std::string::npos ? entry : entry.substr(equals + 1)));
    if (equals == std::string::npos) {
      limits.per_model_default = spec;
    } else {
      limits.per_model.emplace_back(entry.substr(0, equals), spec);
    }
  }
  if (!options.rate_limit_global.empty()) {
    ASSIGN_OR_RETURN(limits.global, admission::ParseRateSpec("--rate-limit-global", options.rate_limit_global));
  }
  if (!options.rate_limit_redis.empty()) {
    admission::RedisTokenLease::Options redis;
    redis.address = options.rate_limit_redis;
    redis.key = options.rate_limit_redis_key;
    redis.spec = limits.global;
    redis.registry = metrics->registry().get();
    ASSIGN_OR_RETURN(*lease, admission::RedisTokenLease::Start(std::move(redis)));
    limits.shared_global = lease->get();
  }
  limits.max_clients = options.rate_limit_max_clients;
  ASSIGN_OR_RETURN(*limiter, admission::RateLimiter::Create(std::move(limits)));
  if (!(*limiter)->enabled()) {
    limiter->reset();
    return absl::OkStatus();
  }
  spdlog::info("rate limits: per client {}, per model {} ({} named), global {}{}",
               options.rate_limit_per_client.empty() ? "off" : options.rate_limit_per_client,
               options.rate_limit_per_model.empty() ? "off" : "on", options.rate_limit_per_model.size(),
               options.rate_limit_global.empty() ? "off" : options.rate_limit_global,
               options.rate_limit_redis.empty() ? "" : StrCat(" shared through Redis at ", options.rate_limit_redis));
  return absl::OkStatus();
}

absl::Status Server::Impl::SetUpSecurity(const ServerOptions& options) {
  if (!options.audit_log.empty()) {
    observability::AuditLog::Options audit_options;
    audit_options.path = options.audit_log;
    audit_options.max_bytes = options.audit_log_max_bytes;
    if (options.audit_log_sync == "every-line") {
      audit_options.sync = observability::AuditLog::SyncPolicy::kEveryLine;
    } else if (options.audit_log_sync == "interval") {
      audit_options.sync = observability::AuditLog::SyncPolicy::kInterval;
    } else if (options.audit_log_sync == "none") {
      audit_options.sync = observability::AuditLog::SyncPolicy::kNone;
    } else {
      return absl::InvalidArgumentError(
          StrCat("--audit-log-sync '", options.audit_log_sync, "': expected every-line, interval or none"));
    }
    auto opened = observability::AuditLog::Create(std::move(audit_options));
    if (!opened.ok()) {
      return absl::Status(opened.status().code(),
                          StrCat("--audit-log '", options.audit_log, "': ", ToStd(opened.status().message())));
    }
    audit = *std::move(opened);
    spdlog::info("audit log: {}", options.audit_log);
  }

  admission::Authenticator::Options auth_options;
  if (!options.api_keys_file.empty()) {
    admission::ApiKeyStore::Options key_options;
    key_options.path = options.api_keys_file;
    key_options.on_reload = [](const absl::Status& status) { ReportReload("API key file", status); };
    auto keys = admission::ApiKeyStore::Create(std::move(key_options));
    if (!keys.ok()) {
      return absl::Status(keys.status().code(),
                          StrCat("--api-keys-file '", options.api_keys_file, "': ", ToStd(keys.status().message())));
    }
    spdlog::info("authentication: {} API key(s) from {}", (*keys)->size(), options.api_keys_file);
    auth_options.api_keys = *std::move(keys);
  }
  if (!options.jwt_jwks_file.empty()) {
    if (options.jwt_issuers.empty() || options.jwt_audiences.empty()) {
      return absl::InvalidArgumentError("--jwt-jwks-file needs --jwt-issuer and --jwt-audience");
    }
    if (options.jwt_clock_skew_seconds < 0 || options.jwt_clock_skew_seconds > 300) {
      return absl::InvalidArgumentError("--jwt-clock-skew-seconds must be 0..300");
    }
    admission::JwtVerifier::Options jwt_options;
    jwt_options.keys_path = options.jwt_jwks_file;
    jwt_options.issuers = options.jwt_issuers;
    jwt_options.audiences = options.jwt_audiences;
    jwt_options.clock_skew = absl::Seconds(options.jwt_clock_skew_seconds);
    jwt_options.scope_prefix = options.jwt_scope_prefix;
    jwt_options.on_reload = [](const absl::Status& status) { ReportReload("JWT key set", status); };
    auto jwt = admission::JwtVerifier::Create(std::move(jwt_options));
    if (!jwt.ok()) {
      return absl::Status(jwt.status().code(),
                          StrCat("--jwt-jwks-file '", options.jwt_jwks_file, "': ", ToStd(jwt.status().message())));
    }
    spdlog::info("authentication: JWT bearer tokens, {} key(s) from {}", (*jwt)->keys()->size(),
                 options.jwt_jwks_file);
    auth_options.jwt = *std::move(jwt);
  }
  for (const std::string& text : options.mtls_grants) {
    ASSIGN_OR_RETURN(auto grant, ParseMtlsGrant(text));
    auth_options.mtls_grants.push_back(std::move(grant));
  }
  auth_options.enabled = auth_options.api_keys || auth_options.jwt || !auth_options.mtls_grants.empty();
  ASSIGN_OR_RETURN(authenticator, admission::Authenticator::Create(std::move(auth_options)));

  const bool tls_on = !options.tls_cert_file.empty() || !options.tls_key_file.empty();
  if (!options.mtls_grants.empty() && options.tls_client_ca_file.empty()) {
    return absl::InvalidArgumentError("--mtls-grant needs client certificates: set --tls-client-ca-file");
  }
  if (tls_on || !options.tls_client_ca_file.empty()) {
    admission::TlsFiles files;
    files.cert_chain_path = options.tls_cert_file;
    files.private_key_path = options.tls_key_file;
    files.client_ca_path = options.tls_client_ca_file;
    ASSIGN_OR_RETURN(files.client_cert, ParseClientCertMode(options));
    RETURN_IF_ERROR(admission::ValidateTlsFiles(files));
    const absl::Duration interval = absl::Seconds(std::max(0.1, options.tls_reload_seconds));
    if (options.http_port >= 0) {
      admission::TlsContextProvider::Options tls_options;
      tls_options.files = files;
      tls_options.check_interval = interval;
      tls_options.on_reload = [](const absl::Status& status) { ReportReload("HTTP TLS certificate", status); };
      ASSIGN_OR_RETURN(http_tls, admission::TlsContextProvider::Create(std::move(tls_options)));
    }
    if (options.grpc_port >= 0) {
      admission::GrpcTlsCredentials::Options tls_options;
      tls_options.files = files;
      tls_options.check_interval = interval;
      tls_options.on_reload = [](const absl::Status& status) { ReportReload("gRPC TLS certificate", status); };
      ASSIGN_OR_RETURN(grpc_tls, admission::GrpcTlsCredentials::Create(std::move(tls_options)));
    }
    const admission::CertificateInfo certificate =
        http_tls ? http_tls->certificate() : grpc_tls ? grpc_tls->certificate() : admission::CertificateInfo{};
    spdlog::info("TLS: certificate '{}' (serial {}) valid until {}; client certificates {}", certificate.subject,
                 certificate.serial_hex, absl::FormatTime(certificate.not_after),
                 options.tls_client_ca_file.empty() ? "not requested" : options.tls_client_cert.empty() ? "required" : options.tls_client_cert);
  }

  frontend::AccessControl::Options access_options;
  access_options.authenticator = authenticator.get();
  access_options.authorizer.open_health = options.auth_health_open;
  access_options.authorizer.open_metrics = !options.metrics_auth;
  access_options.audit = audit.get();
  access = std::make_unique<frontend::AccessControl>(access_options);

  // Said loudly, once, at start: who can reach this server can use it.
  std::vector<std::string> exposed;
  if (options.http_port >= 0 && !IsLoopback(options.http_address)) exposed.push_back("HTTP on " + options.http_address);
  if (options.grpc_port >= 0 && !IsLoopback(options.grpc_address)) exposed.push_back("gRPC on " + options.grpc_address);
  // The metrics port has no TLS; it is named only when nothing guards it.
  if (options.metrics_port >= 0 && !IsLoopback(options.metrics_address) &&
      (!authenticator->enabled() || !options.metrics_auth)) {
    exposed.push_back("metrics on " + options.metrics_address);
  }
  if (!exposed.empty()) {
    std::string list;
    for (const auto& item : exposed) list += (list.empty() ? "" : ", ") + item;
    if (!authenticator->enabled()) {
      spdlog::warn("SECURITY: reachable beyond this host ({}) with NO AUTHENTICATION: anyone who reaches the "
                   "server can run, load and unload models and change the logs. For trusted networks only; "
                   "otherwise bind 127.0.0.1 or set --api-keys-file / --jwt-jwks-file (docs/security.md)",
                   list);
    } else if (!tls_on) {
      spdlog::warn("SECURITY: reachable beyond this host ({}) WITHOUT TLS: credentials and data travel in clear "
                   "text; set --tls-cert-file and --tls-key-file (docs/security.md)",
                   list);
    }
  }
  if (authenticator->enabled()) {
    spdlog::info("authentication on: health probes {}, metrics {}", options.auth_health_open ? "open" : "need a credential",
                 options.metrics_auth ? "need the metrics scope" : "open");
  }
  return absl::OkStatus();
}

}  // namespace ortserve::server
