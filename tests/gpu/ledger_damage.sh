#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# GPU check of tenants living through damage to their ledger file (README: When the ledger file
# is damaged, removed or replaced): two PyTorch tenants, one busy in a matmul loop and one idle,
# while the ledger is truncated to 0 bytes and later removed. One call, about a minute:
#   bash tests/gpu/ledger_damage.sh [STAGE_DIR]     (needs STAGE/lib/libgpushare.so, STAGE/bin/gpushare-smi)
set -u
STAGE=$(cd "${1:-.stage}" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
LOGS=${OUT:-/tmp/gpushare-out}/ledger_damage
# shellcheck disable=SC2034  # rows.sh reads it
BUDGET=${GS_LEDGER_DAMAGE_BUDGET:-240}
mkdir -p "$LOGS"
# shellcheck source=rows.sh
. "$HERE/rows.sh"
export PYTHONUNBUFFERED=1 LD_PRELOAD=$STAGE/lib/libgpushare.so GPUSHARE_LEDGER_DIR=/tmp/gpushare-ledger-damage-$$
SMI="$STAGE/bin/gpushare-smi --ledger-dir $GPUSHARE_LEDGER_DIR"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$GPUSHARE_LEDGER_DIR"
}
trap cleanup EXIT

start() {  # NAME REQUEST LIMIT HOLD_GIB busy|idle
  GPUSHARE_TENANT=$1 GPUSHARE_MEM_REQUEST=$2 GPUSHARE_MEM_LIMIT=$3 \
    python3 "$HERE/ledger_worker.py" "$1" "$4" "$5" "$LOGS/$1.ask" >"$LOGS/$1.log" 2>"$LOGS/$1.err" &
  pids+=($!)
  echo $! >"$LOGS/$1.pid"
}
wait_for() {  # NAME PATTERN SECONDS
  for _ in $(seq 1 $(($3 * 10))); do grep -q "$2" "$LOGS/$1.log" 2>/dev/null && return 0; sleep 0.1; done
  return 1
}
alive() { kill -0 "$(cat "$LOGS/$1.pid")" 2>/dev/null && ! grep -q '^State:.*zombie' "/proc/$(cat "$LOGS/$1.pid")/status" 2>/dev/null; }
ask() {  # NAME GIB: GOT or OOM
  local n
  n=$(grep -c "ASK" "$LOGS/$1.log")
  echo "$2" >"$LOGS/$1.ask"
  kill -USR1 "$(cat "$LOGS/$1.pid")"
  for _ in $(seq 1 100); do (($(grep -c "ASK" "$LOGS/$1.log") > n)) && break; sleep 0.1; done
  grep "ASK" "$LOGS/$1.log" | tail -n1 | awk '{print $4}'
}
used_gib() {  # TENANT: its use in the ledger now, in GiB ("" when the ledger is unreadable)
  $SMI --json 2>/dev/null | python3 -c "
import json, sys
d = json.load(sys.stdin)
for l in d['ledgers']:
    for t in l['tenants']:
        if t['name'] == '$1': print(f\"{t['used_bytes'] / 2**30:.2f}\")"
}
rejoined() {  # TENANT: the rejoined reasons of its live processes
  $SMI --json 2>/dev/null | python3 -c "
import json, sys
d = json.load(sys.stdin)
print(' '.join(p['rejoined'] for l in d['ledgers'] for t in l['tenants'] if t['name'] == '$1'
               for p in t['processes'] if p['alive']))"
}

echo "== GPU: $(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader)"
start a 8Gi 16Gi 12 busy
start b 4Gi 4Gi 1 idle
wait_for a READY 120 && wait_for b READY 120
record start "$(grep -q READY "$LOGS/a.log" && grep -q READY "$LOGS/b.log" && echo PASS || echo FAIL)" \
  "a holds 12 GiB (request 8, limit 16, busy), b holds 1 GiB (request 4, limit 4, idle)"
sleep 1
ledgers=("$GPUSHARE_LEDGER_DIR"/gpushare-*.ledger)
LEDGER=${ledgers[0]}
a_before=$(used_gib a)
$SMI >"$LOGS/smi-before.txt" 2>&1

truncate -s 0 "$LEDGER"
sleep 2
st=PASS; alive a || st=FAIL; alive b || st=FAIL
record truncate0_alive "$st" "a $(alive a && echo alive || echo DEAD), b $(alive b && echo alive || echo DEAD) 2 s after truncate -s 0"
iters=$(grep -c "ITER" "$LOGS/a.log"); sleep 2
wrong=$(grep -c "WRONG" "$LOGS/a.log")
record truncate0_computes "$( (($(grep -c ITER "$LOGS/a.log") > iters)) && ((wrong == 0)) && echo PASS || echo FAIL)" \
  "a's matmul loop went on ($(grep -c ITER "$LOGS/a.log") reports, $wrong wrong)"
a_after=$(used_gib a)
near() { [[ -n $1 && -n $2 ]] && python3 -c "import sys; sys.exit(abs($1 - $2) > 0.1)"; }
record truncate0_healed "$(near "$a_before" "$a_after" && echo PASS || echo FAIL)" \
  "a's use in the ledger at the path: $a_before GiB before, ${a_after:-unreadable} GiB after"
record truncate0_rejoined "$([[ $(rejoined a) =~ (truncated|replaced) && $(rejoined b) =~ (truncated|replaced) ]] && echo PASS || echo FAIL)" \
  "a: $(rejoined a); b: $(rejoined b)"
said=$(grep -c "was truncated\|was replaced" "$LOGS/a.err")
record truncate0_said_once "$( ((said == 1)) && echo PASS || echo FAIL)" "a's stderr: $(grep -m1 'gpushare: the ledger' "$LOGS/a.err" | cut -c1-160)"
record truncate0_limit "$([[ $(ask a 6) == OOM && $(ask a 2) == GOT ]] && echo PASS || echo FAIL)" \
  "a (12 GiB and its context, limit 16): 6 GiB more refused, 2 GiB granted"
# 80 GB: usable ~79 GiB; requests 8 + 4, a's burst ~6.5: a newcomer's 66 GiB cannot be guaranteed
# (on the empty ledger a truncation used to leave, it was).
GPUSHARE_TENANT=c GPUSHARE_MEM_REQUEST=66Gi GPUSHARE_MEM_LIMIT=66Gi timeout 120 \
  python3 -c "import torch; torch.zeros(1, device='cuda'); print('ADMITTED')" >"$LOGS/c.log" 2>"$LOGS/c.err"
record truncate0_newcomer "$(grep -q ADMITTED "$LOGS/c.log" && echo FAIL || echo PASS)" \
  "c asking 66 GiB: $(if grep -q ADMITTED "$LOGS/c.log"; then echo admitted; else grep -m1 -o 'can guarantee only [0-9]*' "$LOGS/c.err"; fi)"
$SMI >"$LOGS/smi-after-truncate.txt" 2>&1

rm -f "$LEDGER"
sleep 1
record rm_rejoined "$([[ -f $LEDGER && $(rejoined b) == removed && $(used_gib b) == 1.* ]] && echo PASS || echo FAIL)" \
  "after rm: ledger $([[ -f $LEDGER ]] && echo back || echo missing), b: $(rejoined b), $(used_gib b) GiB"
$SMI >"$LOGS/smi-after-rm.txt" 2>&1
record alive_at_end "$(alive a && alive b && echo PASS || echo FAIL)" "both tenants alive"
print_rows "gpushare ledger damage on the GPU"
