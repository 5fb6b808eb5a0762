// SPDX-License-Identifier: Apache-2.0
#include "generation/session_store.h"

#include "core/strings.h"

namespace ortserve::generation {

absl::Status SessionStore::CheckId(std::string_view id) {
  if (id.empty() || id.size() > 128) return absl::InvalidArgumentError("a session id must be 1 to 128 characters");
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == ':' || c == '-';
    if (!ok) return absl::InvalidArgumentError("a session id may hold only letters, digits and . _ : -");
  }
  return absl::OkStatus();
}

void SessionStore::Remove(Lru::iterator it) {
  bytes_ -= it->bytes;
  index_.erase(it->key);
  lru_.erase(it);
}

void SessionStore::Expire(absl::Time now) {
  while (!lru_.empty() && now - lru_.back().last_used >= options_.ttl) Remove(std::prev(lru_.end()));
}

std::vector<ChatMessage> SessionStore::History(std::string_view key) {
  const absl::Time now = options_.clock->Now();
  absl::MutexLock lock(&mu_);
  Expire(now);
  auto found = index_.find(std::string(key));
  if (found == index_.end()) return {};
  Lru::iterator it = found->second;
  it->last_used = now;
  lru_.splice(lru_.begin(), lru_, it);
  return it->messages;
}

void SessionStore::Append(std::string_view key, std::vector<ChatMessage> messages) {
  const absl::Time now = options_.clock->Now();
  absl::MutexLock lock(&mu_);
  Expire(now);
  auto found = index_.find(std::string(key));
  Lru::iterator it;
  if (found == index_.end()) {
    lru_.push_front(Session{std::string(key), {}, 0, 0, now});
    it = lru_.begin();
    index_.emplace(it->key, it);
  } else {
    it = found->second;
    lru_.splice(lru_.begin(), lru_, it);
  }
  Session& s = *it;
  s.last_used = now;
  for (ChatMessage& m : messages) {
    const size_t size = m.role.size() + m.content.size();
    s.tokens += m.tokens;
    s.bytes += size;
    bytes_ += size;
    s.messages.push_back(std::move(m));
  }
  // Oldest first out, until every bound holds (a single message larger than
  // a bound leaves the session empty).
  size_t drop = 0;
  while (drop < s.messages.size() &&
         (s.messages.size() - drop > options_.max_turns || s.tokens > options_.max_tokens ||
          s.bytes > options_.max_session_bytes)) {
    const ChatMessage& m = s.messages[drop++];
    const size_t size = m.role.size() + m.content.size();
    s.tokens -= m.tokens;
    s.bytes -= size;
    bytes_ -= size;
  }
  s.messages.erase(s.messages.begin(), s.messages.begin() + static_cast<ptrdiff_t>(drop));
  while (lru_.size() > options_.max_sessions) Remove(std::prev(lru_.end()));
}

bool SessionStore::Erase(std::string_view key) {
  absl::MutexLock lock(&mu_);
  auto found = index_.find(std::string(key));
  if (found == index_.end()) return false;
  Remove(found->second);
  return true;
}

size_t SessionStore::size() const {
  absl::MutexLock lock(&mu_);
  return lru_.size();
}

size_t SessionStore::bytes() const {
  absl::MutexLock lock(&mu_);
  return bytes_;
}

}  // namespace ortserve::generation
