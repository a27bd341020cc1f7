/* SPDX-License-Identifier: Apache-2.0 */
/* The per-GPU shared-memory ledger: the file every gpushare process on a node maps to share one
 * physical GPU among tenants (request/limit). C-compatible and versioned; read by gpushare-smi
 * and any other tool without gpushare's code.
 *
 * File: <dir>/gpushare-<uuid as 32 lowercase hex>.ledger, 0666, in a 01777 directory (default
 * /var/run/gpushare). Layout: one GsLedgerHeader (4 KiB, with the waiter table), then
 * tenant_slot_count GsLedgerTenant at tenant_slots_offset, then process_slot_count
 * GsLedgerProcess at process_slots_offset, then termination_slot_count GsLedgerTermination (a
 * ring) at terminations_offset; file_bytes in all. Only fixed-width integers and char arrays;
 * every hole is a named reserved field (zero); offsets are pinned below and in
 * tests/quota/ledger_test.cpp.
 *
 * How to change it: a new field is carved from a reserved array (readers of the same version
 * see zero there); anything else bumps GS_LEDGER_ABI_VERSION, and a file of another version is
 * refused, never reinterpreted.
 *
 * Protocol (see quota/ledger.cpp):
 *  - Creation: the file is fully initialised under a temporary name, then link()ed into place, so
 *    no process ever maps a half-written ledger; `initialized` is GS_LEDGER_INITIALIZED after.
 *  - `lock` holds a process-shared robust pthread mutex. Structure (slot states, requests,
 *    limits, names, tenant_index) changes only under it. On EOWNERDEAD the next holder rebuilds
 *    every tenant's used_bytes from the live process slots, reaps the dead, then marks it
 *    consistent.
 *  - Liveness: a live process holds an OFD write lock (F_OFD_SETLK) on the byte range of its
 *    own process slot; a slot whose range can be locked belongs to a dead process. This works
 *    across PID namespaces, where pids mean nothing.
 *  - Counters marked "atomic" are updated with 64-bit atomics outside the lock: an allocation
 *    that stays within the tenant's request is one CAS on the tenant's used_bytes plus an add on
 *    the process's used_bytes, with `inflight` set around the pair.
 *  - Collisions (version 2): a refused burst may wait. Waiters register in `waiters` (a ticket
 *    each, FIFO) and count themselves in `waiting`, both under the lock, then FUTEX_WAIT (shared,
 *    not private) on `wake_seq`. Whoever lowers a tenant's use (a free, a leave, a reap) and sees
 *    `waiting` nonzero bumps `wake_seq` and FUTEX_WAKEs everyone. The priority resolver marks a
 *    victim tenant in its `terminate` word (its own processes carry it out) and records the mark
 *    in the termination ring.
 *  - SM slices (version 3): the first process that needs the GPU's launch-descriptor TPC map
 *    measures it and publishes it in the header (sm_map_* fields, sm_map_state written last,
 *    under the lock); later processes read it instead of measuring. A tenant's slice (the TPC
 *    bits it may run on, tenant sm_* fields) is chosen under the lock when its first process
 *    joins, from live bits no other active tenant holds, and freed with its slot.
 *  - Compute shares (version 4, compute_* fields; compute/turn.cpp): the GPU's time goes in
 *    exclusive turns. compute_owner names the process slot (+1) that may launch; others' launches
 *    wait at a gate. A waiting process raises its compute_wanting (and want_since), counts itself
 *    in header.compute_waiting, bumps compute_kick and FUTEX_WAKEs it (the owner's keeper thread
 *    sleeps there), then FUTEX_WAITs on compute_seq. A turn changes hands only under the lock: the
 *    holder (or anyone, when the holder's slot is dead, or nobody holds it) charges the turn's
 *    wall time, grant to drained, to the holder's tenant (compute_gpu_ns, compute_vtime +=
 *    ns * 10000 / share_bp), picks the wanting process whose tenant has the smallest virtual time
 *    (lifted to compute_vfloor minus five quanta of its own, so idle time is not banked; the
 *    floor never passes the virtual time of a tenant busy in the last 50 ms), stores
 *    owner, generation and grant_ns, then compute_owner, bumps compute_seq and wakes it. Only
 *    tenants with compute_share_bp > 0 take part; others are never gated. Express: a tenant whose
 *    recent use (compute_recent_ns, decayed GPU ns: use = recent * ln 2 / half-life) is below a
 *    fraction of its share (and was first charged a half-life ago) launches without the turn; the wall time of such a burst, first launch
 *    to drained, is charged as a turn's is (and counted in compute_express_ns).
 *  - Swap (version 4, the swap_* regions): under GS_RESOLVER_SWAP a refused burst asks victim
 *    tenants to move memory to host memory. Under the lock the requester raises the victim's
 *    swap_ask_bytes (atomic), sets swap_requester, bumps swap_seq and FUTEX_WAKEs it (shared);
 *    the agent thread of each victim process FUTEX_WAITs on swap_seq, gates and drains its
 *    process, copies allocations out, unmaps and releases them, uncharges them (so the ledger
 *    shows them free: used_bytes never includes swapped-out bytes), adds them to its process
 *    slot's swapped_out_bytes, and CAS-lowers swap_ask_bytes by what it freed. A swapped-out
 *    process charges its bytes again (through the resolver, as any allocation) before its next
 *    gated call proceeds. A tenant is a victim only once its quantum is over: swap_turn_ns (set
 *    at join, at each swap-in and at each burst granted after a wait) + swap_quantum_ns, unless
 *    it is idle past the requester's idle_timeout_ns; it is asked for no more than its live
 *    processes' swappable_bytes. Per-tenant records (swaps_out .. swap_in_ns)
 *    and the header's totals are atomic adds. A process killed mid-swap is reaped as any other:
 *    its used_bytes (resident bytes only) is released, and its staging is its own host memory.
 *  - Context overhead (version 4, context_overhead_* carved from the header's swap_reserved,
 *    process context_bytes from its swap_reserved): a process creating its first context on the
 *    GPU uses context_overhead_bytes when READY for its driver and MPS mode. Otherwise it takes
 *    the measuring turn, an OFD write lock (F_OFD_SETLK) on the byte range of the
 *    context_overhead_* fields (4064..4095), so that processes starting together measure one at
 *    a time, waiting for it (or the value) at most 5 s; it measures the device-wide growth
 *    across its context's creation with NVML and, when no other process's memory moved
 *    meanwhile, publishes it under the lock (fields first, state READY last; a READY value for
 *    the same driver and mode wins). Readers check the value against a ceiling before use.
 *  - A lost file (quota/ledger_loss.cpp; process `rejoined`, carved from reserved0 within
 *    version 4): a process whose file is truncated, zeroed, removed or replaced under it keeps
 *    its own count of what it holds, opens the file now at the path (first replacing, by
 *    rename, a damaged one still there; a damaged file nobody uses is replaced by any opener)
 *    and joins it again with a process slot whose used_bytes is what it holds, `rejoined`
 *    saying why. Nothing in a file is trusted past its checks: waiters must name a live
 *    process slot of their generation, times must not lie in the future, and a header's
 *    usable_bytes is bounded by what the joining process measured.
 *
 * Version history: 1 first; 2 adds the collision resolvers (header wake_seq .. waiters and hidden_bytes, the
 * termination ring after the process slots, tenant resolver .. terminations, process
 * last_active_ns and waiting); 3 adds SM slices (header sm_map_state .. sm_per_bit, tenant
 * slots grow from 256 to 384 bytes for sm_asked .. sm_flags, process sm_mode); 4 grows tenant
 * slots to 640 and process slots to 384 bytes, adds the header's sm_gpc_of_bit, and carves named regions for compute shares
 * (compute_*) and the swap resolver (swap_*); the compute share fields (header compute_owner ..
 * compute_preemptions, tenant compute_share_bp .. compute_busy_ns, process
 * compute_wanting .. compute_throttled_ns) were carved from the compute regions within version 4.
 */
