// SPDX-License-Identifier: Apache-2.0
#include "observability/trace_settings.h"

#include <charconv>
#include <cmath>

#include "core/strings.h"

namespace ortserve::observability {
namespace {

constexpr int64_t kDefaultRate = 1000;  // Triton's default trace_rate.

absl::StatusOr<int64_t> ParseInteger(std::string_view setting, const TraceSettings::Values& values, int64_t min) {
  if (values.size() != 1) return absl::InvalidArgumentError(StrCat("trace setting '", setting, "' takes one value"));
  const std::string& text = values[0];
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < min) {
    return absl::InvalidArgumentError(
        StrCat("trace setting '", setting, "' must be an integer of at least ", min, ", not '", text, "'"));
  }
  return value;
}

}  // namespace

TraceSettings::TraceSettings(double ratio) : start_ratio_(ratio) {
  absl::MutexLock lock(&mu_);
  Publish();
}

absl::Status TraceSettings::Apply(const Updates& updates, Fields* fields) {
  Fields next = *fields;
  for (const auto& [key, values] : updates) {
    if (key == "trace_level") {
      if (!values) {
        next.on.reset();
        continue;
      }
      bool on = false;
      for (const std::string& level : *values) {
        if (level == "OFF") continue;
        if (level == "TIMESTAMPS") {
          on = true;
          continue;
        }
        return absl::InvalidArgumentError(
            StrCat("trace_level '", level, "' is not supported: use OFF or TIMESTAMPS (spans carry timings, not tensors)"));
      }
      next.on = on;
    } else if (key == "trace_rate" || key == "trace_count" || key == "log_frequency") {
      std::optional<int64_t>& field =
          key == "trace_rate" ? next.rate : key == "trace_count" ? next.count : next.log_frequency;
      if (!values) {
        field.reset();
        continue;
      }
      auto value = ParseInteger(key, *values, key == "trace_rate" ? 1 : key == "trace_count" ? -1 : 0);
      if (!value.ok()) return value.status();
      field = *value;
    } else if (key == "trace_file") {
      if (values && !(values->empty() || (values->size() == 1 && (*values)[0].empty()))) {
        return absl::InvalidArgumentError(
            "trace_file cannot be set: ortserve exports spans to the OTLP collector (--otlp-endpoint)");
      }
    } else if (key == "trace_mode") {
      if (values && !(values->size() == 1 && (*values)[0] == "opentelemetry")) {
        return absl::InvalidArgumentError("trace_mode must be 'opentelemetry': ortserve exports OTLP spans");
      }
    } else {
      return absl::InvalidArgumentError(StrCat("unknown trace setting '", key, "'"));
    }
  }
  *fields = next;
  return absl::OkStatus();
}

void TraceSettings::Publish() {
  // Start-up: on with --trace-sampling-ratio > 0, at that exact ratio until
  // a rate is set.
  const bool on = global_.on.value_or(start_ratio_ > 0);
  const double ratio = global_.rate ? 1.0 / static_cast<double>(*global_.rate) : start_ratio_;
  on_.store(on, std::memory_order_release);
  ratio_.store(ratio, std::memory_order_release);
  any_model_.store(!models_.empty(), std::memory_order_release);
}

TraceSettings::Map TraceSettings::Render(const Fields& fields) const {
  const bool on = fields.on.value_or(global_.on.value_or(start_ratio_ > 0));
  int64_t rate = kDefaultRate;
  if (fields.rate) {
    rate = *fields.rate;
  } else if (global_.rate) {
    rate = *global_.rate;
  } else if (start_ratio_ > 0) {
    rate = std::max<int64_t>(1, std::llround(1.0 / start_ratio_));
  }
  const int64_t count = fields.count.value_or(global_.count.value_or(-1));
  const int64_t log_frequency = fields.log_frequency.value_or(global_.log_frequency.value_or(0));
  return Map{{"trace_level", {on ? "TIMESTAMPS" : "OFF"}},
             {"trace_rate", {std::to_string(rate)}},
             {"trace_count", {std::to_string(count)}},
             {"log_frequency", {std::to_string(log_frequency)}},
             {"trace_file", {""}},
             {"trace_mode", {"opentelemetry"}}};
}

bool TraceSettings::TakeOne(std::atomic<int64_t>& count) {
  int64_t left = count.load(std::memory_order_acquire);
  while (true) {
    if (left < 0) return true;
    if (left == 0) return false;
    if (count.compare_exchange_weak(left, left - 1, std::memory_order_acq_rel)) return true;
  }
}

bool TraceSettings::SampleRoot(std::string_view model, double (*uniform)()) {
  if (!model.empty() && HasModelSettings()) {
    absl::MutexLock lock(&mu_);
    if (auto it = models_.find(model); it != models_.end()) {
      const Fields& f = it->second.fields;
      const bool on = f.on.value_or(on_.load(std::memory_order_acquire));
      const double ratio = f.rate ? 1.0 / static_cast<double>(*f.rate) : ratio_.load(std::memory_order_acquire);
      if (!on || ratio <= 0 || !(uniform() < ratio)) return false;
      return TakeOne(f.count ? it->second.count : count_);
    }
  }
  if (!on_.load(std::memory_order_acquire)) return false;
  const double ratio = ratio_.load(std::memory_order_acquire);
  if (ratio <= 0 || !(uniform() < ratio)) return false;
  return TakeOne(count_);
}

TraceSettings::Map TraceSettings::Get(std::string_view model) const {
  absl::MutexLock lock(&mu_);
  if (!model.empty()) {
    if (auto it = models_.find(model); it != models_.end()) return Render(it->second.fields);
  }
  return Render(global_);
}

absl::StatusOr<TraceSettings::Map> TraceSettings::Update(std::string_view model, const Updates& updates) {
  absl::MutexLock lock(&mu_);
  if (model.empty()) {
    if (absl::Status status = Apply(updates, &global_); !status.ok()) return status;
    if (auto it = updates.find("trace_count"); it != updates.end()) {
      count_.store(global_.count.value_or(-1), std::memory_order_release);
    }
    Publish();
    return Render(global_);
  }
  auto it = models_.find(model);
  Fields fields = it != models_.end() ? it->second.fields : Fields{};
  if (absl::Status status = Apply(updates, &fields); !status.ok()) return status;
  const bool empty = !fields.on && !fields.rate && !fields.count && !fields.log_frequency;
  if (empty) {
    if (it != models_.end()) models_.erase(it);
    Publish();
    return Render(global_);
  }
  if (it == models_.end()) it = models_.try_emplace(std::string(model)).first;
  it->second.fields = fields;
  if (updates.contains("trace_count")) it->second.count.store(fields.count.value_or(-1), std::memory_order_release);
  Publish();
  return Render(it->second.fields);
}

}  // namespace ortserve::observability
