// SPDX-License-Identifier: Apache-2.0
#include "admission/redis_lease.h"

#include <hiredis/hiredis.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>
#include <sys/time.h>

#include <algorithm>
#include <charconv>
#include <cmath>

#include "core/strings.h"

namespace ortserve::admission {
namespace {

// The shared token bucket, updated atomically in Redis (a script runs alone).
// KEYS[1]: the bucket (a hash of `tokens` and `ts`, microseconds of Redis's
// own clock, so replicas' clocks never matter). ARGV: rate (tokens a second),
// burst, tokens wanted. Returns the tokens granted (0 .. wanted).
constexpr char kLeaseScript[] = R"lua(
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
if now > ts then
  tokens = math.min(burst, tokens + (now - ts) * rate / 1000000)
  ts = now
end
local granted = math.max(0, math.min(want, math.floor(tokens)))
tokens = tokens - granted
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'ts', string.format('%d', ts))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return granted
)lua";

timeval RedisTimeout(absl::Duration d) {
  const int64_t us = std::max<int64_t>(1000, absl::ToInt64Microseconds(d));
  return timeval{static_cast<time_t>(us / 1000000), static_cast<suseconds_t>(us % 1000000)};
}

std::string Number(double value) {
  char text[64];
  const int n = std::snprintf(text, sizeof(text), "%.17g", value);
  return std::string(text, n > 0 ? static_cast<size_t>(n) : 0);
}

}  // namespace

struct RedisTokenLease::Connection {
  redisContext* context = nullptr;
  ~Connection() { Reset(); }
  void Reset() {
    if (context != nullptr) redisFree(context);
    context = nullptr;
  }
};

absl::StatusOr<std::unique_ptr<RedisTokenLease>> RedisTokenLease::Start(Options options) {
  const std::string& address = options.address;
  const size_t colon = address.rfind(':');
  int port = 0;
  std::string host;
  if (colon != std::string::npos && colon > 0) {
    host = address.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    auto [end, ec] = std::from_chars(address.data() + colon + 1, address.data() + address.size(), port);
    if (ec != std::errc() || end != address.data() + address.size()) port = 0;
  }
  if (host.empty() || port <= 0 || port > 65535) {
    return absl::InvalidArgumentError(StrCat("--rate-limit-redis: '", address, "' is not host:port"));
  }
  if (!options.spec.enabled()) {
    return absl::InvalidArgumentError("--rate-limit-redis needs --rate-limit-global RPS[:BURST]");
  }
  if (options.key.empty()) return absl::InvalidArgumentError("--rate-limit-redis-key is empty");
  auto lease = std::unique_ptr<RedisTokenLease>(new RedisTokenLease(std::move(options), std::move(host), port));
  lease->thread_ = std::thread([self = lease.get()] { self->Run(); });
  return lease;
}

RedisTokenLease::RedisTokenLease(Options options, std::string host, int port)
    : options_(std::move(options)), host_(std::move(host)), port_(port) {
  // A batch of one would make every request of a burst wait for a round
  // trip: at least 4 (or the burst), else a twentieth of a second's worth.
  const int64_t burst = std::max<int64_t>(1, static_cast<int64_t>(options_.spec.burst));
  batch_ = options_.batch > 0 ? options_.batch
                              : std::clamp<int64_t>(static_cast<int64_t>(std::ceil(options_.spec.rate / 20)),
                                                    std::min<int64_t>(4, burst), burst);
  if (options_.registry != nullptr) {
    prometheus::Registry& r = *options_.registry;
    up_gauge_ = &prometheus::BuildGauge()
                     .Name("ortserve_rate_limit_redis_up")
                     .Help("1 while the global rate limit is shared through Redis; 0 while Redis is "
                           "unreachable and the limit is enforced locally.")
                     .Register(r)
                     .Add({});
    fallback_counter_ = &prometheus::BuildCounter()
                             .Name("ortserve_rate_limit_redis_fallback_total")
                             .Help("Requests whose global rate limit was decided locally because Redis "
                                   "was unreachable.")
                             .Register(r)
                             .Add({});
    error_counter_ = &prometheus::BuildCounter()
                          .Name("ortserve_rate_limit_redis_errors_total")
                          .Help("Failed connections and commands to the rate limit's Redis server.")
                          .Register(r)
                          .Add({});
    leased_counter_ = &prometheus::BuildCounter()
                           .Name("ortserve_rate_limit_redis_leased_tokens_total")
                           .Help("Tokens of the global rate limit leased from Redis.")
                           .Register(r)
                           .Add({});
  }
}

RedisTokenLease::~RedisTokenLease() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
    wake_.Signal();
  }
  if (thread_.joinable()) thread_.join();
}

GlobalTokenSource::Result RedisTokenLease::TryTake() {
  if (!up_.load(std::memory_order_acquire)) {
    fallbacks_.fetch_add(1, std::memory_order_relaxed);
    if (fallback_counter_ != nullptr) fallback_counter_->Increment();
    return Result::kUnavailable;
  }
  int64_t tokens = tokens_.load(std::memory_order_acquire);
  while (tokens > 0) {
    if (tokens_.compare_exchange_weak(tokens, tokens - 1, std::memory_order_acq_rel, std::memory_order_acquire)) {
      if (tokens - 1 <= batch_ / 2) Wake();
      return Result::kTaken;
    }
  }
  Wake();
  return Result::kEmpty;
}