#ifndef GPUSHARE_LEDGER_ABI_H_
#define GPUSHARE_LEDGER_ABI_H_

#include <stddef.h>
#include <stdint.h>

#define GS_LEDGER_MAGIC "GPUSHLDG" /* 8 bytes, no NUL stored */
#define GS_LEDGER_ABI_VERSION 4u
#define GS_LEDGER_INITIALIZED 0x54494E49u /* "INIT": the creator finished, before link() */
#define GS_LEDGER_HEADER_BYTES 4096u
#define GS_LEDGER_TENANT_SLOT_BYTES 640u
#define GS_LEDGER_PROCESS_SLOT_BYTES 384u
#define GS_LEDGER_TENANT_SLOTS 64u
#define GS_LEDGER_PROCESS_SLOTS 512u
#define GS_LEDGER_LOCK_BYTES 64u /* pthread_mutex_t is 40 bytes on x86-64, 48 on aarch64 */
#define GS_LEDGER_NAME_BYTES 128u
#define GS_LEDGER_CONTAINER_ID_BYTES 72u
#define GS_LEDGER_WAITER_SLOTS 64u
#define GS_LEDGER_WAITER_SLOT_BYTES 48u
#define GS_LEDGER_TERMINATION_SLOTS 32u
#define GS_LEDGER_TERMINATION_SLOT_BYTES 320u
#define GS_LEDGER_TERMINATIONS_OFFSET                                     \
  (GS_LEDGER_HEADER_BYTES + GS_LEDGER_TENANT_SLOTS * GS_LEDGER_TENANT_SLOT_BYTES + \
   GS_LEDGER_PROCESS_SLOTS * GS_LEDGER_PROCESS_SLOT_BYTES)
#define GS_LEDGER_FILE_BYTES \
  (GS_LEDGER_TERMINATIONS_OFFSET + GS_LEDGER_TERMINATION_SLOTS * GS_LEDGER_TERMINATION_SLOT_BYTES)

