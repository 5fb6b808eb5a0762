// SPDX-License-Identifier: Apache-2.0
// The conversation session store: history by id, bounded by turns, tokens,
// bytes, a time to live (driven by a FakeClock) and an LRU over sessions.
#include "generation/session_store.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "fakes/fake_clock.h"

namespace ortserve::generation {
namespace {

ChatMessage Msg(std::string role, std::string content, int64_t tokens = 1) {
  return ChatMessage{std::move(role), std::move(content), tokens};
}

std::vector<std::string> Contents(const std::vector<ChatMessage>& history) {
  std::vector<std::string> out;
  for (const ChatMessage& m : history) out.push_back(m.content);
  return out;
}

class SessionStoreTest : public ::testing::Test {
 protected:
  SessionStore::Options Options() {
    SessionStore::Options o;
    o.clock = &clock_;
    return o;
  }
  testing::FakeClock clock_;
};

TEST_F(SessionStoreTest, KeepsTheHistoryOfEachSessionApart) {
  SessionStore store(Options());
  EXPECT_TRUE(store.History("a").empty());
  store.Append("a", {Msg("user", "hello"), Msg("assistant", "hi")});
  store.Append("b", {Msg("user", "other")});
  store.Append("a", {Msg("user", "again"), Msg("assistant", "yes")});
  EXPECT_EQ(Contents(store.History("a")), (std::vector<std::string>{"hello", "hi", "again", "yes"}));
  EXPECT_EQ(Contents(store.History("b")), (std::vector<std::string>{"other"}));
  EXPECT_EQ(store.size(), 2u);
  EXPECT_EQ(store.bytes(), std::string("userhelloassistanthiuseragainassistantyesuserother").size());
  EXPECT_TRUE(store.Erase("a"));
  EXPECT_FALSE(store.Erase("a"));
  EXPECT_TRUE(store.History("a").empty());
  EXPECT_EQ(store.bytes(), std::string("userother").size());
}

TEST_F(SessionStoreTest, DropsTheOldestMessagesPastTurnsTokensAndBytes) {
  SessionStore::Options o = Options();
  o.max_turns = 3;
  SessionStore turns(o);
  turns.Append("s", {Msg("user", "1"), Msg("assistant", "2"), Msg("user", "3"), Msg("assistant", "4")});
  EXPECT_EQ(Contents(turns.History("s")), (std::vector<std::string>{"2", "3", "4"}));

  o = Options();
  o.max_tokens = 10;
  SessionStore tokens(o);
  tokens.Append("s", {Msg("user", "a", 4), Msg("assistant", "b", 4)});
  tokens.Append("s", {Msg("user", "c", 5)});
  EXPECT_EQ(Contents(tokens.History("s")), (std::vector<std::string>{"b", "c"}));
  tokens.Append("s", {Msg("user", "huge", 11)});  // larger than the bound alone
  EXPECT_TRUE(tokens.History("s").empty());

  o = Options();
  o.max_session_bytes = 20;
  SessionStore bytes(o);
  bytes.Append("s", {Msg("user", "0123456789"), Msg("user", "abcdefghij")});
  EXPECT_EQ(Contents(bytes.History("s")), (std::vector<std::string>{"abcdefghij"}));
  EXPECT_EQ(bytes.bytes(), 14u);
}

TEST_F(SessionStoreTest, ASessionUnusedForItsTtlIsGone) {
  SessionStore::Options o = Options();
  o.ttl = absl::Minutes(10);
  SessionStore store(o);
  store.Append("s", {Msg("user", "hello")});
  clock_.Advance(absl::Minutes(9));
  EXPECT_EQ(store.History("s").size(), 1u);  // reading it counts as use
  clock_.Advance(absl::Minutes(9));
  EXPECT_EQ(store.History("s").size(), 1u);
  clock_.Advance(absl::Minutes(10));
  EXPECT_TRUE(store.History("s").empty());
  EXPECT_EQ(store.size(), 0u);
  EXPECT_EQ(store.bytes(), 0u);
}

TEST_F(SessionStoreTest, TheLeastRecentlyUsedSessionGoesPastMaxSessions) {
  SessionStore::Options o = Options();
  o.max_sessions = 2;
  SessionStore store(o);
  store.Append("a", {Msg("user", "a")});
  clock_.Advance(absl::Seconds(1));
  store.Append("b", {Msg("user", "b")});
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(store.History("a").size(), 1u);  // a is now the most recent
  store.Append("c", {Msg("user", "c")});
  EXPECT_EQ(store.size(), 2u);
  EXPECT_TRUE(store.History("b").empty());
  EXPECT_EQ(store.History("a").size(), 1u);
  EXPECT_EQ(store.History("c").size(), 1u);
}

TEST_F(SessionStoreTest, ChecksSessionIds) {
  EXPECT_TRUE(SessionStore::CheckId("chat-42_a.b:c").ok());
  EXPECT_FALSE(SessionStore::CheckId("").ok());
  EXPECT_FALSE(SessionStore::CheckId(std::string(129, 'a')).ok());
  EXPECT_FALSE(SessionStore::CheckId("a b").ok());
  EXPECT_FALSE(SessionStore::CheckId("a/b").ok());
  EXPECT_FALSE(SessionStore::CheckId(std::string("a\0b", 3)).ok());
}

}  // namespace
}  // namespace ortserve::generation
