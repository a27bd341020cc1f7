#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# GPU check of co-tenancy through the ledger: three PyTorch processes of different tenants with
# request/limit on one GPU; bursts while memory is free, clean OOM when not; kill -9 of one gives
# its share back; gpushare-smi shows it all.   bash tests/gpu/tenants.sh [STAGE_DIR]
set -u
STAGE=$(cd "${1:-.stage}" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
OUTD=${OUT:-/tmp/gpushare-out}/tenants
mkdir -p "$OUTD"
export PYTHONUNBUFFERED=1 LD_PRELOAD=$STAGE/lib/libgpushare.so GPUSHARE_LEDGER_DIR=/tmp/gpushare-ledger-$$
SMI="$STAGE/bin/gpushare-smi --ledger-dir $GPUSHARE_LEDGER_DIR"
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; }
trap cleanup EXIT

start() {  # NAME REQUEST LIMIT MODE GIB [TENANT, default NAME]
  GPUSHARE_TENANT=${6:-$1} GPUSHARE_MEM_REQUEST=$2 GPUSHARE_MEM_LIMIT=$3 \
    python3 "$HERE/tenant_worker.py" "$1" "$4" "$5" >"$OUTD/$1.log" 2>"$OUTD/$1.err" &
  pids+=($!)
  echo $! >"$OUTD/$1.pid"
}
wait_ready() {  # NAME
  for _ in $(seq 1 600); do grep -q "^$1: READY" "$OUTD/$1.log" 2>/dev/null && return 0; sleep 0.1; done
  echo "$1 never got ready:"; cat "$OUTD/$1.err"; return 1
}

echo "== GPU: $(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader)"
echo "== tenants: a 20Gi/50Gi, b 20Gi/50Gi, c 10Gi/30Gi (requests 50 GiB of ~79 GiB usable)"
start a 20Gi 50Gi hold 45; wait_ready a; grep '^a:' "$OUTD/a.log"
start b 20Gi 50Gi hold 18; wait_ready b; grep '^b:' "$OUTD/b.log"
start c 10Gi 30Gi hold 30; wait_ready c; grep '^c:' "$OUTD/c.log"
echo "== b2 (tenant b, a second process) waits for 8 GiB: past b's request, and the burst pool is empty"
start b2 20Gi 50Gi waitfree 8 b; wait_ready b2; grep '^b2:' "$OUTD/b2.log"
sleep 2
echo "== gpushare-smi with a, b, c holding"
$SMI | tee "$OUTD/smi-before.txt"
$SMI --json >"$OUTD/smi-before.json"
nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader | tee "$OUTD/nvidia-smi-before.txt"

echo "== a is killed with SIGKILL"
grep -q "GOT" "$OUTD/b2.log" && echo "UNEXPECTED: b2 got memory while a held its burst"
kill_at=$(python3 -c 'import time; print(f"{time.time():.4f}")')
kill -9 "$(cat "$OUTD/a.pid")"
for _ in $(seq 1 300); do grep -q "GOT" "$OUTD/b2.log" && break; sleep 0.02; done
got_at=$(sed -n 's/.*GOT .* at \([0-9.]*\) .*/\1/p' "$OUTD/b2.log")
grep '^b2:' "$OUTD/b2.log"
if [ -n "$got_at" ]; then
  python3 -c "print(f'kill -9 of a -> b2 allocated its burst in {($got_at - $kill_at) * 1000:.0f} ms')"
else
  echo "FAIL: b2 never got its burst within 6 s of a's death"
fi
echo "== gpushare-smi after a's death"
$SMI | tee "$OUTD/smi-after.txt"
$SMI --json >"$OUTD/smi-after.json"
