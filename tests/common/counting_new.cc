// SPDX-License-Identifier: Apache-2.0
#include "common/counting_new.h"

#include <execinfo.h>
#include <unistd.h>

#include <cstdlib>
#include <new>

std::atomic<bool> g_counting{false};
std::atomic<uint64_t> g_allocations{0};
thread_local bool t_in_session = false;

namespace {

void* CountedAlloc(size_t size) {
  if (g_counting.load(std::memory_order_relaxed) && !t_in_session) {
    g_allocations.fetch_add(1, std::memory_order_relaxed);
    if (std::getenv("ALLOC_TRACE") != nullptr) {
      void* frames[32];
      const int n = backtrace(frames, 32);
      backtrace_symbols_fd(frames, n, 2);
      (void)!write(2, "----\n", 5);
    }
  }
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}

}  // namespace

void* operator new(size_t size) { return CountedAlloc(size); }
void* operator new[](size_t size) { return CountedAlloc(size); }
void* operator new(size_t size, const std::nothrow_t&) noexcept { return std::malloc(size == 0 ? 1 : size); }
void* operator new[](size_t size, const std::nothrow_t&) noexcept { return std::malloc(size == 0 ? 1 : size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }
