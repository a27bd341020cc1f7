#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# GPU check of compute shares without MPS: PyTorch tenants running bf16 matmul loops, and a
# latency-sensitive small-batch loop, at 70/30, 50/50 and 80/10/10, side by side with no
# limiter; several quanta for tuning; a CUDA-graph pair. Each tenant's achieved share is its
# matmul throughput over the same run divided by its throughput alone (GPU time is what it
# got: alone it has all of it), normalised over the tenants. Also gpushare-smi's own figures.
#   bash tests/gpu/compute_shares.sh [STAGE]      (STAGE from tests/gpu/stage.sh build .stage)
#   COMPUTE_QUICK=1: the graded rows at the default quantum; COMPUTE_QUICK=latency: latency only;
#   COMPUTE_QUICK=5050: 50/50 only.
# About 6 minutes (16 runs of 12 s start-up + COMPUTE_SECS=10 s). Logs under $OUT/compute_shares.
set -u
STAGE=$(cd "${1:-.stage}" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
OUTD=${OUT:-/tmp/gpushare-out}/compute_shares
mkdir -p "$OUTD"
export PYTHONUNBUFFERED=1
SECS=${COMPUTE_SECS:-10}
ROWS="$OUTD/rows.txt"; : >"$ROWS"
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; pids=(); }
trap cleanup EXIT
row() { echo "$1 | $2 | $3 | $4" >>"$ROWS"; echo "ROW $1 | $2 | $3 | $4"; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUTD/gpu.txt"
pgrep -f nvidia-cuda-mps-control >/dev/null && echo "WARNING: MPS daemon running; this check is for no MPS"

# run NAME PRELOAD(0/1) "TENANT:SHARE:KIND[:N[:PERIOD[:graph]]] ..." [extra env]
run() {
  local name=$1 preload=$2 specs=$3; shift 3
  local dir=/tmp/gs-compute-$name-$$; rm -rf "$dir"
  local go; go=$(python3 -c "import time; print(time.time() + 12)")
  local i=0; pids=()
  for spec in $specs; do
    IFS=: read -r tenant share kind n period graph <<<"$spec"
    local envs=(GO_AT=$go GPUSHARE_TENANT=$tenant GPUSHARE_LEDGER_DIR=$dir)
    [ "$preload" = 1 ] && envs+=(LD_PRELOAD=$STAGE/lib/libgpushare.so)
    [ "$share" != none ] && envs+=(GPUSHARE_COMPUTE=$share)
    env "${envs[@]}" "$@" timeout $((SECS + 90)) python3 "$HERE/compute_worker.py" "$kind" "$SECS" "${n:-8192}" "${period:-20}" "${graph:-}" \
      >"$OUTD/$name.$tenant.json" 2>"$OUTD/$name.$tenant.err" &
    pids+=($!); i=$((i + 1))
  done
  sleep $((12 + SECS / 2))  # mid-run: gpushare-smi while the tenants are busy
  [ "$preload" = 1 ] && timeout 10 "$STAGE/bin/gpushare-smi" --ledger-dir "$dir" >"$OUTD/$name.smi.txt" 2>&1
  [ "$preload" = 1 ] && timeout 10 "$STAGE/bin/gpushare-smi" --ledger-dir "$dir" --json >"$OUTD/$name.smi.json" 2>&1
  for p in "${pids[@]}"; do wait "$p"; done; pids=()
  for f in "$OUTD/$name".*.err; do grep -h "gpushare\|Error\|error" "$f" | head -3; done
}
get() { python3 -c "import json,sys; d=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1]); print(d.get(sys.argv[2], 'nan'))" "$1" "$2" 2>/dev/null || echo nan; }

# Alone: the reference throughput of each kind (no library, and with it at 30%: a lone tenant is untouched).
run alone 0 "x:none:matmul"
run alone_lat 0 "x:none:latency:2048:20"
QUICK=${COMPUTE_QUICK:-0}  # 1: the graded rows only, at the default quantum; latency: the latency rows only
[ "$QUICK" = latency ] && QUICK=1 && LATENCY_ONLY=1
[ "$QUICK" = 5050 ] && QUICK=1 && FIFTY_ONLY=1
[ "$QUICK" = 1 ] || run alone_lib 1 "x:30%:matmul"
ALONE=$(get "$OUTD/alone.x.json" tflops); ALONE_P50=$(get "$OUTD/alone_lat.x.json" p50_ms)
row "alone matmul TFLOP/s (no library)" "$ALONE" "-" INFO
row "alone latency p50/p99 ms (no library)" "$ALONE_P50/$(get "$OUTD/alone_lat.x.json" p99_ms)" "-" INFO
if [ "$QUICK" != 1 ]; then
run strict 1 "x:30%:matmul" GPUSHARE_COMPUTE_STRICT=true
LIB=$(get "$OUTD/alone_lib.x.json" tflops)
row "alone at 30% (not strict): TFLOP/s vs no library" "$LIB" ">= 0.97 x $ALONE" \
  "$(python3 -c "print('PASS' if float('$LIB') >= 0.97*float('$ALONE') else 'FAIL')" 2>/dev/null || echo FAIL)"
ST=$(get "$OUTD/strict.x.json" tflops)
row "alone strict 30%: share of alone" "$(python3 -c "print(round(100*float('$ST')/float('$ALONE'),1))" 2>/dev/null)%" "30 +- 5" \
  "$(python3 -c "print('PASS' if abs(100*float('$ST')/float('$ALONE')-30)<=5 else 'FAIL')" 2>/dev/null || echo FAIL)"
fi

# shares NAME "a:70% b:30%" [env]: achieved = tflops / alone, normalised
shares() {
  local name=$1 specs=$2; shift 2
  run "$name" 1 "$specs" "$@"
  python3 - "$OUTD" "$name" "$ALONE" "$specs" <<'PY' | tee -a "$ROWS"
import json, sys
outd, name, alone, specs = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4].split()
got = {}
for s in specs:
    t, share = s.split(":")[:2]
    try:
        got[t] = (float(share.rstrip("%")), json.loads(open(f"{outd}/{name}.{t}.json").read().strip().splitlines()[-1])["tflops"] / alone)
    except Exception:
        got[t] = (float(share.rstrip("%")), float("nan"))
tot = sum(g for _, g in got.values())
for t, (share, g) in got.items():
    pct = 100 * g / tot if tot else float("nan")
    ok = abs(pct - share) <= 5
    print(f"{name} {t} achieved share % (GPU use {100*tot:.0f}% of alone) | {pct:.1f} | {share:.0f} +- 5 | {'PASS' if ok else 'FAIL'}")
PY
  python3 - "$OUTD/$name.smi.json" <<'PY' | tee -a "$ROWS"
import json, sys
try:
    d = json.load(open(sys.argv[1]))
    for g in d if isinstance(d, list) else d.get("ledgers", [d]):
        for t in g.get("tenants", []):
            c = t.get("compute", {})
            print(f"  smi {t['name']}: recent GPU {c.get('recent_gpu_percent',0):.1f}% of the window, throttled {c.get('throttled_ns_total',0)/1e9:.1f} s, turns {c.get('turns')} | INFO | - | INFO")
except Exception as e:
    print(f"  smi unreadable: {e} | INFO | - | INFO")
PY
}
if [ "${LATENCY_ONLY:-0}" != 1 ]; then
# No limiter: how the driver splits two tenants by itself.
[ "$QUICK" = 1 ] || run nolimit2 0 "a:none:matmul b:none:matmul"
[ "$QUICK" = 1 ] || row "no limiter a/b TFLOP/s" "$(get "$OUTD/nolimit2.a.json" tflops)/$(get "$OUTD/nolimit2.b.json" tflops)" "-" INFO
if [ "${FIFTY_ONLY:-0}" = 1 ]; then
  shares s5050 "a:50%:matmul b:50%:matmul"
