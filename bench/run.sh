#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# gpushare overhead benchmark, one table at the end. See tests/gpu/README.md.
#
#   bash bench/run.sh [STAGE_DIR]     (default .stage; needs STAGE_DIR/lib/libgpushare.so)
#
# 1. Driver API, IN-PROCESS A/B (launch_alloc_bench.cu): one process under
#    LD_PRELOAD=STAGE_DIR/lib/libgpushare.so GPUSHARE_MEM_LIMIT=60Gi calls the driver's real
#    cuLaunchKernel / cuMemAlloc_v2 / cuMemFree_v2 (found from libcuda's ELF symbol table, not
#    dlsym) and gpushare's wrappers (from dlsym and from cuGetProcAddress_v2) in interleaved
#    blocks. Run GS_BENCH_DRIVER_RUNS times (separate processes); the table shows the median
#    over runs of each figure (per-run values below it).
# 2. PyTorch loop (torch_loop.py), separate processes without / with the library, interleaved
#    GS_BENCH_TORCH_ROUNDS times (order alternating); the table compares the medians.
#
# Logs, metrics.tsv and summary.txt go to $OUT/bench (or /tmp/gpushare-out/bench). Exit status 0
# iff every metric met its target. Knobs (env): GS_BENCH_BUDGET (seconds, default 180),
# GS_BENCH_BLOCKS (launch rounds, 1000), GS_BENCH_LAUNCHES_PER_BLOCK (200), GS_BENCH_ALLOC_BLOCKS
# (200), GS_BENCH_PAIRS_PER_BLOCK (20), GS_BENCH_DRIVER_RUNS (3), GS_BENCH_TORCH_ROUNDS (3),
# GS_BENCH_ITERS (torch iterations per timed run, 2000), GS_BENCH_CPU (core to pin the driver
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
BLOCKS=${GS_BENCH_BLOCKS:-1000}
PER_BLOCK=${GS_BENCH_LAUNCHES_PER_BLOCK:-200}
ABLOCKS=${GS_BENCH_ALLOC_BLOCKS:-200}
PAIRS=${GS_BENCH_PAIRS_PER_BLOCK:-20}
DRUNS=${GS_BENCH_DRIVER_RUNS:-3}
TROUNDS=${GS_BENCH_TORCH_ROUNDS:-3}
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
WITH=(env LD_PRELOAD="$LIB" GPUSHARE_MEM_LIMIT=60Gi)

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
if ! timeout -k 5 "$(tmo 240)" "$NVCC" -O2 -arch=sm_90 -std=c++17 "$SCRIPT_DIR/launch_alloc_bench.cu" \
  -o "$BIN" -L"$CUDA_HOME_GUESS/lib64/stubs" -L"$CUDA_HOME_GUESS/targets/x86_64-linux/lib/stubs" \
  -lcuda -ldl >"$LOGS/build.log" 2>&1; then
  NOTES+=("build of launch_alloc_bench failed: $(grep -m1 -i error "$LOGS/build.log" | cut -c1-150)")
fi

# bench_run LABEL MODE ROUND TIMEOUT CMD... : runs CMD (under the library if MODE is "with"),
# appends "METRIC name mode round value" and "ROW metric round real wrapper added lo hi paired"
# lines to metrics.tsv.
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
  [[ $mode == with ]] && cmd=("${WITH[@]}" "$@")
  local t0=$SECONDS rc
  timeout -k 5 "$(tmo "$t")" "${cmd[@]}" >"$log" 2>&1 </dev/null
  rc=$?
  awk -v m="$mode" -v r="$round" '
    $1 == "METRIC" { print "METRIC", $2, m, r, $3 }
    $1 == "ROW" { print "ROW", $2, r, $3, $4, $5, $6, $7, $8, $9, $10 }' "$log" >>"$METRICS"
  if ((rc != 0)); then
    local why
    why=$(grep -aE '^SETUP FAIL|failed' "$log" | head -n1)
    [[ -z $why ]] && why=$(grep -av '^METRIC' "$log" | tail -n1)
    NOTES+=("$label $mode #$round failed rc=$rc: ${why:0:160}")
  fi
  echo "  $label $mode #$round: rc=$rc $((SECONDS - t0))s $(grep -am1 '^LIBRARY' "$log" | cut -c1-100)"
}

