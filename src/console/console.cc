// SPDX-License-Identifier: Apache-2.0
#include "console/console.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <map>
#include <utility>

#include "core/json_writer.h"
#include "core/strings.h"

namespace ortserve::console {
namespace {

constexpr float kNoValue = std::numeric_limits<float>::quiet_NaN();

// A series point: 4 significant digits are plenty for a plot and keep the
// document small; missing values are null (a gap in the plot).
void WritePoint(JsonWriter& writer, float value) {
  if (!std::isfinite(value)) {
    writer.Null();
    return;
  }
  writer.BeginRaw(rapidjson::kNumberType);
  char digits[32];
  const auto end = std::to_chars(digits, digits + sizeof(digits), value, std::chars_format::general, 4).ptr;
  writer.output()->append(digits, end);
}

// A table value: full precision; NaN and infinities are null.
void WriteNumber(JsonWriter& writer, double value) {
  if (!std::isfinite(value)) {
    writer.Null();
  } else if (value == std::floor(value) && std::fabs(value) < 9e15) {
    writer.Int64(static_cast<int64_t>(value));
  } else {
    writer.Double(value);
  }
}

// `part` / `whole`, or NaN when `whole` is not positive.
double Ratio(double part, double whole) {
  return whole > 0 ? part / whole : std::numeric_limits<double>::quiet_NaN();
}

double NonNegative(double delta) { return delta > 0 ? delta : 0; }

const ModelCounters kNoCounters{};

const ModelCounters& CountersOf(const Scrape& scrape, const std::string& model) {
  auto it = scrape.models.find(model);
  return it == scrape.models.end() ? kNoCounters : it->second;
}

}  // namespace

// The per-second values of one model: rings of Options::history points,
// indexed by sample number modulo history.
struct Console::ModelSeries {
  explicit ModelSeries(size_t history)
      : rps(history, kNoValue),
        error_rate(history, kNoValue),
        p50_ms(history, kNoValue),
        p99_ms(history, kNoValue),
        queue_p50_ms(history, kNoValue),
        queue_p99_ms(history, kNoValue),
        pending(history, kNoValue) {}
  std::vector<float> rps, error_rate, p50_ms, p99_ms, queue_p50_ms, queue_p99_ms, pending;
  int64_t last_seen = 0;  // The last sample that had the model.
};

struct Console::State {
  explicit State(size_t history)
      : times_ms(history, 0),
        cpu(history, kNoValue),
        rss(history, kNoValue),
        connections(history, kNoValue),
        sae_per_minute(history, kNoValue) {}
  int64_t seq = -1;  // The latest sample's number.
  std::vector<int64_t> times_ms;
  std::vector<float> cpu, rss, connections, sae_per_minute;
  std::map<std::string, ModelSeries> models;
  // The last window + 1 samples' counters, oldest first; only the latest
  // keeps its latency and queue histograms (the next sample's deltas).
  std::deque<std::pair<absl::Time, Scrape>> window;
  std::vector<ModelInfo> infos;
  ServerInfo server;
  absl::Time now;
};

Console::Console(Options options) : options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<Console>> Console::Create(Options options) {
  if (options.sources == nullptr) return absl::InvalidArgumentError("the console needs its sources");
  if (options.interval <= absl::ZeroDuration() || options.history == 0 || options.window == 0) {
    return absl::InvalidArgumentError("the console's interval, history and window must be positive");
  }
  if (options.clock == nullptr) options.clock = Clock::Real();
  std::unique_ptr<Console> console(new Console(std::move(options)));
  {
    absl::MutexLock lock(&console->mu_);
    console->state_ = std::make_unique<State>(console->options_.history);
  }
  return console;
}

void Console::StartSampling() {
  if (sampler_.joinable()) return;
  SampleNow();  // The page has its tables from the first request on.
  sampler_ = std::thread([this] { Run(); });
}

Console::~Console() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (sampler_.joinable()) sampler_.join();
}

void Console::Run() {
  // On a fixed schedule, so that a slow sample does not stretch the next
  // interval (a minute of samples stays a minute).
  absl::Time next = absl::Now() + options_.interval;
  while (!stop_.WaitForNotificationWithDeadline(next)) {
    SampleNow();
    next += options_.interval;
    const absl::Time now = absl::Now();
    if (next <= now) next = now + options_.interval;  // Fell behind (a stalled machine): skip, never burst.
  }
}

int64_t Console::samples() const {
  absl::MutexLock lock(&mu_);
  return state_->seq + 1;
}

