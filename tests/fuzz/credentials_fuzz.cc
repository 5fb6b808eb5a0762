// SPDX-License-Identifier: Apache-2.0
// libFuzzer entry point for what admission reads from clients and key files.
// The first byte picks the reader: 'k' an API key file, 'j' a JWT key set,
// 't' a bearer token (verified against a fixed HS256 key and clock), 'a' an
// Authorization header value. Every input either parses or is refused with a
// message, and a refused token is never repeated in its message.
#include <stdlib.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "admission/api_keys.h"
#include "admission/authenticator.h"
#include "admission/jwt.h"
#include "core/strings.h"

namespace {

using namespace ortserve::admission;  // NOLINT: a fuzz target.

void Check(bool condition) {
  if (!condition) __builtin_trap();
}

class FixedClock final : public ortserve::Clock {
 public:
  absl::Time Now() const override { return absl::FromUnixSeconds(1750000000); }
};

// 'fuzz-secret-0123456789abcdefghijklmnop' as kid "h1" (the seeds are signed with it).
constexpr char kJwks[] =
    R"({"keys":[{"kty":"oct","kid":"h1","alg":"HS256","k":"ZnV6ei1zZWNyZXQtMDEyMzQ1Njc4OWFiY2RlZmdoaWprbG1ub3A"}]})";

Authenticator& TheAuthenticator() {
  static Authenticator* authenticator = [] {
    static FixedClock clock;
    char path[] = "/tmp/ortserve-credentials-fuzz-XXXXXX";
    const int fd = ::mkstemp(path);
    Check(fd >= 0);
    Check(::write(fd, kJwks, sizeof(kJwks) - 1) == static_cast<ssize_t>(sizeof(kJwks) - 1));
    ::close(fd);
    auto jwt = JwtVerifier::Create({.keys_path = path,
                                    .issuers = {"https://idp.example"},
                                    .audiences = {"ortserve"},
                                    .max_token_bytes = 4096,
                                    .clock = &clock});
    ::unlink(path);  // Read once at creation; later checks keep it (reported, not fatal).
    Check(jwt.ok());
    auto auth = Authenticator::Create({.enabled = true, .jwt = *std::move(jwt)});
    Check(auth.ok());
    return auth->release();
  }();
  return *authenticator;
}

// The input with every letter and digit changed (and nothing else, so it
// takes the same path through the parsers); an Authorization header keeps
// its scheme word ("Bearer", "Basic": the path depends on it).
std::string Mutated(std::string_view input, bool keep_scheme) {
  std::string out(input);
  size_t from = 0;
  if (keep_scheme) {
    while (from < out.size() && (out[from] == ' ' || out[from] == '\t')) ++from;
    while (from < out.size() && out[from] != ' ' && out[from] != '\t') ++from;
  }
  for (char& c : std::span(out).subspan(from)) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>('a' + (c - 'a' + 1) % 26);
    else if (c >= 'A' && c <= 'Z') c = static_cast<char>('A' + (c - 'A' + 1) % 26);
    else if (c >= '0' && c <= '9') c = static_cast<char>('0' + (c - '0' + 1) % 10);
  }
  return out;
}

// A refusal has a message, and the message does not repeat the credential.
// An input that is itself a piece of the message's fixed text (the fuzzer
// finds "bearer token holds a sp") is not a leak: the message for the same
// input with its letters changed is then the same text.
void CheckRefusal(const absl::Status& status, std::string_view input,
                  absl::Status (*refuse)(std::string_view), bool keep_scheme) {
  Check(!status.message().empty());
  if (input.size() < 24 || ortserve::ToStd(status.message()).find(input) == std::string_view::npos) return;
  const absl::Status other = refuse(Mutated(input, keep_scheme));
  Check(other.message() == status.message());
}

absl::Status RefuseBearer(std::string_view token) {
  return TheAuthenticator().Authenticate({.authorization = "Bearer " + std::string(token)}).status();
}

absl::Status RefuseHeader(std::string_view header) {
  return TheAuthenticator().Authenticate({.authorization = std::string(header)}).status();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0]) {
    case 'k': {
      auto set = ApiKeySet::Parse(text);
      if (!set.ok()) Check(set.status().code() == absl::StatusCode::kInvalidArgument && !set.status().message().empty());
      break;
    }
    case 'j': {
      auto set = JwtKeySet::Parse(text);
      if (!set.ok()) Check(set.status().code() == absl::StatusCode::kInvalidArgument && !set.status().message().empty());
      if (set.ok()) Check((*set)->size() > 0);
      break;
    }
    case 't': {
      auto identity = TheAuthenticator().Authenticate({.authorization = "Bearer " + std::string(text)});
      if (identity.ok()) {
        Check((*identity)->kind == Identity::Kind::kJwt && !(*identity)->id.empty());
      } else {
        Check(identity.status().code() == absl::StatusCode::kUnauthenticated);
        CheckRefusal(identity.status(), text, RefuseBearer, /*keep_scheme=*/false);
      }
      break;
    }
    case 'a': {
      auto identity = TheAuthenticator().Authenticate({.authorization = text});
      if (!identity.ok()) {
        Check(identity.status().code() == absl::StatusCode::kUnauthenticated);
        CheckRefusal(identity.status(), text, RefuseHeader, /*keep_scheme=*/true);
      }
      break;
    }
    default:
      break;
  }
  return 0;
}
