// SPDX-License-Identifier: Apache-2.0
#include "scheduler/ring_queue.h"

#include "gtest/gtest.h"

namespace ortserve::scheduler {
namespace {

TEST(RingQueueTest, KeepsFifoOrderAcrossWrapAroundAndGrowth) {
  RingQueue<int> queue;
  int next_in = 0;
  int next_out = 0;
  for (int round = 0; round < 50; ++round) {
    for (int i = 0; i < 7; ++i) queue.push_back(next_in++);
    for (int i = 0; i < 5; ++i) EXPECT_EQ(queue.pop_front(), next_out++);
  }
  EXPECT_EQ(queue.size(), static_cast<size_t>(next_in - next_out));
  while (!queue.empty()) EXPECT_EQ(queue.pop_front(), next_out++);
}

TEST(RingQueueTest, EraseAtKeepsTheOtherElementsInOrder) {
  RingQueue<int> queue;
  for (int i = 0; i < 20; ++i) queue.push_back(i);
  for (int i = 0; i < 10; ++i) queue.pop_front();
  for (int i = 20; i < 25; ++i) queue.push_back(i);  // Wraps around.
  EXPECT_EQ(queue.erase_at(3), 13);
  EXPECT_EQ(queue.size(), 14u);
  EXPECT_EQ(queue[3], 14);
  EXPECT_EQ(queue[13], 24);
}

TEST(RingQueueTest, KeepsCapacityWhenDrained) {
  RingQueue<int> queue;
  for (int i = 0; i < 100; ++i) queue.push_back(i);
  const size_t capacity = queue.capacity();
  while (!queue.empty()) queue.pop_front();
  for (int i = 0; i < 100; ++i) queue.push_back(i);
  EXPECT_EQ(queue.capacity(), capacity);
}

}  // namespace
}  // namespace ortserve::scheduler