void Console::SampleNow() {
  // Read the sources first, without the lock: the page's requests never wait
  // on a registry collection or a repository listing.
  const absl::Time now = options_.clock->Now();
  Scrape scrape = ReadScrape(options_.sources->CollectMetrics(), options_.max_models);
  std::vector<ModelInfo> infos = options_.sources->Models();
  ServerInfo server = options_.sources->Server();

  absl::MutexLock lock(&mu_);
  State& s = *state_;
  const int64_t seq = ++s.seq;
  const size_t slot = static_cast<size_t>(seq) % options_.history;
  s.times_ms[slot] = absl::ToUnixMillis(now);
  const bool have_previous = !s.window.empty();
  const Scrape* previous = have_previous ? &s.window.back().second : nullptr;
  const double dt = have_previous ? absl::ToDoubleSeconds(now - s.window.back().first) : 0;
  const bool rates = have_previous && dt > 0;

  // Server series.
  s.cpu[slot] = rates ? static_cast<float>(NonNegative(scrape.server.cpu_seconds - previous->server.cpu_seconds) / dt)
                      : kNoValue;
  s.rss[slot] = static_cast<float>(scrape.server.resident_bytes);
  s.connections[slot] = server.open_connections >= 0 ? static_cast<float>(server.open_connections) : kNoValue;

  // Model series: every model with counters (up to max_models), plus models
  // the repository lists that have had no traffic yet (flat zero lines).
  for (const ModelInfo& info : infos) {
    if (s.models.size() >= options_.max_models) break;
    if (!s.models.contains(info.name)) s.models.emplace(info.name, ModelSeries(options_.history));
  }
  for (const auto& [name, counters] : scrape.models) {
    if (!s.models.contains(name) && s.models.size() < options_.max_models) {
      s.models.emplace(name, ModelSeries(options_.history));
    }
  }
  for (auto it = s.models.begin(); it != s.models.end();) {
    const std::string& name = it->first;
    ModelSeries& series = it->second;
    const auto now_it = scrape.models.find(name);
    const bool listed = std::any_of(infos.begin(), infos.end(), [&](const ModelInfo& i) { return i.name == name; });
    if (now_it == scrape.models.end() && !listed) {
      // Gone from the repository and from the metrics: kept (as gaps) until
      // its points have left the ring.
      if (seq - series.last_seen >= static_cast<int64_t>(options_.history)) {
        it = s.models.erase(it);
        continue;
      }
      for (auto* ring : {&series.rps, &series.error_rate, &series.p50_ms, &series.p99_ms, &series.queue_p50_ms,
                         &series.queue_p99_ms, &series.pending}) {
        (*ring)[slot] = kNoValue;
      }
      ++it;
      continue;
    }
    series.last_seen = seq;
    const ModelCounters& c = now_it == scrape.models.end() ? kNoCounters : now_it->second;
    const ModelCounters& p = previous != nullptr ? CountersOf(*previous, name) : kNoCounters;
    float rps = kNoValue, error_rate = kNoValue, p50 = kNoValue, p99 = kNoValue, q50 = kNoValue, q99 = kNoValue;
    if (rates) {
      const double requests = NonNegative(c.requests - p.requests);
      rps = static_cast<float>(requests / dt);
      if (requests > 0) error_rate = static_cast<float>(std::min(1.0, NonNegative(c.errors - p.errors) / requests));
      const Histogram latency = Delta(c.latency, p.latency);
      p50 = static_cast<float>(Quantile(latency, 0.5) * 1e3);
      p99 = static_cast<float>(Quantile(latency, 0.99) * 1e3);
      const Histogram queue = Delta(c.queue, p.queue);
      q50 = static_cast<float>(Quantile(queue, 0.5) * 1e3);
      q99 = static_cast<float>(Quantile(queue, 0.99) * 1e3);
    }
    series.rps[slot] = rps;
    series.error_rate[slot] = error_rate;
    series.p50_ms[slot] = p50;
    series.p99_ms[slot] = p99;
    series.queue_p50_ms[slot] = q50;
    series.queue_p99_ms[slot] = q99;
    series.pending[slot] = static_cast<float>(c.pending);
    ++it;
  }

  // The window: drop what is older than `window` seconds' samples.
  if (!s.window.empty()) {
    for (auto& [model, counters] : s.window.back().second.models) {
      counters.latency = Histogram();
      counters.queue = Histogram();
    }
  }
  s.window.emplace_back(now, std::move(scrape));
  while (s.window.size() > options_.window + 1) s.window.pop_front();

  // SAE verdicts per minute over the window, from every model that gave any.
  float sae_per_minute = kNoValue;
  if (s.window.size() >= 2) {
    const auto& [t0, first] = s.window.front();
    const auto& [t1, last] = s.window.back();
    const double span = absl::ToDoubleSeconds(t1 - t0);
    double verdicts = 0;
    bool any = false;
    for (const auto& [name, counters] : last.models) {
      const ModelCounters& before = CountersOf(first, name);
      for (size_t v = 0; v < counters.sae.size(); ++v) {
        if (counters.sae[v] > 0) any = true;
        verdicts += NonNegative(counters.sae[v] - before.sae[v]);
      }
    }
    if ((any || !server.sae_model.empty()) && span > 0) sae_per_minute = static_cast<float>(verdicts * 60 / span);
  }
  s.sae_per_minute[slot] = sae_per_minute;

  s.infos = std::move(infos);
  s.server = std::move(server);
  s.now = now;
}

