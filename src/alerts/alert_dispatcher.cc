// SPDX-License-Identifier: Apache-2.0
#include "alerts/alert_dispatcher.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "core/strings.h"
#include "alerts/alert_metrics.h"
#include "alerts/signing.h"
#include "core/status.h"

namespace ortserve::alerts {
namespace {

bool ValidName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

std::string GroupKey(const OutboxEntry& e) { return ortserve::StrCat(e.receiver, "\n", e.patient_key); }

}  // namespace

absl::StatusOr<std::unique_ptr<AlertDispatcher>> AlertDispatcher::Create(DispatcherOptions options, Outbox* outbox) {
  if (outbox == nullptr) return absl::InvalidArgumentError("alert dispatcher: no outbox");
  if (options.receivers.empty()) return absl::InvalidArgumentError("alert dispatcher: no webhook receiver");
  if (options.workers == 0 || options.workers > 64) {
    return absl::InvalidArgumentError("alert dispatcher: workers must be 1..64");
  }
  if (options.clock == nullptr) options.clock = Clock::Real();
  auto dispatcher = std::unique_ptr<AlertDispatcher>(new AlertDispatcher(std::move(options), outbox));
  for (const WebhookTarget& t : dispatcher->options_.receivers) {
    if (!ValidName(t.name)) {
      return absl::InvalidArgumentError(
          ortserve::StrCat("webhook name '", t.name, "' must be 1 to 64 of [A-Za-z0-9_-]"));
    }
    if (t.secret.empty()) return absl::InvalidArgumentError(ortserve::StrCat("webhook ", t.name, " has no secret"));
    ASSIGN_OR_RETURN(WebhookUrl url, ParseWebhookUrl(t.url));
    if (!dispatcher->targets_.emplace(t.name, Target{std::move(url), t.secret}).second) {
      return absl::InvalidArgumentError(ortserve::StrCat("webhook ", t.name, " is configured twice"));
    }
  }
  for (size_t i = 0; i < dispatcher->options_.workers; ++i) {
    ASSIGN_OR_RETURN(auto client, WebhookClient::Create({.timeout = dispatcher->options_.request_timeout,
                                                         .ca_file = dispatcher->options_.ca_file}));
    dispatcher->clients_.push_back(std::move(client));
  }
  for (const auto& [name, target] : dispatcher->targets_) dispatcher->RefreshPending(name);
  return dispatcher;
}

AlertDispatcher::~AlertDispatcher() { Stop(); }

std::vector<std::string> AlertDispatcher::receiver_names() const {
  std::vector<std::string> names;
  for (const auto& [name, target] : targets_) names.push_back(name);
  return names;
}

void AlertDispatcher::Start() {
  absl::MutexLock lock(&mu_);
  if (started_ || stopping_) return;
  started_ = true;
  for (size_t i = 0; i < clients_.size(); ++i) {
    threads_.emplace_back([this, i, client = std::move(clients_[i])]() mutable { WorkerLoop(i, std::move(client)); });
  }
  clients_.clear();
}

void AlertDispatcher::Wake() {
  absl::MutexLock lock(&mu_);
  ++wake_seq_;
  cv_.SignalAll();
}

void AlertDispatcher::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    cv_.SignalAll();
  }
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

