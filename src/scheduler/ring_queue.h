// SPDX-License-Identifier: Apache-2.0
// RingQueue: a FIFO over one growable array that keeps its capacity, so that a
// queue at steady state allocates nothing (std::deque frees and reallocates
// its blocks as it drains and fills).
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

namespace ortserve::scheduler {

// A double-ended-at-the-front FIFO: push_back, pop_front, indexed access from
// the front, and erase in the middle (rare: expired or cancelled entries).
// Capacity doubles when full and never shrinks. T must be default
// constructible and movable; vacated slots hold moved-from values.
//
// Not thread-safe.
template <typename T>
class RingQueue {
 public:
  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }
  size_t capacity() const { return slots_.size(); }

  T& operator[](size_t i) { return slots_[(head_ + i) & (slots_.size() - 1)]; }
  const T& operator[](size_t i) const { return slots_[(head_ + i) & (slots_.size() - 1)]; }
  T& front() { return (*this)[0]; }

  void push_back(T value) {
    if (size_ == slots_.size()) Grow();
    (*this)[size_] = std::move(value);
    ++size_;
  }

  T pop_front() {
    T value = std::move(front());
    head_ = (head_ + 1) & (slots_.size() - 1);
    --size_;
    return value;
  }

  // Removes and returns the element at `i`, shifting the later ones forward.
  T erase_at(size_t i) {
    T value = std::move((*this)[i]);
    for (size_t j = i; j + 1 < size_; ++j) (*this)[j] = std::move((*this)[j + 1]);
    --size_;
    return value;
  }

  // Ensures room for `n` elements without growing later.
  void reserve(size_t n) {
    while (slots_.size() < n) Grow();
  }

 private:
  void Grow() {
    std::vector<T> bigger(slots_.empty() ? 16 : slots_.size() * 2);
    for (size_t i = 0; i < size_; ++i) bigger[i] = std::move((*this)[i]);
    slots_ = std::move(bigger);
    head_ = 0;
  }

  std::vector<T> slots_;  // Size is zero or a power of two.
  size_t head_ = 0;
  size_t size_ = 0;
};

}  // namespace ortserve::scheduler