std::shared_ptr<const std::string> Console::Snapshot(int64_t since) {
  absl::MutexLock lock(&mu_);
  const State& s = *state_;
  if (cached_seq_ != s.seq) {
    cached_seq_ = s.seq;
    cached_full_.reset();
    cached_delta_.reset();
    cached_unchanged_.reset();
  }
  if (s.seq >= 0 && since == s.seq) {
    if (!cached_unchanged_) cached_unchanged_ = std::make_shared<const std::string>(BuildJson(false, true));
    return cached_unchanged_;
  }
  if (s.seq >= 1 && since == s.seq - 1) {
    if (!cached_delta_) cached_delta_ = std::make_shared<const std::string>(BuildJson(false, false));
    return cached_delta_;
  }
  if (!cached_full_) cached_full_ = std::make_shared<const std::string>(BuildJson(true, false));
  return cached_full_;
}

std::string Console::BuildJson(bool full, bool unchanged) const {
  const State& s = *state_;
  std::string out;
  out.reserve(full ? 65536 : 8192);
  JsonStringStream stream(&out);
  JsonWriter w(stream);
  w.StartObject();
  w.Key("seq");
  w.Int64(s.seq);
  if (unchanged) {
    w.Key("unchanged");
    w.Bool(true);
    w.EndObject();
    return out;
  }
  w.Key("time");
  w.Int64(s.seq >= 0 ? absl::ToUnixMillis(s.now) : 0);
  w.Key("intervalMs");
  w.Int64(absl::ToInt64Milliseconds(options_.interval));
  w.Key("history");
  w.Uint64(options_.history);

  // The window's first and last counters.
  const Scrape* first = s.window.empty() ? nullptr : &s.window.front().second;
  const Scrape* last = s.window.empty() ? nullptr : &s.window.back().second;
  const double span = s.window.size() >= 2 ? absl::ToDoubleSeconds(s.window.back().first - s.window.front().first) : 0;
  w.Key("windowSeconds");
  WriteNumber(w, std::round(span));

  // --- server ---
  w.Key("server");
  w.StartObject();
  const ServerCounters& sc = last != nullptr ? last->server : ServerCounters();
  w.Key("version");
  w.String(sc.version);
  w.Key("commit");
  w.String(sc.commit);
  w.Key("onnxruntime");
  w.String(sc.onnxruntime);
  w.Key("ready");
  w.Bool(s.server.ready);
  w.Key("controlMode");
  w.String(s.server.control_mode);
  w.Key("uptimeSeconds");
  WriteNumber(w, std::isfinite(sc.start_time_seconds) && s.seq >= 0
                     ? std::max(0.0, std::floor(absl::ToDoubleSeconds(s.now - absl::UnixEpoch()) - sc.start_time_seconds))
                     : std::numeric_limits<double>::quiet_NaN());
  const size_t slot = s.seq >= 0 ? static_cast<size_t>(s.seq) % options_.history : 0;
  w.Key("cpuCores");
  WriteNumber(w, s.seq >= 0 ? std::round(s.cpu[slot] * 1000) / 1000 : std::numeric_limits<double>::quiet_NaN());
  w.Key("residentBytes");
  WriteNumber(w, sc.resident_bytes);
  w.Key("openConnections");
  WriteNumber(w, s.server.open_connections >= 0 ? static_cast<double>(s.server.open_connections)
                                                : std::numeric_limits<double>::quiet_NaN());
  w.Key("openFds");
  WriteNumber(w, sc.open_fds);
  w.Key("threads");
  WriteNumber(w, sc.threads);
  w.Key("gpus");
  w.StartArray();
  for (const GpuSample& gpu : sc.gpus) {
    w.StartObject();
    w.Key("gpu");
    w.String(gpu.gpu);
    w.Key("utilization");
    WriteNumber(w, gpu.utilization);
    w.Key("memoryUsedBytes");
    WriteNumber(w, gpu.memory_used);
    w.Key("memoryTotalBytes");
    WriteNumber(w, gpu.memory_total);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();

  // --- models ---
  w.Key("models");
  w.StartArray();
  for (const ModelInfo& info : s.infos) {
    const ModelCounters& now = last != nullptr ? CountersOf(*last, info.name) : kNoCounters;
    const ModelCounters& then = first != nullptr ? CountersOf(*first, info.name) : kNoCounters;
    w.StartObject();
    w.Key("name");
    w.String(info.name);
    w.Key("lastError");
    w.String(info.last_error);
    w.Key("maxBatchSize");
    w.Int(info.max_batch_size);
    w.Key("plotted");
    w.Bool(s.models.contains(info.name));
    w.Key("pending");
    WriteNumber(w, now.pending);
    w.Key("versions");
    w.StartArray();
    for (const VersionInfo& version : info.versions) {
      w.StartObject();
      w.Key("version");
      w.String(version.version);
      w.Key("state");
      w.String(version.state);
      w.Key("reason");
      w.String(version.reason);
      w.Key("loadSeconds");
      auto load = now.load_seconds.find(version.version);
      WriteNumber(w, load != now.load_seconds.end() && version.state == "READY"
                         ? load->second
                         : std::numeric_limits<double>::quiet_NaN());
      w.Key("instances");
      w.Int(version.instances);
      w.Key("devices");
      w.String(version.devices);
      w.Key("memoryBytes");
      w.Uint64(version.memory_bytes);
      w.EndObject();
    }
    w.EndArray();

    // Window counts: requests, errors, batch sizes, routing.
    const double requests = NonNegative(now.requests - then.requests);
    w.Key("requests");
    WriteNumber(w, requests);
    w.Key("errorRate");
    WriteNumber(w, Ratio(NonNegative(now.errors - then.errors), requests));
    w.Key("batchSizes");
    w.StartObject();
    {
      const Histogram batches = Delta(now.batch, then.batch);
      w.Key("le");
      w.StartArray();
      for (double bound : batches.bounds) {
        if (std::isinf(bound)) {
          w.String("+Inf");
        } else {
          WriteNumber(w, bound);
        }
      }
      w.EndArray();
      w.Key("counts");
      w.StartArray();
      uint64_t below = 0;
      for (uint64_t cumulative : batches.cumulative) {
        w.Uint64(cumulative - below);
        below = cumulative;
      }
      w.EndArray();
    }
    w.EndObject();

    w.Key("routing");
    w.StartObject();
    {
      w.Key("split");
      w.StartArray();
      double total_weight = 0;
      for (const auto& split : info.routing.split) total_weight += split.weight;
      for (const auto& split : info.routing.split) {
        w.StartObject();
        w.Key("version");
        w.String(split.version);
        w.Key("weight");
        WriteNumber(w, Ratio(split.weight, total_weight));
        w.EndObject();
      }
      w.EndArray();
      // The share each version got over the window (all routing reasons).
      double routed_total = 0;
      std::map<std::string, double> routed;
      for (const auto& [version, count] : now.routed) {
        auto before = then.routed.find(version);
        const double delta = NonNegative(count - (before == then.routed.end() ? 0 : before->second));
        routed[version] = delta;
        routed_total += delta;
      }
      w.Key("shares");
      w.StartArray();
      for (const auto& [version, count] : routed) {
        w.StartObject();
        w.Key("version");
        w.String(version);
        w.Key("requests");
        WriteNumber(w, count);
        w.Key("share");
        WriteNumber(w, Ratio(count, routed_total));
        w.EndObject();
      }
      w.EndArray();
      w.Key("shadow");
      if (info.routing.shadow_target.empty() && now.shadow_target.empty()) {
        w.Null();
      } else {
        w.StartObject();
        w.Key("target");
        w.String(info.routing.shadow_target.empty() ? now.shadow_target : info.routing.shadow_target);
        w.Key("fraction");
        WriteNumber(w, info.routing.shadow_fraction);
        w.Key("compared");
        WriteNumber(w, NonNegative(now.shadow_compared - then.shadow_compared));
        w.Key("dropped");
        WriteNumber(w, NonNegative(now.shadow_dropped - then.shadow_dropped));
        w.Key("failed");
        WriteNumber(w, NonNegative(now.shadow_failed - then.shadow_failed));
        w.Key("agreement");
        WriteNumber(w, Ratio(NonNegative(now.shadow_agreements - then.shadow_agreements),
                             NonNegative(now.shadow_rows - then.shadow_rows)));
        w.EndObject();
      }
      w.Key("fallback");
      w.String(info.routing.fallback);
      w.Key("fallbackAnswers");
      WriteNumber(w, NonNegative(now.fallbacks - then.fallbacks));
      w.Key("cache");
      w.Bool(info.routing.cache);
      const double hits = NonNegative(now.cache_hits - then.cache_hits);
      const double lookups = hits + NonNegative(now.cache_misses - then.cache_misses);
      w.Key("cacheLookups");
      WriteNumber(w, lookups);
      w.Key("cacheHitRatio");
      WriteNumber(w, Ratio(hits, lookups));
    }
    w.EndObject();
    w.EndObject();
  }
  w.EndArray();

  // --- SAE ---
  w.Key("sae");
  if (s.server.sae_model.empty()) {
    w.Null();
  } else {
    std::array<double, 3> verdicts{};
    if (last != nullptr) {
      for (const auto& [name, counters] : last->models) {
        const ModelCounters& before = first != nullptr ? CountersOf(*first, name) : kNoCounters;
        for (size_t v = 0; v < verdicts.size(); ++v) verdicts[v] += NonNegative(counters.sae[v] - before.sae[v]);
      }
    }
    const double total = verdicts[0] + verdicts[1] + verdicts[2];
    w.StartObject();
    w.Key("model");
    w.String(s.server.sae_model);
    w.Key("verdicts");
    WriteNumber(w, total);
    w.Key("serious");
    WriteNumber(w, verdicts[kSerious]);
    w.Key("review");
    WriteNumber(w, verdicts[kReview]);
    w.Key("perMinute");
    WriteNumber(w, span > 0 ? total * 60 / span : std::numeric_limits<double>::quiet_NaN());
    w.Key("seriousShare");
    WriteNumber(w, Ratio(verdicts[kSerious], total));
    w.Key("reviewShare");
    WriteNumber(w, Ratio(verdicts[kReview], total));
    w.EndObject();
  }

  // --- series: every point in the ring (full), or the latest one ---
  const int64_t count = std::min<int64_t>(s.seq + 1, static_cast<int64_t>(options_.history));
  const int64_t from = full ? s.seq + 1 - count : s.seq;
  w.Key("series");
  w.StartObject();
  w.Key("full");
  w.Bool(full);
  w.Key("from");
  w.Int64(from);
  auto ring = [&](std::string_view key, const std::vector<float>& values) {
    w.Key(key);
    w.StartArray();
    for (int64_t i = from; i <= s.seq; ++i) WritePoint(w, values[static_cast<size_t>(i) % options_.history]);
    w.EndArray();
  };
  w.Key("t");
  w.StartArray();
  for (int64_t i = from; i <= s.seq; ++i) w.Int64(s.times_ms[static_cast<size_t>(i) % options_.history]);
  w.EndArray();
  ring("cpu", s.cpu);
  ring("rss", s.rss);
  ring("connections", s.connections);
  ring("saePerMinute", s.sae_per_minute);
  w.Key("models");
  w.StartObject();
  for (const auto& [name, series] : s.models) {
    w.Key(name);
    w.StartObject();
    ring("rps", series.rps);
    ring("errorRate", series.error_rate);
    ring("p50", series.p50_ms);
    ring("p99", series.p99_ms);
    ring("queueP50", series.queue_p50_ms);
    ring("queueP99", series.queue_p99_ms);
    ring("pending", series.pending);
    w.EndObject();
  }
  w.EndObject();
  w.EndObject();
  w.EndObject();
  return out;
}

std::string Console::CallerJson(std::string_view id, std::string_view kind, bool can_set_log_level,
                                const std::vector<std::string>& control_models) {
  std::string out;
  JsonStringStream stream(&out);
  JsonWriter w(stream);
  w.StartObject();
  w.Key("id");
  w.String(id);
  w.Key("kind");
  w.String(kind);
  w.Key("canSetLogLevel");
  w.Bool(can_set_log_level);
  w.Key("controlModels");
  w.StartArray();
  for (const std::string& pattern : control_models) w.String(pattern);
  w.EndArray();
  w.EndObject();
  return out;
}

}  // namespace ortserve::console