/* Slot states. */
#define GS_SLOT_FREE 0u
#define GS_SLOT_ACTIVE 1u
/* GsLedgerTenant.flags */
#define GS_TENANT_BEST_EFFORT 1u /* admitted with request 0: its asked request did not fit */
/* GsLedgerTenant.used_bytes: set while the lock holder recounts the tenant; an atomic update
 * that sees it backs off to the locked path. */
#define GS_TENANT_USED_FROZEN (1ull << 63)
/* GsLedgerTenant.resolver: what a burst refused for lack of memory does. */
#define GS_RESOLVER_NONE 0u     /* refused at once */
#define GS_RESOLVER_WAIT 1u     /* waits for memory to be freed */
#define GS_RESOLVER_PRIORITY 2u /* marks lower-priority or idle bursting tenants, then waits */
#define GS_RESOLVER_SWAP 3u     /* asks bursting (or idle) tenants past their quantum to swap out */
/* GsLedgerProcess.swap_state */
#define GS_SWAP_RESIDENT 0u     /* all its memory on the GPU */
#define GS_SWAP_SWAPPING_OUT 1u /* gated, draining or copying out */
#define GS_SWAP_OUT 2u          /* some of its memory is in host staging; gated */
#define GS_SWAP_SWAPPING_IN 3u  /* charging and copying back */
/* GsLedgerTenant.terminate: 0, or GS_TERMINATE_REQUESTED | reason << 32 | requester tenant slot. */
#define GS_TERMINATE_REQUESTED (1ull << 63)
#define GS_TERMINATE_LOWER_PRIORITY 1u
#define GS_TERMINATE_IDLE 2u
/* GsLedgerProcess.rejoined: what happened to the file the process had joined before this one */
#define GS_REJOIN_TRUNCATED 1u   /* truncated or resized (its mapping faulted, or its size changed) */
#define GS_REJOIN_OVERWRITTEN 2u /* its header, or this process's records in it, were overwritten */
#define GS_REJOIN_REMOVED 3u     /* removed from the directory */
#define GS_REJOIN_REPLACED 4u    /* another file, or a link, took its name */
/* GsLedgerHeader.sm_map_state */
#define GS_SM_MAP_NONE 0u
#define GS_SM_MAP_READY 1u  /* sm_count .. sm_per_bit hold a validated map */
#define GS_SM_TPC_BITS 128u /* bits of the launch descriptor's TPC-disable mask */
#define GS_SM_GPC_UNKNOWN 0xFFu /* sm_gpc_of_bit: not measured */
#define GS_SM_GPC_UNCLUSTERED 0xFEu /* sm_gpc_of_bit: its TPC never ran a thread block cluster */
/* GsLedgerHeader.context_overhead_state and _flags */
#define GS_CONTEXT_OVERHEAD_NONE 0u
#define GS_CONTEXT_OVERHEAD_READY 1u /* context_overhead_bytes holds a lone measurement */
#define GS_CONTEXT_OVERHEAD_MPS 1u   /* flag: measured while contexts were shared via MPS */
/* GsLedgerTenant.sm_asked_kind */
#define GS_SM_ASK_NONE 0u    /* no slice: every SM */
#define GS_SM_ASK_COUNT 1u   /* sm_asked SMs */
#define GS_SM_ASK_PERCENT 2u /* sm_asked percent of the GPU's SMs */
/* GsLedgerTenant.sm_flags */
#define GS_SM_OVERLAPS 1u    /* too few free TPCs: the slice shares TPCs with other tenants */
#define GS_SM_UNCONFINED 2u  /* no slice could be confined; the tenant runs on every SM */
/* GsLedgerProcess.sm_mode: how this process confines its kernels */
#define GS_SM_MODE_NONE 0u       /* the tenant asked for no slice */
#define GS_SM_MODE_MASK 1u       /* the launch-descriptor TPC mask */
#define GS_SM_MODE_UNCONFINED 2u /* asked for a slice, runs on every SM (operator allowed it) */
/* GsLedgerTenant.compute_flags */
#define GS_COMPUTE_STRICT 1u     /* capped at its share even when alone (GPUSHARE_COMPUTE_STRICT) */
#define GS_COMPUTE_SHARE_FULL 10000u /* basis points: the whole GPU */
#define GS_COMPUTE_WINDOW_NS 5000000000ull /* length of each compute_window_* bucket */
#define GS_COMPUTE_RECENT_HALF_LIFE_NS 100000000ull /* half-life of compute_recent_ns */

/* One thread waiting for memory (header.waiters); ticket 0 = a free entry. Under the lock. */
typedef struct GsLedgerWaiter {
  uint64_t ticket;                /*   0 FIFO order; from header.next_ticket */
  uint64_t bytes;                 /*   8 what it asks for */
  uint64_t generation;            /*  16 its process slot's generation */
  uint32_t process_index;         /*  24 its process slot */
  uint32_t tenant_index;          /*  28 its tenant slot */
  uint64_t since_ns;              /*  32 CLOCK_MONOTONIC when it started waiting */
  uint64_t deadline_ns;           /*  40 CLOCK_MONOTONIC when it gives up */
} GsLedgerWaiter;