else
shares s7030 "a:70%:matmul b:30%:matmul"
shares s5050 "a:50%:matmul b:50%:matmul"
shares s801010 "a:80%:matmul b:10%:matmul c:10%:matmul"
if [ "$QUICK" = 1 ]; then QUANTA=""; else QUANTA="2ms 10ms 20ms"; fi
for q in $QUANTA; do shares "s7030_q$q" "a:70%:matmul b:30%:matmul" GPUSHARE_COMPUTE_QUANTUM=$q; done
shares s7030_graph "a:70%:matmul:8192:20:graph b:30%:matmul:8192:20:graph"
fi  # FIFTY_ONLY

fi  # LATENCY_ONLY

if [ "${FIFTY_ONLY:-0}" != 1 ]; then
# Latency: a small-batch loop (within its 30% share) next to a matmul hog, without and with shares,
# twice in turn (A B A B): the median moves by a few percent from run to run, so the verdict is
# on the two runs' mean.
run lat_nolimit 0 "h:none:matmul l:none:latency:2048:20"
run lat_share 1 "h:70%:matmul l:30%:latency:2048:20"
run lat_nolimit2 0 "h:none:matmul l:none:latency:2048:20"
run lat_share2 1 "h:70%:matmul l:30%:latency:2048:20"
P50N=$(get "$OUTD/lat_nolimit.l.json" p50_ms); P99N=$(get "$OUTD/lat_nolimit.l.json" p99_ms)
P50S=$(get "$OUTD/lat_share.l.json" p50_ms); P99S=$(get "$OUTD/lat_share.l.json" p99_ms)
P50N2=$(get "$OUTD/lat_nolimit2.l.json" p50_ms); P50S2=$(get "$OUTD/lat_share2.l.json" p50_ms)
row "latency p50 ms: no limiter / shares 70-30 (two runs each)" "$P50N, $P50N2 / $P50S, $P50S2" "shares <= 1.01 x no limiter (means)" \
  "$(python3 -c "print('PASS' if float('$P50S')+float('$P50S2') <= 1.01*(float('$P50N')+float('$P50N2')) else 'FAIL')" 2>/dev/null || echo FAIL)"
