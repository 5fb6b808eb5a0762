// SPDX-License-Identifier: Apache-2.0
// Conversation sessions: the server keeps each chat's history by a session
// id the client names, so a client sends only its new message and the model
// sees the conversation so far (the prompt is built with the model's chat
// template from the history and the new messages).
#pragma once

#include <cstdint>
#include <list>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/clock.h"

namespace ortserve::generation {

// One message of a conversation.
struct ChatMessage {
  std::string role;     // system, developer, user or assistant
  std::string content;
  int64_t tokens = 0;   // its length in the model's tokens (the caller counts)
};

// The histories of every live session, bounded four ways: turns (messages)
// per session, tokens per session, bytes per session, and sessions in all
// (the least recently used goes first); a session unused for `ttl` is gone.
// So the store holds at most max_sessions x (max_session_bytes + a fixed
// overhead per message) bytes of text, whatever clients send.
//
// Thread-safe. Two requests of one session may run at once; each appends its
// turns when it finishes, in that order.
class SessionStore {
 public:
  struct Options {
    size_t max_sessions = 1024;
    size_t max_turns = 32;              // messages kept per session (oldest dropped first)
    int64_t max_tokens = 2048;          // tokens kept per session (oldest messages dropped first)
    size_t max_session_bytes = 64 << 10;  // role + content bytes kept per session
    absl::Duration ttl = absl::Minutes(30);
    Clock* clock = Clock::Real();
  };
  explicit SessionStore(Options options) : options_(std::move(options)) {}

  // A session id a client may send: 1 to 128 characters of [A-Za-z0-9._:-].
  // InvalidArgument naming the rule otherwise.
  static absl::Status CheckId(std::string_view id);

  // The history of session `key` (empty when unknown or expired); marks it
  // used.
  std::vector<ChatMessage> History(std::string_view key);
  // Appends `messages` to session `key` (created when absent), then drops its
  // oldest messages past the per-session bounds and the least recently used
  // sessions past max_sessions.
  void Append(std::string_view key, std::vector<ChatMessage> messages);
  // Forgets a session; false when there was none.
  bool Erase(std::string_view key);

  size_t size() const;
  // Bytes of text held, over all sessions.
  size_t bytes() const;
  const Options& options() const { return options_; }

 private:
  struct Session {
    std::string key;
    std::vector<ChatMessage> messages;  // oldest first
    int64_t tokens = 0;
    size_t bytes = 0;
    absl::Time last_used;
  };
  using Lru = std::list<Session>;  // most recently used first

  // Removes sessions past their ttl (from the back of the LRU).
  void Expire(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Remove(Lru::iterator it) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  mutable absl::Mutex mu_;
  Lru lru_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Lru::iterator> index_ ABSL_GUARDED_BY(mu_);
  size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace ortserve::generation