/* One mark of the priority resolver (the ring at terminations_offset; record n, counted from 1,
 * is at (n - 1) % GS_LEDGER_TERMINATION_SLOTS). Written under the lock, `sequence` last. */
typedef struct GsLedgerTermination {
  uint64_t sequence;              /*   0 atomic: n; 0 = never written */
  uint64_t unix_ns;               /*   8 when marked */
  uint64_t victim_used_bytes;     /*  16 the victim tenant's use then */
  uint64_t victim_burst_bytes;    /*  24 its burst then */
  uint32_t reason;                /*  32 GS_TERMINATE_* */
  int32_t victim_priority;        /*  36 */
  int32_t requester_priority;     /*  40 */
  uint32_t reserved0;             /*  44 */
  uint64_t victim_idle_ns;        /*  48 how long the victim had been idle */
  uint64_t requester_bytes;       /*  56 the refused allocation */
  char victim[GS_LEDGER_NAME_BYTES];    /*  64 tenant name, NUL-terminated */
  char requester[GS_LEDGER_NAME_BYTES]; /* 192 tenant name, NUL-terminated */
} GsLedgerTermination;

typedef struct GsLedgerHeader {
  char magic[8];                  /*   0 GS_LEDGER_MAGIC */
  uint32_t abi_version;           /*   8 GS_LEDGER_ABI_VERSION */
  uint32_t header_bytes;          /*  12 sizeof(GsLedgerHeader) */
  uint32_t tenant_slot_bytes;     /*  16 sizeof(GsLedgerTenant) */
  uint32_t tenant_slot_count;     /*  20 */
  uint32_t process_slot_bytes;    /*  24 sizeof(GsLedgerProcess) */
  uint32_t process_slot_count;    /*  28 */
  uint64_t tenant_slots_offset;   /*  32 bytes from the file start */
  uint64_t process_slots_offset;  /*  40 */
  uint64_t file_bytes;            /*  48 the whole file; equals its size */
  uint64_t total_bytes;           /*  56 the GPU's physical memory */
  uint64_t usable_bytes;          /*  64 what tenants share (<= total_bytes) */
  uint8_t uuid[16];               /*  72 the GPU's UUID, as cuDeviceGetUuid gives it */
  uint32_t initialized;           /*  88 GS_LEDGER_INITIALIZED */
  uint32_t lock_bytes;            /*  92 GS_LEDGER_LOCK_BYTES */
  uint64_t created_unix_ns;       /*  96 */
  uint64_t repairs;               /* 104 atomic: EOWNERDEAD recoveries */
  uint64_t reaped_processes;      /* 112 atomic: dead processes whose usage was released */
  uint8_t reserved0[8];           /* 120 */
  uint8_t lock[GS_LEDGER_LOCK_BYTES]; /* 128 robust process-shared pthread_mutex_t, opaque */
  uint32_t wake_seq;              /* 192 futex word: bumped (then FUTEX_WAKE) by frees while waiting != 0 */
  uint32_t waiting;               /* 196 atomic: threads in a wait loop (written under the lock) */
  uint64_t next_ticket;           /* 200 the next waiter's ticket - 1 (under the lock) */
  uint64_t terminations;          /* 208 atomic: termination records ever written */
  uint64_t terminations_offset;   /* 216 GS_LEDGER_TERMINATIONS_OFFSET */
  uint32_t termination_slot_bytes;/* 224 sizeof(GsLedgerTermination) */
  uint32_t termination_slot_count;/* 228 GS_LEDGER_TERMINATION_SLOTS */
  uint32_t waiter_slot_count;     /* 232 GS_LEDGER_WAITER_SLOTS */
  uint32_t reserved1;             /* 236 */
  uint64_t hidden_bytes;          /* 240 atomic: device memory in use that no charge accounts for
                                     (driver, processes without gpushare), as last measured */
  uint64_t hidden_until_ns;       /* 248 atomic: CLOCK_MONOTONIC until which hidden_bytes holds */
  GsLedgerWaiter waiters[GS_LEDGER_WAITER_SLOTS]; /* 256 under the lock */
  /* The GPU's launch-descriptor TPC map, measured once per GPU (sm_partition/tpc_map.cpp). */
  uint32_t sm_map_state;          /* 3328 GS_SM_MAP_*; READY stored last (release) */
  uint32_t sm_count;              /* 3332 the GPU's SMs, all live bits together */
  uint32_t sm_qmd_version;        /* 3336 the launch descriptor's version byte when mapped */
  int32_t sm_driver_version;      /* 3340 cuDriverGetVersion when mapped; another driver remaps */
  uint64_t sm_map_unix_ns;        /* 3344 when it was measured */
  uint64_t sm_map_ns;             /* 3352 how long the measurement took */
  uint32_t sm_live[4];            /* 3360 128-bit set of mask bits with a live TPC (bit b: word b/32) */
  uint8_t sm_per_bit[GS_SM_TPC_BITS]; /* 3376 SMs behind each mask bit; 0 for a dead bit */
  uint8_t sm_gpc_of_bit[GS_SM_TPC_BITS]; /* 3504 GPC (graphics processing cluster) of each live
                                     bit's TPC, measured with the map; GS_SM_GPC_UNKNOWN if not */
  /* Compute shares (version 4, carved from compute_reserved): the GPU's exclusive turn. */
  uint32_t compute_owner;         /* 3632 atomic: process slot + 1 holding the turn; 0 = nobody */
  uint32_t compute_seq;           /* 3636 futex word: bumped (then FUTEX_WAKE) at every change of owner */
  uint32_t compute_kick;          /* 3640 futex word: bumped by a process that starts waiting, wakes the owner's keeper */
  uint32_t compute_waiting;       /* 3644 atomic: processes with a thread waiting at the gate */
  uint64_t compute_owner_generation; /* 3648 that process slot's generation */
  uint64_t compute_grant_ns;      /* 3656 CLOCK_MONOTONIC when the current turn was granted */
  uint64_t compute_epoch;         /* 3664 turns granted so far */
  uint64_t compute_vfloor;        /* 3672 virtual time of the latest turn's tenant at its grant */
  uint64_t compute_dead_handovers;/* 3680 atomic: turns taken back from a dead holder */
  uint64_t compute_preemptions;   /* 3688 atomic: turns ended early for a tenant below its share */
  uint8_t compute_reserved[128];  /* 3696 zero */
  uint64_t swaps_out;             /* 3824 atomic: swap-outs on this GPU, every tenant */
  uint64_t swap_out_bytes;        /* 3832 atomic: bytes they moved to host memory */
  uint64_t swaps_in;              /* 3840 atomic */
  uint64_t swap_in_bytes;         /* 3848 atomic */
  uint8_t swap_reserved[GS_LEDGER_HEADER_BYTES - 3856 - 32];
                                  /* 3856 zero: further swap fields come from here */
  /* A lone CUDA context's own memory (carved from swap_reserved within version 4;
   * quota/context_overhead.cpp): measured by the first process that could measure it alone,
   * reused by later ones. The byte range of these fields is also the measuring turn's OFD lock. */
  uint64_t context_overhead_bytes;   /* 4064 device memory one first context took */
  int32_t context_overhead_driver;   /* 4072 cuDriverGetVersion when measured; another driver measures again */
  uint32_t context_overhead_state;   /* 4076 GS_CONTEXT_OVERHEAD_*; READY stored last (release) */
  uint64_t context_overhead_unix_ns; /* 4080 when it was measured */
  uint32_t context_overhead_flags;   /* 4088 GS_CONTEXT_OVERHEAD_MPS: measured under MPS */
  uint32_t context_overhead_reserved;/* 4092 zero */
} GsLedgerHeader;