row "latency p99 ms: no limiter / shares 70-30" "$P99N, $(get "$OUTD/lat_nolimit2.l.json" p99_ms) / $P99S, $(get "$OUTD/lat_share2.l.json" p99_ms)" "-" INFO
row "hog TFLOP/s: no limiter / shares 70-30" "$(get "$OUTD/lat_nolimit.h.json" tflops), $(get "$OUTD/lat_nolimit2.h.json" tflops) / $(get "$OUTD/lat_share.h.json" tflops), $(get "$OUTD/lat_share2.h.json" tflops)" "-" INFO
# The same without the express lane: every request waits for the turn (the hog's drain).
run lat_share_noexpress 1 "h:70%:matmul l:30%:latency:2048:20" GPUSHARE_COMPUTE_EXPRESS=0%
row "latency p50/p99 ms, express off (GPUSHARE_COMPUTE_EXPRESS=0%)" "$(get "$OUTD/lat_share_noexpress.l.json" p50_ms) / $(get "$OUTD/lat_share_noexpress.l.json" p99_ms)" "-" INFO
fi  # FIFTY_ONLY
cat "$OUTD/lat_share.smi.txt" 2>/dev/null | head -20

echo; echo "== compute shares (name | measured | target | verdict)"
cat "$ROWS"
# One archive instead of many files (the device tool returns a limited number of files).
if [ -n "${OUT:-}" ]; then tar -czf "$OUT/compute_shares_logs.tgz" -C "$OUTD" . && rm -rf "$OUTD"; fi
