#!/usr/bin/env bash
# gpushare overhead benchmark: the same programs without and with the library, interleaved
# (without, with, without, with), one table at the end. See tests/gpu/README.md.
#
#   bash bench/run.sh [STAGE_DIR]     (default .stage; needs STAGE_DIR/lib/libgpushare.so)
#
# "with" = LD_PRELOAD=STAGE_DIR/lib/libgpushare.so GPUSHARE_MEM_LIMIT=60Gi (default log level).
# Logs and metrics.tsv go to $OUT/bench (or /tmp/gpushare-out/bench). Exit status 0 iff every
# metric met its target. Knobs (env): GS_BENCH_BUDGET (seconds, default 180), GS_BENCH_LAUNCHES
# (200000), GS_BENCH_PAIRS (2000), GS_BENCH_ITERS (2000), GS_BENCH_CPU (core to pin the driver
# benchmark to, default 2; "none" to not pin), NVCC, PYTHON.
set -u
set -o pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STAGE_ARG=${1:-.stage}
STAGE=$(cd "$STAGE_ARG" 2>/dev/null && pwd || echo "$STAGE_ARG")
LIB=$STAGE/lib/libgpushare.so
LOGS=${OUT:-/tmp/gpushare-out}/bench
mkdir -p "$LOGS"
BUILD=$(mktemp -d /tmp/gpushare-bench.XXXXXX)
BUDGET=${GS_BENCH_BUDGET:-180}
LAUNCHES=${GS_BENCH_LAUNCHES:-200000}
PAIRS=${GS_BENCH_PAIRS:-2000}
ITERS=${GS_BENCH_ITERS:-2000}
CPU=${GS_BENCH_CPU:-2}
PY=${PYTHON:-python3}
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
CUDA_HOME_GUESS=$(dirname "$(dirname "$(readlink -f "$NVCC")")")
METRICS=$LOGS/metrics.tsv
: >"$METRICS"

export PYTHONUNBUFFERED=1
for v in $(compgen -e | grep -E '^(GPUSHARE_|PYTORCH_CUDA_ALLOC_CONF$|LD_PRELOAD$|CUDA_VISIBLE_DEVICES$)'); do
  unset "$v"
done

echo "=== gpushare bench: stage=$STAGE logs=$LOGS budget=${BUDGET}s"
NOTES=()
[[ -f $LIB ]] || NOTES+=("library $LIB not found: 'with' runs are not preloaded")

tmo() {
  local want=$1 left=$((BUDGET - SECONDS))
  ((left < 5)) && left=5
  ((want < left)) && echo "$want" || echo "$left"
}

PIN=()
if [[ $CPU != none ]] && command -v taskset >/dev/null 2>&1 && ((CPU < $(nproc))); then
  PIN=(taskset -c "$CPU")
fi

# ---- build -------------------------------------------------------------------------------------
BIN=$BUILD/launch_alloc_bench
if ! timeout -k 5 "$(tmo 240)" "$NVCC" -O2 -arch=sm_90 "$SCRIPT_DIR/launch_alloc_bench.cu" -o "$BIN" \
  -L"$CUDA_HOME_GUESS/lib64/stubs" -L"$CUDA_HOME_GUESS/targets/x86_64-linux/lib/stubs" \
  -lcuda -ldl >"$LOGS/build.log" 2>&1; then
  NOTES+=("build of launch_alloc_bench failed: $(grep -m1 -i error "$LOGS/build.log" | cut -c1-150)")
fi

# bench_run LABEL MODE ROUND TIMEOUT CMD... : runs, appends "metric mode round value" rows.
bench_run() {
  local label=$1 mode=$2 round=$3 t=$4
  shift 4
  local log=$LOGS/${label}_${mode}_${round}.log
  if ((SECONDS >= BUDGET)); then
    NOTES+=("$label $mode #$round skipped: time budget used up")
    echo "  $label $mode #$round: SKIPPED (budget)"
    return
  fi
  local cmd=("$@")
  if [[ $mode == with ]]; then
    cmd=(env LD_PRELOAD="$LIB" GPUSHARE_MEM_LIMIT=60Gi "$@")
  fi
  local t0=$SECONDS rc
  timeout -k 5 "$(tmo "$t")" "${cmd[@]}" >"$log" 2>&1 </dev/null
  rc=$?
  awk -v m="$mode" -v r="$round" '$1 == "METRIC" {print $2, m, r, $3}' "$log" >>"$METRICS"
  if ((rc != 0)); then
    NOTES+=("$label $mode #$round failed rc=$rc: $(grep -v '^METRIC' "$log" | tail -n1 | cut -c1-120)")
  fi
  echo "  $label $mode #$round: rc=$rc $((SECONDS - t0))s"
}