typedef struct GsLedgerTenant {
  uint32_t state;                 /*   0 GS_SLOT_FREE / GS_SLOT_ACTIVE (written last on join) */
  uint32_t flags;                 /*   4 GS_TENANT_* */
  uint64_t request_bytes;         /*   8 guaranteed; 0 for a best-effort admission */
  uint64_t limit_bytes;           /*  16 most it may hold */
  uint64_t asked_request_bytes;   /*  24 the request its processes were configured with */
  uint64_t used_bytes;            /*  32 atomic: sum of its processes' used_bytes (+FROZEN bit) */
  uint64_t oom_denials;           /*  40 atomic: allocations refused */
  uint32_t process_count;         /*  48 live process slots of it */
  uint32_t reserved0;             /*  52 */
  uint64_t joined_unix_ns;        /*  56 */
  char name[GS_LEDGER_NAME_BYTES];/*  64 NUL-terminated */
  uint32_t resolver;              /* 192 GS_RESOLVER_*; every process of the tenant agrees */
  int32_t priority;               /* 196 higher wins */
  uint64_t idle_timeout_ns;       /* 200 as a requester: idle longer makes a victim; 0 = never */
  uint64_t kill_grace_ns;         /* 208 as a victim: SIGTERM to SIGKILL */
  uint64_t terminate;             /* 216 atomic: GS_TERMINATE_REQUESTED | reason << 32 | requester */
  uint64_t terminate_unix_ns;     /* 224 when it was marked */
  uint64_t wait_ns_total;         /* 232 atomic: time its allocations spent waiting */
  uint64_t waits;                 /* 240 atomic: its waits that ended (granted or timed out) */
  uint64_t terminations;          /* 248 atomic: times the priority resolver marked it */
  /* Its SM slice, chosen under the lock at its first join; every process of it agrees. */
  uint32_t sm_asked;              /* 256 SMs, or percent (sm_asked_kind) */
  uint32_t sm_asked_kind;         /* 260 GS_SM_ASK_* */
  uint32_t sm_mask[4];            /* 264 mask bits (TPCs) it may run on; 0 = none assigned */
  uint32_t sm_granted;            /* 280 SMs behind sm_mask (rounded up to whole TPCs) */
  uint32_t sm_flags;              /* 284 GS_SM_* */
  uint8_t sm_reserved[96];        /* 288 zero */
  /* Compute share (version 4, carved from compute_reserved); every process of it agrees. */
  uint32_t compute_share_bp;      /* 384 its share in basis points (1..10000); 0 = no share, never gated */
  uint32_t compute_flags;         /* 388 GS_COMPUTE_* */
  uint64_t compute_vtime;         /* 392 virtual time: sum of turn ns * 10000 / share_bp (under the lock) */
  uint64_t compute_gpu_ns;        /* 400 atomic: GPU time received in turns (grant to drained) */
  uint64_t compute_throttled_ns;  /* 408 atomic: time its launching threads waited at the gate */
  uint64_t compute_turns;         /* 416 atomic: turns it was granted */
  uint64_t compute_window_start_ns; /* 424 start of the current window (CLOCK_MONOTONIC, under the lock) */
  uint64_t compute_window_gpu_ns[2]; /* 432 GPU ns in the current and the previous window */
  uint64_t compute_window_throttled_ns[2]; /* 448 throttled ns in the same windows */
  uint64_t compute_busy_ns;       /* 464 atomic: CLOCK_MONOTONIC of its latest want or turn end */
  uint64_t compute_recent_ns;     /* 472 GPU ns decayed by half every GS_COMPUTE_RECENT_HALF_LIFE_NS (under the lock) */
  uint64_t compute_recent_at_ns;  /* 480 when compute_recent_ns was last decayed (under the lock) */
  uint64_t compute_express_ns;    /* 488 atomic: GPU time it got outside turns (express), within compute_gpu_ns */
  uint64_t compute_first_charge_ns; /* 496 CLOCK_MONOTONIC of its first charge (under the lock); 0: none yet */
  uint8_t compute_reserved[8];    /* 504 zero */
  uint64_t swap_quantum_ns;       /* 512 its guaranteed turn before it may be swapped out again */
  uint64_t swap_ask_bytes;        /* 520 atomic: bytes requesters ask it to swap out; 0 = none */
  uint32_t swap_seq;              /* 528 futex word: bumped with each ask (then FUTEX_WAKE) */
  uint32_t swap_requester;        /* 532 tenant slot of the latest asker (under the lock) */
  uint64_t swap_turn_ns;          /* 536 atomic: CLOCK_MONOTONIC when its current turn began */
  uint64_t swaps_out;             /* 544 atomic: its swap-outs */
  uint64_t swap_out_bytes;        /* 552 atomic: bytes moved to host memory */
  uint64_t swap_out_ns;           /* 560 atomic: time spent swapping out (gate to release) */
  uint64_t swaps_in;              /* 568 atomic */
  uint64_t swap_in_bytes;         /* 576 atomic */
  uint64_t swap_in_ns;            /* 584 atomic: time spent swapping in (charge wait excluded) */
  uint64_t swap_wait_ns;          /* 592 atomic: time swap-ins waited for memory */
  uint8_t swap_reserved[40];      /* 600 zero: further swap fields come from here */
} GsLedgerTenant;

