// SPDX-License-Identifier: Apache-2.0
// Keeps a truncated ledger from killing the processes that map it. Truncating a MAP_SHARED file
// makes every access past its new end raise SIGBUS, in every process, idle ones too (the watcher
// touches the mapping). A guarded mapping's fault is caught by our SIGBUS handler, which maps
// anonymous zero pages over the whole mapping (MAP_FIXED, atomically) and returns: the faulting
// instruction runs again on zeros, and the session, seeing the mapping faulted, treats its ledger
// as lost (quota/ledger_loss.cpp). Other SIGBUS go to the handler that was there before ours.
//
// A program that installs its own SIGBUS handler after ours (Python's faulthandler, a JVM) would
// take faults first and, chaining by raise(), lose the fault address; KeepFirst(), called by the
// watcher every tick, puts ours back in front with theirs chained behind it.
//
// A guarded mapping that faulted is never unmapped: a thread that held the ledger's robust mutex
// when it was zeroed still has that address on its robust list.
#pragma once
#include <cstddef>

namespace gpushare::quota::ledger_fault {

// Guards [base, base + bytes), installing the handler at the first call. The slot to pass below,
// or -1 when every slot is taken (the mapping is then unguarded).
int Guard(void* base, size_t bytes);
// Before munmap of an intact mapping.
void Unguard(int slot);
// Whether a fault was caught in it (it reads zeros since).
bool Faulted(int slot);
// Replaces it with zero pages now, as the handler would (the file was seen truncated before any
// access faulted). False when the kernel refused.
bool Abandon(int slot);
// Puts the handler back in front when a program replaced it (at most a few times).
void KeepFirst();

}  // namespace gpushare::quota::ledger_fault