# ---- 1. driver API, in-process A/B -------------------------------------------------------------
if [[ -x $BIN ]]; then
  for round in $(seq 1 "$DRUNS"); do
    bench_run driver with "$round" 60 ${PIN[@]+"${PIN[@]}"} "$BIN" "$BLOCKS" "$PER_BLOCK" "$ABLOCKS" "$PAIRS"
  done
  LOADED_LINE=$(grep -ah '^LIBRARY' "$LOGS"/driver_with_*.log 2>/dev/null | head -n1)
  grep -ah '^SETUP PASS \(cuLaunchKernel\|cuMemAlloc_v2\|cuMemFree_v2\|wrapper_cuLaunchKernel\)' \
    "$LOGS/driver_with_1.log" 2>/dev/null | cut -c1-400 | sed 's/^/    /'
fi

# ---- 2. torch loop, separate processes, interleaved --------------------------------------------
for round in $(seq 1 "$TROUNDS"); do
  if ((round % 2)); then order="without with"; else order="with without"; fi
  for mode in $order; do
    bench_run torch "$mode" "$round" 60 "$PY" "$SCRIPT_DIR/torch_loop.py" --iters "$ITERS"
  done
done
rm -rf "$BUILD"

# ---- table (last) ------------------------------------------------------------------------------
{
  echo
  echo "================ gpushare overhead (${SECONDS}s; logs: $LOGS) ================"
  for n in ${NOTES[@]+"${NOTES[@]}"}; do echo "NOTE: $n"; done
  echo "driver A/B: ${LOADED_LINE:-no driver run}"
  awk '
    function spread(s,    a, n, i, mn, mx) {
      n = split(s, a, " "); mn = a[1]; mx = a[1]
      for (i = 2; i <= n; i++) { if (a[i] + 0 < mn + 0) mn = a[i]; if (a[i] + 0 > mx + 0) mx = a[i] }
      return mn " " mx
    }
    function med(s,    a, n, i, j, t) {
      n = split(s, a, " ")
      for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
      if (n == 0) return ""
      return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    $1 == "ROW" {
      k = $2; n[k]++
      real[k] = real[k] " " $4; wrap[k] = wrap[k] " " $5; add[k] = add[k] " " $6; pd[k] = pd[k] " " $9
      if (!(k in lo) || $7 < lo[k]) lo[k] = $7
      if (!(k in hi) || $8 > hi[k]) hi[k] = $8
      if (!(k in plo) || $10 < plo[k]) plo[k] = $10
      if (!(k in phi) || $11 > phi[k]) phi[k] = $11
      runs[k] = runs[k] sprintf("#%s: real %.1f wrapper %.1f added %+.1f [%+.1f, %+.1f] paired %+.1f [%+.1f, %+.1f]; ", $3, $4, $5, $6, $7, $8, $9, $10, $11)
    }
    $1 == "METRIC" && $2 == "torch_iters_per_s" { tv[$3] = tv[$3] " " $5; tc[$3]++ }
    $1 == "METRIC" && $2 == "torch_preloaded" { tp[$3] += $5; tpc[$3]++ }
    $1 == "METRIC" && $2 == "preloaded" { dp += $5; dpc++ }
    $1 == "METRIC" && $2 == "launch_aa_ns" { aa = aa sprintf(" %+.1f", $5) }
    function drow(k, label, kind,    a, b, d, p, pct, ok, tgt, lim, star) {
      if (!n[k]) { tbl = tbl sprintf("%-28s %14s %14s %20s %18s %26s  %-19s %s\n", label, "n/a", "n/a", "", "", "", "", "NO DATA"); bad++; return }
      a = med(real[k]); b = med(wrap[k]); d = med(add[k]); p = med(pd[k]); pct = a != 0 ? 100 * d / a : 0
      if (kind == "launch") { lim = 40; ok = (d <= 40 && pct <= 1); tgt = "<= 40 ns and <= 1%" }
      else { lim = 1000; ok = (d <= 1000); tgt = "<= 1000 ns" }
      star = (ok && hi[k] > lim) ? " *" : ""
      if (star != "") stars++
      tbl = tbl sprintf("%-28s %14.1f %14.1f %20s %18s %26s  %-19s %s\n", label, a, b, sprintf("%+.1f ns (%+.2f%%)", d, pct),
             sprintf("[%+.1f, %+.1f]", lo[k], hi[k]), sprintf("%+.1f [%+.1f, %+.1f]", p, plo[k], phi[k]), tgt, (ok ? "PASS" : "FAIL") star)
      detail = detail sprintf("  %-26s %s\n", label, runs[k])
      if (!ok) bad++
    }
    END {
      tbl = sprintf("%-28s %14s %14s %20s %18s %26s  %-19s %s\n", "metric", "without (real)", "with (wrapper)", "added (abs, %)", "95% CI of added", "paired median [95% CI]", "target", "verdict")
      drow("launch_dlsym_ns",     "launch ns/call (dlsym)",     "launch")
      drow("launch_gpa_ns",       "launch ns/call (gpa)",       "launch")
      drow("alloc_free_dlsym_ns", "alloc+free 1MiB ns (dlsym)", "alloc")
      drow("alloc_free_gpa_ns",   "alloc+free 1MiB ns (gpa)",   "alloc")
      a = med(tv["without"]); b = med(tv["with"])
      if (a == "" || b == "") {
        tbl = tbl sprintf("%-28s %14s %14s %20s %18s %26s  %-19s %s\n", "torch MLP it/s", a == "" ? "n/a" : a, b == "" ? "n/a" : b, "", "", "", "", "NO DATA"); bad++
      } else {
        ok = (b >= 0.99 * a)
        split(spread(tv["without"]), sa, " "); split(spread(tv["with"]), sb, " ")
        noisy = (a && 100 * (sa[2] - sa[1]) / a > 1) || (b && 100 * (sb[2] - sb[1]) / b > 1)
        tbl = tbl sprintf("%-28s %14.1f %14.1f %20s %18s %26s  %-19s %s\n", sprintf("torch MLP it/s (med of %d)", tc["without"] < tc["with"] ? tc["without"] : tc["with"]),
               a, b, sprintf("%+.1f (%+.2f%%)", b - a, a != 0 ? 100 * (b - a) / a : 0), "-", "-", ">= 99% of native", (ok ? "PASS" : "FAIL") (noisy ? " ~" : ""))
        if (!ok) bad++
        torchnote = sprintf("torch: separate processes; run-to-run range without %.0f-%.0f, with %.0f-%.0f it/s (%.0f%% / %.0f%% of the median)",
                            sa[1], sa[2], sb[1], sb[2], a ? 100 * (sa[2] - sa[1]) / a : 0, b ? 100 * (sb[2] - sb[1]) / b : 0)
        detail = detail sprintf("  %-26s without:%s | with:%s\n", "torch it/s per run", tv["without"], tv["with"])
      }
      if (dpc && dp < dpc) { print "WARNING: some driver runs did not have libgpushare loaded"; bad++ }
      if (tpc["with"] && tp["with"] < tpc["with"]) { print "WARNING: some torch \"with\" runs did not have libgpushare loaded"; bad++ }
      if (tp["without"] > 0) { print "WARNING: some torch \"without\" runs had libgpushare loaded"; bad++ }
      printf "per-run values:\n%s", detail
      if (aa != "") printf "A/A control, launch gpa - dlsym (the same wrapper when both routes agree), per run (ns):%s\n", aa
      printf "driver: %d process(es), each under the library, real vs wrapper interleaved in blocks; figures = median over processes;\n", dpc
      printf "  added = median(wrapper) - median(real) of per-block means; paired = median of per-round differences; CIs = bootstrap over rounds, union over processes\n"
      if (torchnote != "") print torchnote
      printf "library loaded: driver A/B runs %d/%d, torch with-runs %d/%d (without-runs %d/%d loaded)\n", dp, dpc, tp["with"], tpc["with"], tp["without"], tpc["without"]
      printf "\n%s", tbl
      if (stars) print "* the 95% CI (union over runs) reaches past the target: the point estimate passes, the bound does not"
      if (noisy) print "~ the torch runs differ among themselves by more than the 1% target: the comparison does not resolve it (see the range above)"
      printf "BENCH VERDICT: %s\n", bad ? bad " metric(s)/check(s) missed target or lack data" : "all targets met"
      exit bad ? 1 : 0
    }' "$METRICS"
} | tee "$LOGS/summary.txt"