typedef struct GsLedgerProcess {
  uint32_t state;                 /*   0 GS_SLOT_FREE / GS_SLOT_ACTIVE */
  uint32_t tenant_index;          /*   4 < tenant_slot_count */
  uint64_t generation;            /*   8 bumped each time the slot is claimed */
  uint64_t used_bytes;            /*  16 atomic: what this process holds */
  uint64_t inflight;              /*  24 atomic: nonzero while it updates used_bytes pairs */
  uint64_t peak_bytes;            /*  32 highest used_bytes (owner-written) */
  uint32_t pid;                   /*  40 as seen in its own PID namespace: display only */
  uint32_t rejoined;              /*  44 GS_REJOIN_*: it joined carrying memory it held in a ledger
                                     file lost under it; 0 for an ordinary join */
  uint64_t start_unix_ns;         /*  48 */
  char container_id[GS_LEDGER_CONTAINER_ID_BYTES]; /* 56 from its cgroup, NUL-terminated */
  uint64_t last_active_ns;        /* 128 atomic (relaxed, owner-written): CLOCK_MONOTONIC of its
                                     latest launch, copy or allocation */
  uint32_t waiting;               /* 136 its threads counted in header.waiting (under the lock) */
  uint32_t reserved1;             /* 140 */
  uint32_t sm_mode;               /* 144 GS_SM_MODE_*: how it confines its kernels */
  uint32_t reserved2;             /* 148 */
  /* Compute shares (version 4, carved from compute_reserved). */
  uint32_t compute_wanting;       /* 152 atomic: its threads waiting at the gate (a candidate while > 0) */
  uint32_t compute_reserved0;     /* 156 */
  uint64_t compute_want_since_ns; /* 160 when its oldest current wait began (FIFO among equals) */
  uint64_t compute_gpu_ns;        /* 168 atomic: turn time charged to it */
  uint64_t compute_throttled_ns;  /* 176 atomic: time its threads waited at the gate */
  uint8_t compute_reserved[72];   /* 184 zero */
  uint64_t swapped_out_bytes;     /* 256 atomic (owner-written): its bytes now in host staging,
                                     not in used_bytes */
  uint32_t swap_state;            /* 264 atomic (owner-written): GS_SWAP_* */
  uint32_t reserved3;             /* 268 */
  uint64_t swap_state_since_ns;   /* 272 atomic: CLOCK_MONOTONIC of its latest swap_state change */
  uint64_t staging_bytes;         /* 280 atomic: pinned host staging it holds */
  uint64_t swappable_bytes;       /* 288 atomic (owner-written): its resident bytes that can be
                                     swapped out (VMM-backed allocations) */
  uint8_t swap_reserved[80];      /* 296 zero: further swap fields come from here */
  uint64_t context_bytes;         /* 376 atomic (owner-written): its live contexts' own memory,
                                     within used_bytes (carved from swap_reserved within version 4) */
} GsLedgerProcess;

