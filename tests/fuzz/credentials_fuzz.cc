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

void CheckRefusal(const absl::Status& status, std::string_view input) {
  Check(!status.message().empty());
  if (input.size() >= 24) Check(ortserve::ToStd(status.message()).find(input) == std::string_view::npos);
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
        CheckRefusal(identity.status(), text);
      }
      break;
    }
    case 'a': {
      auto identity = TheAuthenticator().Authenticate({.authorization = text});
      if (!identity.ok()) {
        Check(identity.status().code() == absl::StatusCode::kUnauthenticated);
        CheckRefusal(identity.status(), text);
      }
      break;
    }
    default:
      break;
  }
  return 0;
}
