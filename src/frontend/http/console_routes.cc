// SPDX-License-Identifier: Apache-2.0
// Connection: the live console (docs/console.md): its static page, compiled
// into the binary, and its snapshot, built by console::Console at most once
// per sample and shared by every page.
#include <charconv>

#include "boost/url/parse_query.hpp"
#include "console/assets.h"
#include "console/console.h"
#include "core/strings.h"
#include "frontend/http/connection.h"
#include "observability/logging.h"

namespace ortserve::frontend {
namespace {

// The page loads nothing but its own files and its own snapshot; no
// inline script or style, no framing.
constexpr std::string_view kPagePolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

// `since` of "?since=N": the last sample the page holds; -1 when absent.
absl::StatusOr<int64_t> SinceOf(std::string_view query) {
  if (query.empty()) return -1;
  // Debian's libboost_url 1.81 reads its argument up to a NUL: parse a
  // terminated copy (see admin_routes.cc).
  const std::string terminated(query);
  auto params = boost::urls::parse_query(terminated);
  if (!params) return absl::InvalidArgumentError(StrCat("malformed query string '", query, "'"));
  int64_t since = -1;
  for (const auto param : *params) {
    if (param.key.decode() != "since") continue;
    const std::string value = param.has_value ? param.value.decode() : std::string();
    int64_t parsed = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), parsed);
    if (value.empty() || ec != std::errc() || end != value.data() + value.size() || parsed < -1) {
      return absl::InvalidArgumentError(
          StrCat("console parameter 'since' must be a sample number (-1 or more), not '", value.substr(0, 64), "'"));
    }
    since = parsed;
  }
  return since;
}

}  // namespace

void Connection::Console(RouteId id, std::string_view query) {
  console::Console* live = options_.console;
  const std::string_view target(parser_->get().target().data(), parser_->get().target().size());
  if (live == nullptr) return Send(Error(404, StrCat("no such endpoint: ", target, " (the console is off: --console)")));
  if (id != RouteId::kConsoleSnapshot) {
    const std::string_view name = id == RouteId::kConsole         ? "console.html"
                                  : id == RouteId::kConsoleScript ? "console.js"
                                                                  : "console.css";
    const console::Asset* asset = console::FindAsset(name);
    if (asset == nullptr) return Send(Error(404, StrCat("no such endpoint: ", target)));
    const auto if_none_match = parser_->get()[boost::beast::http::field::if_none_match];
    Reply reply;
    if (std::string_view(if_none_match.data(), if_none_match.size()) == asset->etag) {
      reply = Reply{304, asset->content_type, ""};
    } else {
      reply = Reply{200, asset->content_type, std::string(asset->body)};
    }
    reply.headers.emplace_back("ETag", std::string(asset->etag));
    reply.headers.emplace_back("Cache-Control", "no-cache");
    reply.headers.emplace_back("X-Content-Type-Options", "nosniff");
    if (id == RouteId::kConsole) {
      reply.headers.emplace_back("Content-Security-Policy", std::string(kPagePolicy));
      reply.headers.emplace_back("Referrer-Policy", "no-referrer");
      reply.headers.emplace_back("X-Frame-Options", "DENY");
    }
    return Send(std::move(reply));
  }
  auto since = SinceOf(query);
  if (!since.ok()) return Send(Error(since.status()));
  const admission::Identity& who = identity_ ? *identity_ : *admission::AnonymousIdentity();
  // What the page may offer: load and unload of the models the credential
  // may control; log settings with the admin scope (which the snapshot
  // itself needs once authentication is on).
  std::vector<std::string> control;
  if (who.scopes.Has(admission::Scope::kModelControl)) {
    if (who.models.AllowsAll()) {
      control.emplace_back("*");
    } else {
      control = who.models.patterns();
    }
  }
  const bool log_settings =
      who.scopes.Has(admission::Scope::kAdmin) && options_.service->telemetry().logging != nullptr;
  const std::shared_ptr<const std::string> snapshot = live->Snapshot(*since);
  std::string body;
  body.reserve(snapshot->size() + 160);
  body.append("{\"caller\":")
      .append(console::Console::CallerJson(who.id, admission::KindName(who.kind), log_settings, control))
      .append(",\"snapshot\":")
      .append(*snapshot)
      .push_back('}');
  Reply reply = Ok(std::move(body));
  reply.headers.emplace_back("Cache-Control", "no-store");
  reply.headers.emplace_back("X-Content-Type-Options", "nosniff");
  Send(std::move(reply));
}

}  // namespace ortserve::frontend
