#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# GPU check of the collision resolvers: two PyTorch tenants bursting into the same memory, under
# wait (no OOM; the waiter resumes when the other frees) and under priority (the lower-priority
# tenant is terminated, the other's allocation then succeeds).   bash tests/gpu/resolvers.sh [STAGE]
set -u
STAGE=$(cd "${1:-.stage}" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
OUTD=${OUT:-/tmp/gpushare-out}/resolvers
mkdir -p "$OUTD"
export PYTHONUNBUFFERED=1 LD_PRELOAD=$STAGE/lib/libgpushare.so
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; pids=(); }
trap cleanup EXIT

start() {  # LOG TENANT REQUEST LIMIT RESOLVER PRIORITY ARGS...
  local log=$1 tenant=$2 req=$3 lim=$4 res=$5 prio=$6
  shift 6
  GPUSHARE_TENANT=$tenant GPUSHARE_MEM_REQUEST=$req GPUSHARE_MEM_LIMIT=$lim GPUSHARE_RESOLVER=$res \
    GPUSHARE_PRIORITY=$prio GPUSHARE_WAIT_TIMEOUT=40s GPUSHARE_KILL_GRACE=3s GPUSHARE_LOG_LEVEL=info \
    python3 "$HERE/resolver_worker.py" "$log" "$@" >"$OUTD/$log.log" 2>"$OUTD/$log.err" &
  pids+=($!)
}
wait_for() {  # LOG PATTERN SECONDS
  for _ in $(seq 1 $(($3 * 20))); do grep -q "$2" "$OUTD/$1.log" 2>/dev/null && return 0; sleep 0.05; done
  echo "timeout waiting for '$2' in $1"; tail -3 "$OUTD/$1.err"; return 1
}
ms_between() { python3 -c "print(f'{($2 - $1) * 1000:.0f} ms')"; }

echo "== wait: a and b (request 20Gi, limit 60Gi each) burst into the same ~39 GiB pool"
export GPUSHARE_LEDGER_DIR=/tmp/gpushare-ledger-wait-$$
start wa a 20Gi 60Gi wait 0 hold 50 6
wait_for wa READY 60
start wb b 20Gi 60Gi wait 0 take 40
wait_for wb "DONE" 60
grep -h '^w[ab]:' "$OUTD/wa.log" "$OUTD/wb.log"
freeing=$(sed -n 's/.*FREEING at \([0-9.]*\).*/\1/p' "$OUTD/wa.log")
released=$(sed -n 's/.*RELEASED at \([0-9.]*\).*/\1/p' "$OUTD/wa.log")
resumed=$(sed -n 's/.*waited .* returned at \([0-9.]*\).*/\1/p' "$OUTD/wb.log" | head -1)
[ -n "$freeing" ] && [ -n "$resumed" ] && echo "wait: b's allocation returned $(ms_between "$freeing" "$resumed") after a called torch.cuda.empty_cache (its cudaFree of 50 GiB included); empty_cache returned after $(ms_between "$freeing" "$released")"
grep -h "after waiting\|waits for" "$OUTD/wb.err" | head -4
grep -q "ooms=0" "$OUTD/wb.log" && echo "wait: PASS b never raised OOM" || echo "wait: FAIL b raised OOM"
"$STAGE/bin/gpushare-smi" --ledger-dir "$GPUSHARE_LEDGER_DIR" | head -12
cleanup; sleep 2

echo "== priority: a (priority 0) holds 50 GiB; b (priority 10) takes 40 GiB"
export GPUSHARE_LEDGER_DIR=/tmp/gpushare-ledger-prio-$$
start pa a 20Gi 60Gi priority 0 hold 50 600
wait_for pa READY 60
start pb b 20Gi 60Gi priority 10 take 40
wait_for pb "DONE" 90
grep -h '^p[ab]:' "$OUTD/pa.log" "$OUTD/pb.log"
grep -h "terminat\|after waiting\|caught up" "$OUTD/pa.err" "$OUTD/pb.err" | head -6
sigterm=$(sed -n 's/.*SIGTERM at \([0-9.]*\).*/\1/p' "$OUTD/pa.log")
resumed=$(sed -n 's/.*waited .* returned at \([0-9.]*\).*/\1/p' "$OUTD/pb.log" | tail -1)
[ -n "$sigterm" ] && [ -n "$resumed" ] && echo "priority: b's allocation returned $(ms_between "$sigterm" "$resumed") after a got SIGTERM"
grep -q "ooms=0" "$OUTD/pb.log" && echo "priority: PASS b never raised OOM" || echo "priority: FAIL b raised OOM"
kill -0 "${pids[0]}" 2>/dev/null && echo "priority: FAIL a still alive" || echo "priority: PASS a was terminated"
"$STAGE/bin/gpushare-smi" --ledger-dir "$GPUSHARE_LEDGER_DIR"