void AlertDispatcher::WorkerLoop(size_t index, std::unique_ptr<WebhookClient> client) {
  for (;;) {
    std::optional<OutboxEntry> job;
    std::string group;
    bool purge = false;
    {
      absl::MutexLock lock(&mu_);
      while (!stopping_ && !job.has_value()) {
        const uint64_t seen = wake_seq_;
        // Busy groups contribute at most one head each, so this limit always
        // leaves room for a claimable one when there is one.
        auto heads = outbox_->DueHeads(busy_.size() + options_.workers + 8);
        if (heads.ok()) {
          for (OutboxEntry& e : *heads) {
            std::string key = GroupKey(e);
            if (busy_.insert(key).second) {
              group = std::move(key);
              job = std::move(e);
              break;
            }
          }
        } else {
          spdlog::error("alerts: reading the outbox failed: {}", ToStd(heads.status().message()));
        }
        if (job.has_value()) break;
        if (index == 0 && options_.clock->Now() - last_purge_ >= options_.purge_interval) {
          // Idle: purge now (a short transaction; nothing else to do).
          last_purge_ = options_.clock->Now();
          auto removed = outbox_->Purge();
          if (!removed.ok()) spdlog::warn("alerts: purging the outbox failed: {}", ToStd(removed.status().message()));
        }
        // Nothing claimable. Sleep until the earliest head is due, or until
        // woken (new alert, an attempt finished, Stop). A due head that is
        // not claimable is in flight: its attempt's end wakes us.
        absl::Duration wait = options_.max_idle_wait;
        auto next = outbox_->NextAttemptTime();
        const absl::Time now = options_.clock->Now();
        if (next.ok() && next->has_value() && **next > now) wait = std::min(wait, **next - now);
        const absl::Time until = absl::Now() + std::max(wait, absl::Milliseconds(1));
        while (!stopping_ && wake_seq_ == seen) {
          if (cv_.WaitWithDeadline(&mu_, until)) break;
        }
      }
      if (stopping_) {
        if (!group.empty()) busy_.erase(group);
        return;
      }
      if (index == 0 && options_.clock->Now() - last_purge_ >= options_.purge_interval) {
        last_purge_ = options_.clock->Now();
        purge = true;
      }
    }
    Deliver(*client, *job);
    {
      absl::MutexLock lock(&mu_);
      busy_.erase(group);
      // The group's next alert (if any) is its head now.
      ++wake_seq_;
      cv_.SignalAll();
    }
    if (purge) {
      auto removed = outbox_->Purge();
      if (!removed.ok()) spdlog::warn("alerts: purging the outbox failed: {}", ToStd(removed.status().message()));
    }
  }
}

void AlertDispatcher::Deliver(WebhookClient& client, const OutboxEntry& entry) {
  auto it = targets_.find(entry.receiver);
  if (it == targets_.end()) {
    // A row left by an earlier configuration: it fails in the usual way (and
    // shows in Snapshot) rather than blocking anything.
    (void)outbox_->MarkAttemptFailed(entry.seq, "receiver is not configured in this server");
    return;
  }
  const Target& target = it->second;
  const int64_t now_s = absl::ToUnixSeconds(options_.clock->Now());
  const std::vector<std::pair<std::string, std::string>> headers = {
      {"X-Ortserve-Signature", SignatureHeader(target.secret, now_s, entry.payload)},
      {"Idempotency-Key", entry.alert_id},
      {"X-Ortserve-Alert-Attempt", std::to_string(entry.attempts + 1)},
  };
  auto response = client.Post(target.url, headers, entry.payload);
  if (response.ok() && response->status >= 200 && response->status < 300) {
    if (absl::Status s = outbox_->MarkDelivered(entry.seq); !s.ok()) {
      // The receiver has it; the row stays pending and is sent again with the
      // same Idempotency-Key.
      spdlog::error("alerts: alert {} reached {} but the outbox could not record it: {}", entry.alert_id,
                    entry.receiver, ToStd(s.message()));
    } else if (options_.metrics != nullptr) {
      options_.metrics->Delivered(entry.receiver, options_.clock->Now() - entry.created);
    }
  } else {
    std::string error = response.ok() ? ortserve::StrCat("HTTP ", response->status, ": ", response->body_prefix)
                                      : std::string(response.status().message());
    auto state = outbox_->MarkAttemptFailed(entry.seq, error);
    if (!state.ok()) {
      spdlog::error("alerts: recording a failed attempt of alert {} failed: {}", entry.alert_id,
                    ToStd(state.status().message()));
    } else if (*state == AlertState::kFailed) {
      spdlog::error("alerts: gave up delivering alert {} to {} after {} attempts: {}", entry.alert_id,
                    entry.receiver, entry.attempts + 1, error);
      if (options_.metrics != nullptr) options_.metrics->Failed(entry.receiver);
    } else {
      spdlog::warn("alerts: attempt {} of alert {} to {} failed (will retry): {}", entry.attempts + 1, entry.alert_id,
                   entry.receiver, error);
      if (options_.metrics != nullptr) options_.metrics->Retried(entry.receiver);
    }
  }
  RefreshPending(entry.receiver);
}

void AlertDispatcher::RefreshPending(const std::string& receiver) {
  if (options_.metrics == nullptr) return;
  auto pending = outbox_->PendingCount(receiver);
  if (pending.ok()) options_.metrics->SetPending(receiver, static_cast<double>(*pending));
}

}  // namespace ortserve::alerts