for round in 1 2; do
  for mode in without with; do
    if [[ -x $BIN ]]; then
      bench_run driver "$mode" "$round" 45 ${PIN[@]+"${PIN[@]}"} "$BIN" "$LAUNCHES" "$PAIRS"
    fi
  done
done
for round in 1 2; do
  for mode in without with; do
    bench_run torch "$mode" "$round" 60 "$PY" "$SCRIPT_DIR/torch_loop.py" --iters "$ITERS"
  done
done
rm -rf "$BUILD"

# ---- table (last) ------------------------------------------------------------------------------
{
  echo
  echo "================ gpushare overhead (${SECONDS}s; logs: $LOGS) ================"
  for n in ${NOTES[@]+"${NOTES[@]}"}; do echo "NOTE: $n"; done
  awk '
    { v[$1 " " $2] += $4; c[$1 " " $2]++; runs[$1 " " $2] = runs[$1 " " $2] (runs[$1 " " $2] == "" ? "" : "/") $4 }
    function avg(k) { return c[k] ? v[k] / c[k] : "" }
    function row(m, label, kind,    a, b, d, pct, ok, tgt, s) {
      a = avg(m " without"); b = avg(m " with")
      if (a == "" || b == "") {
        printf "%-34s %12s %12s %22s  %-30s %s\n", label, (a == "" ? "n/a" : sprintf("%.1f", a)),
               (b == "" ? "n/a" : sprintf("%.1f", b)), "", "", "NO DATA"; bad++; return
      }
      d = b - a; pct = a != 0 ? 100 * d / a : 0
      if (kind == "launch") { ok = (d <= 40 && pct <= 1); tgt = "<= 40 ns and <= 1%" }
      else if (kind == "alloc") { ok = (d <= 1000); tgt = "<= 1000 ns" }
      else { ok = (b >= 0.99 * a); tgt = ">= 99% of native"; d = b - a; pct = a != 0 ? 100 * (b - a) / a : 0 }
      s = sprintf("%+.1f (%+.2f%%)", d, pct)
      if (kind == "torch") s = sprintf("%+.1f it/s (%.2f%%)", d, a != 0 ? 100 * b / a : 0)
      printf "%-34s %12.1f %12.1f %22s  %-30s %s\n", label, a, b, s, tgt, ok ? "PASS" : "FAIL"
      detail = detail sprintf("  %-32s without %s | with %s\n", label, runs[m " without"], runs[m " with"])
      if (!ok) bad++
    }
    END {
      printf "%-34s %12s %12s %22s  %-30s %s\n", "metric", "without", "with", "added (abs, %)", "target", "verdict"
      row("launch_direct_ns",       "launch ns (direct, median)",       "launch")
      row("launch_gpa_ns",          "launch ns (cuGetProcAddress)",     "launch")
      row("launch_direct_batch_ns", "launch ns (direct, batched)",      "launch")
      row("launch_gpa_batch_ns",    "launch ns (gpa, batched)",         "launch")
      row("alloc_free_direct_ns",   "alloc+free 1MiB ns (direct)",      "alloc")
      row("alloc_free_gpa_ns",      "alloc+free 1MiB ns (gpa)",         "alloc")
      row("torch_iters_per_s",      "torch MLP fp16 b32 it/s",          "torch")
      if (c["preloaded with"] && v["preloaded with"] < c["preloaded with"]) print "WARNING: some driver \"with\" runs did not have libgpushare loaded"
      if (v["preloaded without"] > 0 || v["torch_preloaded without"] > 0) print "WARNING: some \"without\" runs had libgpushare loaded"
      if (c["torch_preloaded with"] && v["torch_preloaded with"] < c["torch_preloaded with"]) print "WARNING: some torch \"with\" runs did not have libgpushare loaded"
      printf "per-run values (run1/run2):\n%s", detail
      printf "BENCH VERDICT: %s\n", bad ? bad " metric(s) missed target or lack data" : "all targets met"
      exit bad ? 1 : 0
    }' "$METRICS"
} | tee "$LOGS/summary.txt"
