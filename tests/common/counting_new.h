// SPDX-License-Identifier: Apache-2.0
// Heap-allocation counting for the allocation tests: counting_new.cc replaces
// the global operator new/delete of the test binary it is linked into (only
// those tests list it among their sources). While g_counting is set, every
// operator new on a thread outside t_in_session adds one to g_allocations;
// ALLOC_TRACE=1 in the environment prints each counted allocation's stack.
#pragma once

#include <atomic>
#include <cstdint>

extern std::atomic<bool> g_counting;
extern std::atomic<uint64_t> g_allocations;
// Set while a model runs: its own allocations (ORT's) are not the server's.
extern thread_local bool t_in_session;
