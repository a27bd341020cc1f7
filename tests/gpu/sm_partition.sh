#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# GPU check of SM partitions (GPUSHARE_SM), one call, under 8 minutes:   bash tests/gpu/sm_partition.sh [STAGE]
# STAGE holds lib/libgpushare.so and bin/gpushare-smi. Builds tests/gpu/sm_probe.cu with nvcc,
# then, under LD_PRELOAD:
#  1. slices of 8, 32, 64 SMs: distinct %smid per launch path of a runtime-API program (legacy
#     stream, a stream, 8 threads, cudaLaunchKernelEx, a cooperative launch sized from
#     multiProcessorCount, a CUDA graph and its replay) and of a Triton kernel through PyTorch
#     (default stream, new stream, 8 threads, CUDA graph) must equal the slice; the reported SM
#     count must be the slice's; a compute-bound kernel's throughput must be >= 97% of
#     proportional to the slice; cuBLAS bf16 matmul TFLOP/s is reported beside it;
#  2. two tenants on disjoint halves (66 SMs each) without MPS: the cap (they time-slice);
#  3. the same under the MPS daemon (private pipe/log dirs, stopped at exit): compute-bound keeps
#     >= 97% of alone-on-half; matmuls >= 80% each of alone-on-half, >= 95% of the whole GPU in sum
#     with GPUSHARE_SM_PLACEMENT=gpc (the default); GS_SM_COMPARE=1 adds spread and reruns each
#     pair with the other start order; GS_SM_MATMUL_ONLY=1 runs only the MPS matmul pairs.
# Prints one table last. Logs: $OUT/sm_partition (or /tmp/gpushare-out/sm_partition).
set -u
STAGE=$(cd "${1:-.stage}" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
OUTD=${OUT:-/tmp/gpushare-out}/sm_partition
mkdir -p "$OUTD"
LIB=$STAGE/lib/libgpushare.so
SMI=$STAGE/bin/gpushare-smi
WORK=$(mktemp -d /tmp/gpushare-sm-XXXXXX)
export GPUSHARE_LEDGER_DIR=$WORK/ledger GPUSHARE_LOG_LEVEL=info PYTHONUNBUFFERED=1
ROWS=()
row() { ROWS+=("$1|$2|$3|$4"); echo "row: $1 = $2 (want $3) $4"; }
val() { sed -n "s/^$2 //p" "$1" 2>/dev/null | tail -1; }
calc() { python3 -c "import sys; print($1)" 2>/dev/null; }
judge() { [ "$(calc "$1")" = "True" ] && echo PASS || echo FAIL; }  # a Python condition
now_plus() { calc "__import__('time').time() + $1"; }

MPS=0
stop_mps() {
  if [ "$MPS" = 1 ]; then
    echo quit | timeout 20 nvidia-cuda-mps-control >/dev/null 2>&1
    MPS=0
  fi
}
cleanup() { stop_mps; jobs -p | xargs -r kill -9 2>/dev/null; }
trap cleanup EXIT

print_table() {
  echo
  echo "== SM partitions: summary ($(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1))"
  printf '%-46s %-14s %-28s %s\n' CHECK VALUE WANT VERDICT
  for r in "${ROWS[@]}"; do
    IFS='|' read -r a b c d <<<"$r"
    printf '%-46s %-14s %-28s %s\n' "$a" "$b" "$c" "$d"
  done
  echo "passed $(printf '%s\n' "${ROWS[@]}" | grep -c '|PASS$') of $(printf '%s\n' "${ROWS[@]}" | grep -c '|PASS$\||FAIL$') checks"
}

# LOG VAR=VALUE... -- CMD...: one run under the library, with a time limit.
run() {
  local log=$1 limit=$2
  shift 2
  local envs=()
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done
  shift
  timeout "$limit" env LD_PRELOAD="$LIB" "${envs[@]}" "$@" >"$OUTD/$log.out" 2>"$OUTD/$log.err"
  local rc=$?
  [ $rc -ne 0 ] && echo "  $log: exit $rc; $(tail -2 "$OUTD/$log.err" | tr '\n' ' ')"
  return $rc
}

echo "== build"
if [ ! -f "$LIB" ]; then row preflight_library missing "$LIB" FAIL; print_table; exit 1; fi
if ! timeout 240 nvcc -O2 -arch=sm_90 -o "$WORK/sm_probe" "$HERE/sm_probe.cu" >"$OUTD/build.log" 2>&1; then
  row build_sm_probe failed "nvcc -arch=sm_90" FAIL; cat "$OUTD/build.log"; print_table; exit 1
fi
PROBE=$WORK/sm_probe
python3 -c "import torch; assert torch.cuda.is_available()" 2>/dev/null && TORCH=1 || TORCH=0
python3 -c "import triton" 2>/dev/null && TRITON=1 || TRITON=0
echo "torch=$TORCH triton=$TRITON"

# GS_SM_MATMUL_ONLY=1: only the MPS matmul pair (the map is made first, without MPS).
MATMUL_ONLY=${GS_SM_MATMUL_ONLY:-0}
if [ "$MATMUL_ONLY" != 1 ]; then
echo "== whole GPU (library loaded, no GPUSHARE_SM)"
run full_smid 60 -- "$PROBE" smid
FULL_SMS=$(val "$OUTD/full_smid.out" multiProcessorCount)
row "whole_gpu sm_count" "${FULL_SMS:-?}" "the GPU's" "$([ -n "$FULL_SMS" ] && echo INFO || echo FAIL)"
run full_spin 60 -- "$PROBE" spin 0 3
K_FULL=$(val "$OUTD/full_spin.out" kernels_per_s)
row "whole_gpu fma kernels/s" "${K_FULL:-?}" "baseline" INFO
if [ "$TORCH" = 1 ]; then
  run full_torch 150 -- python3 "$HERE/sm_torch.py" probe
  T_FULL=$(val "$OUTD/full_torch.out" tflops)
  row "whole_gpu matmul TFLOP/s" "${T_FULL:-?}" "baseline" INFO
fi

for S in 8 32 64; do
  echo "== slice of $S SMs"
  E=("GPUSHARE_SM=$S" "GPUSHARE_TENANT=slice$S")
  run "s${S}_smid" 60 "${E[@]}" -- "$PROBE" smid
  f=$OUTD/s${S}_smid.out
  row "sm$S runtime multiProcessorCount" "$(val "$f" multiProcessorCount)" "$S" "$(judge "$(val "$f" multiProcessorCount)0 == ${S}0")"
  for p in legacy_stream new_stream threads_min threads_max launch_ex cooperative graph graph_replay; do
    v=$(val "$f" $p)
    row "sm$S runtime %smid $p" "${v:-?}" "$S" "$(judge "${v:-0} == $S")"
  done
  v=$(val "$f" cooperative_coresident)
  row "sm$S cooperative grid co-resident" "${v:-?} ($(val "$f" cooperative_grid) blocks)" "1" "$(judge "${v:-0} == 1")"
  run "s${S}_spin" 60 "${E[@]}" -- "$PROBE" spin 0 3
  k=$(val "$OUTD/s${S}_spin.out" kernels_per_s)
  ratio=$(calc "round(${k:-0} / (${K_FULL:-1} * $S / ${FULL_SMS:-132}), 3)")
  row "sm$S fma vs proportional" "${ratio:-?}" ">= 0.97" "$(judge "${ratio:-0} >= 0.97")"
  if [ "$TORCH" = 1 ]; then
    run "s${S}_torch" 150 "${E[@]}" -- python3 "$HERE/sm_torch.py" probe
    t=$OUTD/s${S}_torch.out
    v=$(val "$t" multi_processor_count)
    row "sm$S torch multi_processor_count" "${v:-?}" "$S" "$(judge "${v:-0} == $S")"
    if [ "$TRITON" = 1 ]; then
      for p in triton_default_stream triton_new_stream triton_threads_union triton_threads_max triton_graph; do
        v=$(val "$t" $p)
        row "sm$S torch %smid $p" "${v:-?}" "$S" "$(judge "${v:-0} == $S")"
      done
    fi
    tf=$(val "$t" tflops)
    row "sm$S matmul TFLOP/s (of whole)" "${tf:-?} ($(calc "round(100 * ${tf:-0} / ${T_FULL:-1})")%)" "reported" INFO
  fi
done
MAP_MS=$("$SMI" --json --ledger-dir "$GPUSHARE_LEDGER_DIR" 2>/dev/null | python3 -c "import json,sys; m=json.load(sys.stdin)['ledgers'][0]['sm_map']; print(f\"{m['map_ns']/1e6:.1f} ms, {m['live_bit_count']} bits, {m['granularity_sms']} SMs/bit\")" 2>/dev/null)
row "TPC map (first process only)" "${MAP_MS:-?}" "cached in the ledger" INFO
GPCS=$("$SMI" --json --ledger-dir "$GPUSHARE_LEDGER_DIR" 2>/dev/null | python3 -c "import json,sys; g=json.load(sys.stdin)['ledgers'][0]['sm_map']['gpcs']; print(f\"{len(g)} GPCs: {' ; '.join(g)}\")" 2>/dev/null)
row "GPCs from cluster placement" "${GPCS:-?}" ">= 1 GPC" "$(judge "'${GPCS:-0}'.split()[0].isdigit() and int('${GPCS:-0}'.split()[0]) >= 1")"
"$SMI" --ledger-dir "$GPUSHARE_LEDGER_DIR" >"$OUTD/smi_after_slices.txt" 2>&1

# Two tenants on disjoint halves, concurrently; A and B wait for a common start time.
pair_spin() {  # TAG
  local st
  st=$(now_plus 4)
  run "$1_a" 60 GPUSHARE_SM=66 GPUSHARE_TENANT=half_a -- "$PROBE" spin "$st" 4 &
  local pa=$!
  run "$1_b" 60 GPUSHARE_SM=66 GPUSHARE_TENANT=half_b -- "$PROBE" spin "$st" 4 &
  local pb=$!
  sleep 6
  "$SMI" --json --ledger-dir "$GPUSHARE_LEDGER_DIR" >"$OUTD/$1_smi.json" 2>/dev/null
  wait $pa $pb
}
disjoint() {  # SMI_JSON: 1 when the two tenants' TPC bits do not overlap
  python3 - "$1" <<'PY' 2>/dev/null
import json, sys
def bits(s):
    out = set()
    for part in s.split(","):
        if part == "-": continue
        lo, _, hi = part.partition("-")
        out |= set(range(int(lo), int(hi or lo) + 1))
    return out
t = json.load(open(sys.argv[1]))["ledgers"][0]["tenants"]
b = [bits(x["sm_bits"]) for x in t if x["name"].startswith("half_")]
print(1 if len(b) == 2 and b[0] and b[1] and not (b[0] & b[1]) else 0)
PY
}

echo "== two tenants on disjoint halves, no MPS (time-sliced: the cap)"
run half_alone_spin 60 GPUSHARE_SM=66 GPUSHARE_TENANT=half_a -- "$PROBE" spin 0 3
K_HALF=$(val "$OUTD/half_alone_spin.out" kernels_per_s)
row "half alone fma kernels/s (no MPS)" "${K_HALF:-?}" "~half of whole" INFO
pair_spin nomps
ka=$(val "$OUTD/nomps_a.out" kernels_per_s); kb=$(val "$OUTD/nomps_b.out" kernels_per_s)
row "no MPS pair: slices disjoint" "$(disjoint "$OUTD/nomps_smi.json")" "1" "$(judge "$(disjoint "$OUTD/nomps_smi.json")0 == 10")"
row "no MPS pair fma a, b (of alone-on-half)" "$(calc "round(${ka:-0}/${K_HALF:-1},2)"), $(calc "round(${kb:-0}/${K_HALF:-1},2)")" "~0.5 each: time-sliced" INFO

else
  run premap 60 GPUSHARE_SM=8 GPUSHARE_TENANT=premap -- "$PROBE" smid  # the map, made without MPS
fi  # MATMUL_ONLY

# Under MPS, two 66-SM tenants placed by GPUSHARE_SM_PLACEMENT=$1: each half's matmul alone (both
# tenants hold their slices and measure one after the other, since halves may differ), then both
# at once. $2 = GRADE judges the targets, INFO only reports.
mps_mm_pair() {
  local p=$1 st pa pb ta tb ha hb ra rb rs
  local env_a=(GPUSHARE_SM=66 GPUSHARE_SM_PLACEMENT="$1" GPUSHARE_TENANT="${1}_a")
  local env_b=(GPUSHARE_SM=66 GPUSHARE_SM_PLACEMENT="$1" GPUSHARE_TENANT="${1}_b")
  st=$(now_plus 20)
  run "mps_${p}_alone_a" 150 "${env_a[@]}" -- python3 "$HERE/sm_torch.py" mm "$st" 5 &
  pa=$!
  sleep 0.5
  run "mps_${p}_alone_b" 150 "${env_b[@]}" -- python3 "$HERE/sm_torch.py" mm "$(calc "$st + 6")" 5 &
  pb=$!
  sleep 12
  "$SMI" --json --ledger-dir "$GPUSHARE_LEDGER_DIR" >"$OUTD/mps_${p}_smi.json" 2>/dev/null
  wait $pa $pb
  ha=$(val "$OUTD/mps_${p}_alone_a.out" tflops); hb=$(val "$OUTD/mps_${p}_alone_b.out" tflops)
  local gpcs
  gpcs=$(python3 -c "import json,sys; t=json.load(open(sys.argv[1]))['ledgers'][0]['tenants']; print(' / '.join(f\"{x['sm_gpcs']} GPCs, bits {x['sm_bits']}\" for x in sorted(t, key=lambda x: x['name']) if x['name'].startswith('${1}_')))" "$OUTD/mps_${p}_smi.json" 2>/dev/null)
  row "MPS $p: half a / b" "${gpcs:-?}" "reported" INFO
  row "MPS $p: matmul half a / b alone" "${ha:-?} / ${hb:-?}" "baselines" INFO
  st=$(now_plus 20)
  run "mps_${p}_pair_a" 150 "${env_a[@]}" -- python3 "$HERE/sm_torch.py" mm "$st" 5 &
  pa=$!
  sleep 0.5
  run "mps_${p}_pair_b" 150 "${env_b[@]}" -- python3 "$HERE/sm_torch.py" mm "$st" 5 &
  pb=$!
  wait $pa $pb
  ta=$(val "$OUTD/mps_${p}_pair_a.out" tflops); tb=$(val "$OUTD/mps_${p}_pair_b.out" tflops)
  ra=$(calc "round(${ta:-0}/${ha:-1},3)"); rb=$(calc "round(${tb:-0}/${hb:-1},3)")
  rs=$(calc "round((${ta:-0}+${tb:-0})/${T_MWHOLE:-1},3)")
  if [ "$2" = GRADE ]; then
    row "MPS $p: pair matmul a (of half a alone)" "${ra:-?} (${ta:-?})" ">= 0.80" "$(judge "${ra:-0} >= 0.80")"
    row "MPS $p: pair matmul b (of half b alone)" "${rb:-?} (${tb:-?})" ">= 0.80" "$(judge "${rb:-0} >= 0.80")"
    row "MPS $p: pair matmul sum (of whole GPU)" "${rs:-?}" ">= 0.95" "$(judge "${rs:-0} >= 0.95")"
  else
    row "MPS $p: pair matmul a, b (of alone)" "${ra:-?}, ${rb:-?} (${ta:-?}, ${tb:-?})" "reported" INFO
    row "MPS $p: pair matmul sum (of whole GPU)" "${rs:-?}" "reported" INFO
  fi
  # Again with b's process started first (it then holds a's former slice): does an asymmetry
  # follow the slice or the start order?
  [ "${GS_SM_COMPARE:-0}" = 1 ] || return 0
  st=$(now_plus 20)
  run "mps_${p}_pair2_b" 150 "${env_b[@]}" -- python3 "$HERE/sm_torch.py" mm "$st" 5 &
  pb=$!
  sleep 0.5
  run "mps_${p}_pair2_a" 150 "${env_a[@]}" -- python3 "$HERE/sm_torch.py" mm "$st" 5 &
  pa=$!
  wait $pa $pb
  ta=$(val "$OUTD/mps_${p}_pair2_a.out" tflops); tb=$(val "$OUTD/mps_${p}_pair2_b.out" tflops)
  row "MPS $p: pair again, b first: a, b" "${ta:-?}, ${tb:-?} (sum $(calc "round((${ta:-0}+${tb:-0})/${T_MWHOLE:-1},3)"))" "reported" INFO
}

echo "== MPS"
export CUDA_MPS_PIPE_DIRECTORY=$WORK/mps-pipe CUDA_MPS_LOG_DIRECTORY=$WORK/mps-log
mkdir -p "$CUDA_MPS_PIPE_DIRECTORY" "$CUDA_MPS_LOG_DIRECTORY"
if timeout 20 nvidia-cuda-mps-control -d >"$OUTD/mps.log" 2>&1; then
  MPS=1
  sleep 1
  # A first tenant under MPS with no map in its ledger: the map cannot be measured there (README,
  # Spatial sharing), so it is refused, saying so.
  run mps_first_map 90 GPUSHARE_LEDGER_DIR="$WORK/ledger-mps-first" GPUSHARE_SM=66 GPUSHARE_TENANT=first -- "$PROBE" smid
  v=$(grep -c "cannot be measured under MPS" "$OUTD/mps_first_map.err")
  row "MPS: no map in the ledger: refused, saying why" "${v:-0}" ">= 1" "$(judge "${v:-0} >= 1")"
  if [ "$MATMUL_ONLY" != 1 ]; then
  run mps_smid 60 GPUSHARE_SM=66 GPUSHARE_TENANT=half_a -- "$PROBE" smid
  v=$(val "$OUTD/mps_smid.out" legacy_stream)
  row "MPS sm66 runtime %smid" "${v:-?}" "66" "$(judge "${v:-0} == 66")"
  run mps_half_alone_spin 60 GPUSHARE_SM=66 GPUSHARE_TENANT=half_a -- "$PROBE" spin 0 3
  K_MHALF=$(val "$OUTD/mps_half_alone_spin.out" kernels_per_s)
  pair_spin mps
  ka=$(val "$OUTD/mps_a.out" kernels_per_s); kb=$(val "$OUTD/mps_b.out" kernels_per_s)
  row "MPS pair: slices disjoint" "$(disjoint "$OUTD/mps_smi.json")" "1" "$(judge "$(disjoint "$OUTD/mps_smi.json")0 == 10")"
  ra=$(calc "round(${ka:-0}/${K_MHALF:-1},3)"); rb=$(calc "round(${kb:-0}/${K_MHALF:-1},3)")
  row "MPS pair fma a (of alone-on-half)" "${ra:-?}" ">= 0.97" "$(judge "${ra:-0} >= 0.97")"
  row "MPS pair fma b (of alone-on-half)" "${rb:-?}" ">= 0.97" "$(judge "${rb:-0} >= 0.97")"
  row "MPS pair fma sum (of whole GPU)" "$(calc "round((${ka:-0}+${kb:-0})/${K_FULL:-1},3)")" "reported" INFO
  fi  # MATMUL_ONLY
  if [ "$TORCH" = 1 ]; then
    st=$(now_plus 0)
    run mps_whole_mm 150 GPUSHARE_TENANT=whole -- python3 "$HERE/sm_torch.py" mm "$st" 4
    T_MWHOLE=$(val "$OUTD/mps_whole_mm.out" tflops)
    row "MPS matmul whole GPU" "${T_MWHOLE:-?}" "baseline" INFO
    mps_mm_pair gpc GRADE
    [ "${GS_SM_COMPARE:-0}" = 1 ] && mps_mm_pair spread INFO
  fi
  stop_mps
else
  row "MPS daemon" "did not start" "nvidia-cuda-mps-control -d" FAIL
  cat "$OUTD/mps.log"
fi
"$SMI" --ledger-dir "$GPUSHARE_LEDGER_DIR" >"$OUTD/smi_end.txt" 2>&1
head -8 "$OUTD/smi_after_slices.txt"
print_table
# One archive instead of many files (the device tool returns a limited number of files).
if [ -n "${OUT:-}" ]; then tar -czf "$OUT/sm_partition_logs.tgz" -C "$OUTD" . && rm -rf "$OUTD"; fi
