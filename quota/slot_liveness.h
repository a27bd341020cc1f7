// SPDX-License-Identifier: Apache-2.0
// Liveness of ledger process slots across PID namespaces: each live process holds an OFD write
// lock (fcntl F_OFD_SETLK) on its own slot's byte range of the ledger file. The kernel drops it
// when the last descriptor of that open file goes away, i.e. when the process dies, however it
// dies, whatever namespace it lives in. A slot whose range can be locked has no live owner.
//
// Caveat: a child forked without exec inherits the descriptor, so the parent's slot reads alive
// until the child exits too (the descriptor is O_CLOEXEC, so exec drops it).
#pragma once
#include <sys/types.h>

namespace gpushare::quota {

enum class Liveness { kAlive, kDead, kUnknown };

// Takes this open file's write lock on [offset, offset + length); false if another open file
// holds a conflicting lock or fcntl fails.
bool HoldSlotLock(int fd, off_t offset, off_t length);
void ReleaseSlotLock(int fd, off_t offset, off_t length);

// Whether some other open file description holds a lock on the range. Works on a read-only
// descriptor. A lock held by `fd`'s own open file description does not count (reads kDead).
Liveness ProbeSlot(int fd, off_t offset, off_t length);

}  // namespace gpushare::quota
