/* The per-GPU shared-memory ledger: the file every gpushare process on a node maps to share one
 * physical GPU among tenants (request/limit). C-compatible and versioned; read by gpushare-smi
 * and any other tool without gpushare's code.
 *
 * File: <dir>/gpushare-<uuid as 32 lowercase hex>.ledger, 0666, in a 01777 directory (default
 * /var/run/gpushare). Layout: one GsLedgerHeader (4 KiB), then tenant_slot_count GsLedgerTenant
 * at tenant_slots_offset, then process_slot_count GsLedgerProcess at process_slots_offset;
 * file_bytes in all. Only fixed-width integers and char arrays; every hole is a named reserved
 * field (zero); offsets are pinned below and in tests/quota/ledger_test.cpp.
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
 */
#ifndef GPUSHARE_LEDGER_ABI_H_
#define GPUSHARE_LEDGER_ABI_H_

#include <stddef.h>
#include <stdint.h>

#define GS_LEDGER_MAGIC "GPUSHLDG" /* 8 bytes, no NUL stored */
#define GS_LEDGER_ABI_VERSION 1u
#define GS_LEDGER_INITIALIZED 0x54494E49u /* "INIT": the creator finished, before link() */
#define GS_LEDGER_HEADER_BYTES 4096u
#define GS_LEDGER_TENANT_SLOT_BYTES 256u
#define GS_LEDGER_PROCESS_SLOT_BYTES 256u
#define GS_LEDGER_TENANT_SLOTS 64u
#define GS_LEDGER_PROCESS_SLOTS 512u
#define GS_LEDGER_LOCK_BYTES 64u /* pthread_mutex_t is 40 bytes on x86-64, 48 on aarch64 */
#define GS_LEDGER_NAME_BYTES 128u
#define GS_LEDGER_CONTAINER_ID_BYTES 72u
#define GS_LEDGER_FILE_BYTES                                              \
  (GS_LEDGER_HEADER_BYTES + GS_LEDGER_TENANT_SLOTS * GS_LEDGER_TENANT_SLOT_BYTES + \
   GS_LEDGER_PROCESS_SLOTS * GS_LEDGER_PROCESS_SLOT_BYTES)

/* Slot states. */
#define GS_SLOT_FREE 0u
#define GS_SLOT_ACTIVE 1u
/* GsLedgerTenant.flags */
#define GS_TENANT_BEST_EFFORT 1u /* admitted with request 0: its asked request did not fit */
/* GsLedgerTenant.used_bytes: set while the lock holder recounts the tenant; an atomic update
 * that sees it backs off to the locked path. */
#define GS_TENANT_USED_FROZEN (1ull << 63)

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
  uint8_t reserved[GS_LEDGER_HEADER_BYTES - 192]; /* 192 zero; new fields come from here */
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
  uint8_t reserved[64];           /* 192 */
} GsLedgerTenant;

typedef struct GsLedgerProcess {
  uint32_t state;                 /*   0 GS_SLOT_FREE / GS_SLOT_ACTIVE */
  uint32_t tenant_index;          /*   4 < tenant_slot_count */
  uint64_t generation;            /*   8 bumped each time the slot is claimed */
  uint64_t used_bytes;            /*  16 atomic: what this process holds */
  uint64_t inflight;              /*  24 atomic: nonzero while it updates used_bytes pairs */
  uint64_t peak_bytes;            /*  32 highest used_bytes (owner-written) */
  uint32_t pid;                   /*  40 as seen in its own PID namespace: display only */
  uint32_t reserved0;             /*  44 */
  uint64_t start_unix_ns;         /*  48 */
  char container_id[GS_LEDGER_CONTAINER_ID_BYTES]; /* 56 from its cgroup, NUL-terminated */
  uint8_t reserved[128];          /* 128 */
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
GS_LEDGER_STATIC_ASSERT(GS_LEDGER_FILE_BYTES == 151552u, "file size");

#endif /* GPUSHARE_LEDGER_ABI_H_ */