#ifdef __cplusplus
#define GS_LEDGER_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#else
#define GS_LEDGER_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#endif

GS_LEDGER_STATIC_ASSERT(sizeof(GsLedgerHeader) == GS_LEDGER_HEADER_BYTES, "header is 4 KiB");
GS_LEDGER_STATIC_ASSERT(offsetof(GsLedgerHeader, lock) == 128, "lock at 128");
GS_LEDGER_STATIC_ASSERT(offsetof(GsLedgerHeader, lock) % 64 == 0, "lock on its own line");
GS_LEDGER_STATIC_ASSERT(offsetof(GsLedgerHeader, repairs) % 8 == 0, "atomics 8-aligned");
GS_LEDGER_STATIC_ASSERT(sizeof(GsLedgerTenant) == GS_LEDGER_TENANT_SLOT_BYTES, "tenant slot");
GS_LEDGER_STATIC_ASSERT(offsetof(GsLedgerTenant, used_bytes) % 8 == 0, "atomics 8-aligned");
GS_LEDGER_STATIC_ASSERT(offsetof(GsLedgerTenant, name) == 64, "tenant name at 64");
GS_LEDGER_STATIC_ASSERT(sizeof(GsLedgerProcess) == GS_LEDGER_PROCESS_SLOT_BYTES, "process slot");
GS_LEDGER_STATIC_ASSERT(offsetof(GsLedgerProcess, used_bytes) % 8 == 0, "atomics 8-aligned");
GS_LEDGER_STATIC_ASSERT(offsetof(GsLedgerProcess, inflight) % 8 == 0, "atomics 8-aligned");
GS_LEDGER_STATIC_ASSERT(offsetof(GsLedgerHeader, wake_seq) == 192, "futex word at 192");
GS_LEDGER_STATIC_ASSERT(offsetof(GsLedgerHeader, waiting) == 196, "waiting at 196");
GS_LEDGER_STATIC_ASSERT(offsetof(GsLedgerHeader, next_ticket) == 200, "next_ticket at 200");
GS_LEDGER_STATIC_ASSERT(offsetof(GsLedgerHeader, terminations) == 208, "terminations at 208");
GS_LEDGER_STATIC_ASSERT(offsetof(GsLedgerHeader, terminations_offset) == 216, "ring offset at 216");
GS_LEDGER_STATIC_ASSERT(offsetof(GsLedgerHeader, hidden_bytes) == 240, "hidden_bytes at 240");
GS_LEDGER_STATIC_ASSERT(offsetof(GsLedgerHeader, waiters) == 256, "waiter table at 256");
GS_LEDGER_STATIC_ASSERT(offsetof(GsLedgerHeader, sm_map_state) == 3328, "SM map at 3328");
GS_LEDGER_STATIC_ASSERT(offsetof(GsLedgerHeader, sm_live) == 3360, "live bits at 3360");
GS_LEDGER_STATIC_ASSERT(offsetof(GsLedgerHeader, sm_per_bit) == 3376, "SMs per bit at 3376");
GS_LEDGER_STATIC_ASSERT(offsetof(GsLedgerHeader, sm_gpc_of_bit) == 3504, "GPC map at 3504");
GS_LEDGER_STATIC_ASSERT(offsetof(GsLedgerHeader, compute_owner) == 3632, "turn owner at 3632");
GS_LEDGER_STATIC_ASSERT(offsetof(GsLedgerHeader, compute_seq) % 4 == 0, "futex word 4-aligned");
GS_LEDGER_STATIC_ASSERT(offsetof(GsLedgerHeader, compute_owner_generation) % 8 == 0, "atomics 8-aligned");
GS_LEDGER_STATIC_ASSERT(offsetof(GsLedgerHeader, compute_reserved) == 3696, "compute reserve at 3696");
GS_LEDGER_STATIC_ASSERT(offsetof(GsLedgerTenant, compute_share_bp) == 384, "compute share at 384");
GS_LEDGER_STATIC_ASSERT(offsetof(GsLedgerTenant, compute_gpu_ns) % 8 == 0, "atomics 8-aligned");
GS_LEDGER_STATIC_ASSERT(offsetof(GsLedgerTenant, compute_recent_ns) == 472, "compute recent at 472");
GS_LEDGER_STATIC_ASSERT(offsetof(GsLedgerTenant, compute_reserved) == 504, "compute reserve at 504");
GS_LEDGER_STATIC_ASSERT(offsetof(GsLedgerProcess, compute_wanting) == 152, "compute wanting at 152");
GS_LEDGER_STATIC_ASSERT(offsetof(GsLedgerProcess, compute_gpu_ns) % 8 == 0, "atomics 8-aligned");
GS_LEDGER_STATIC_ASSERT(offsetof(GsLedgerHeader, swaps_out) == 3824, "swap totals at 3824");
GS_LEDGER_STATIC_ASSERT(offsetof(GsLedgerHeader, swap_reserved) == 3856, "swap reserve at 3856");
GS_LEDGER_STATIC_ASSERT(offsetof(GsLedgerHeader, context_overhead_bytes) == 4064, "context overhead at 4064");
GS_LEDGER_STATIC_ASSERT(offsetof(GsLedgerHeader, context_overhead_state) == 4076, "its state at 4076");
GS_LEDGER_STATIC_ASSERT(offsetof(GsLedgerProcess, context_bytes) == 376, "process context bytes at 376");
GS_LEDGER_STATIC_ASSERT(offsetof(GsLedgerTenant, swap_quantum_ns) == 512, "tenant swap at 512");
GS_LEDGER_STATIC_ASSERT(offsetof(GsLedgerTenant, swap_ask_bytes) % 8 == 0, "atomics 8-aligned");
GS_LEDGER_STATIC_ASSERT(offsetof(GsLedgerTenant, swap_seq) % 4 == 0, "futex word 4-aligned");
GS_LEDGER_STATIC_ASSERT(offsetof(GsLedgerTenant, swap_reserved) == 600, "tenant swap reserve at 600");
GS_LEDGER_STATIC_ASSERT(offsetof(GsLedgerProcess, swapped_out_bytes) == 256, "process swap at 256");
GS_LEDGER_STATIC_ASSERT(offsetof(GsLedgerProcess, swap_reserved) == 296, "process swap reserve at 296");
GS_LEDGER_STATIC_ASSERT(offsetof(GsLedgerTenant, sm_asked) == 256, "SM slice at 256");
GS_LEDGER_STATIC_ASSERT(offsetof(GsLedgerTenant, sm_mask) == 264, "SM mask at 264");
GS_LEDGER_STATIC_ASSERT(offsetof(GsLedgerProcess, sm_mode) == 144, "sm_mode at 144");
GS_LEDGER_STATIC_ASSERT(offsetof(GsLedgerProcess, rejoined) == 44, "rejoined at 44");
GS_LEDGER_STATIC_ASSERT(sizeof(GsLedgerWaiter) == GS_LEDGER_WAITER_SLOT_BYTES, "waiter slot");
GS_LEDGER_STATIC_ASSERT(sizeof(GsLedgerTermination) == GS_LEDGER_TERMINATION_SLOT_BYTES, "termination slot");
GS_LEDGER_STATIC_ASSERT(offsetof(GsLedgerTermination, victim) == 64, "victim name at 64");
GS_LEDGER_STATIC_ASSERT(offsetof(GsLedgerTermination, requester) == 192, "requester name at 192");
GS_LEDGER_STATIC_ASSERT(offsetof(GsLedgerTenant, resolver) == 192, "resolver at 192");
GS_LEDGER_STATIC_ASSERT(offsetof(GsLedgerTenant, terminate) == 216, "terminate at 216");
GS_LEDGER_STATIC_ASSERT(offsetof(GsLedgerTenant, terminate) % 8 == 0, "atomics 8-aligned");
GS_LEDGER_STATIC_ASSERT(offsetof(GsLedgerTenant, wait_ns_total) == 232, "wait_ns_total at 232");
GS_LEDGER_STATIC_ASSERT(offsetof(GsLedgerProcess, last_active_ns) == 128, "last_active_ns at 128");
GS_LEDGER_STATIC_ASSERT(offsetof(GsLedgerProcess, last_active_ns) % 64 == 0, "own cache line");
GS_LEDGER_STATIC_ASSERT(GS_LEDGER_TERMINATIONS_OFFSET == 241664u, "ring after the process slots");
GS_LEDGER_STATIC_ASSERT(GS_LEDGER_FILE_BYTES == 251904u, "file size");

#endif /* GPUSHARE_LEDGER_ABI_H_ */