void RedisTokenLease::Refund() { tokens_.fetch_add(1, std::memory_order_acq_rel); }

void RedisTokenLease::Wake() {
  // One signal per low-water crossing: the hot path takes the lock only then.
  if (wanted_.exchange(true, std::memory_order_acq_rel)) return;
  absl::MutexLock lock(&mu_);
  wake_.Signal();
}

void RedisTokenLease::SetUp(bool up, const std::string& why) {
  const bool was = up_.exchange(up, std::memory_order_acq_rel);
  if (up_gauge_ != nullptr) up_gauge_->Set(up ? 1 : 0);
  if (!up && error_counter_ != nullptr) error_counter_->Increment();
  if (was == up) {
    // The first failure at start is an outage too: log it once.
    if (!up && !ever_down_logged_) {
      ever_down_logged_ = true;
      spdlog::warn("rate limit: Redis at {}:{} is unreachable ({}); enforcing --rate-limit-global locally until it "
                   "answers",
                   host_, port_, why);
    }
    return;
  }
  if (up) {
    spdlog::info("rate limit: Redis at {}:{} answers; the global limit is shared again", host_, port_);
    ever_down_logged_ = false;
  } else {
    // Leased tokens are dropped: the local limit decides until Redis is back.
    tokens_.store(0, std::memory_order_release);
    ever_down_logged_ = true;
    spdlog::warn("rate limit: Redis at {}:{} is unreachable ({}); enforcing --rate-limit-global locally until it "
                 "answers",
                 host_, port_, why);
  }
}

void RedisTokenLease::Run() {
  Connection connection;
  absl::Duration backoff = options_.min_backoff;
  const std::string rate = Number(options_.spec.rate);
  const std::string burst = Number(options_.spec.burst);
  // Waits `d`, or less when a request wants tokens (unless `full`).
  auto wait = [&](absl::Duration d, bool full) {
    const absl::Time until = absl::Now() + d;
    absl::MutexLock lock(&mu_);
    while (!stop_ && (full || !wanted_.load(std::memory_order_acquire))) {
      if (wake_.WaitWithDeadline(&mu_, until)) break;
    }
    return !stop_;
  };
  auto stopping = [&] {
    absl::MutexLock lock(&mu_);
    return stop_;
  };
  while (!stopping()) {
    if (connection.context == nullptr) {
      connection.context = redisConnectWithTimeout(host_.c_str(), port_, RedisTimeout(options_.timeout));
      if (connection.context == nullptr || connection.context->err != 0) {
        SetUp(false, connection.context != nullptr ? connection.context->errstr : "out of memory");
        connection.Reset();
        // Not woken by requests while down: they are decided locally.
        if (!wait(backoff, /*full=*/true)) break;
        backoff = std::min(backoff * 2, options_.max_backoff);
        continue;
      }
      redisSetTimeout(connection.context, RedisTimeout(options_.timeout));
    }
    bool starved = false;
    const int64_t held = tokens_.load(std::memory_order_acquire);
    const int64_t want = batch_ - held;
    wanted_.store(false, std::memory_order_release);
    if (want > 0 && (held <= batch_ / 2 || !up())) {
      const std::string wanted = std::to_string(want);
      const char* argv[] = {"EVAL", kLeaseScript, "1", options_.key.c_str(), rate.c_str(), burst.c_str(),
                            wanted.c_str()};
      const size_t lengths[] = {4, sizeof(kLeaseScript) - 1, 1, options_.key.size(), rate.size(), burst.size(),
                                wanted.size()};
      auto* reply = static_cast<redisReply*>(redisCommandArgv(connection.context, 7, argv, lengths));
      if (reply == nullptr || reply->type != REDIS_REPLY_INTEGER) {
        std::string why = reply == nullptr ? std::string(connection.context->errstr)
                          : reply->type == REDIS_REPLY_ERROR ? std::string(reply->str, reply->len)
                                                             : "unexpected reply";
        if (reply != nullptr) freeReplyObject(reply);
        SetUp(false, why);
        connection.Reset();
        continue;
      }
      const int64_t granted = std::clamp<int64_t>(reply->integer, 0, want);
      freeReplyObject(reply);
      if (!up()) tokens_.store(0, std::memory_order_release);
      tokens_.fetch_add(granted, std::memory_order_acq_rel);
      leased_total_.fetch_add(static_cast<uint64_t>(granted), std::memory_order_relaxed);
      if (leased_counter_ != nullptr) leased_counter_->Increment(static_cast<double>(granted));
      SetUp(true, "");
      backoff = options_.min_backoff;
      // Empty in Redis: ask again after the poll interval, not at once.
      starved = granted == 0;
    }
    if (!wait(options_.poll, starved)) break;
  }
}

}  // namespace ortserve::admission
