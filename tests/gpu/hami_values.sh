#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# HAMi's own values on the GPU, read as HAMi-core reads them (README, Schedulers' variables):
# PyTorch's view of CUDA_DEVICE_MEMORY_LIMIT spellings, 0 and a limit above the card; and a lone
# process's matmul rate under CUDA_DEVICE_SM_LIMIT=25 in each GPU_CORE_UTILIZATION_POLICY against
# the same loop without the library (default: not throttled alone, as under HAMi's monitor;
# force: capped at ~25%; disable: not applied).
#
#   bash tests/gpu/hami_values.sh [STAGE_DIR]     (default .stage: lib/libgpushare.so)
#
# One call, about 3 minutes on the H100. Logs: $OUT/hami_values (or /tmp/gpushare-out/...).
set -u
set -o pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STAGE=$(cd "${1:-.stage}" 2>/dev/null && pwd || echo "${1:-.stage}")
LIB=$STAGE/lib/libgpushare.so
LOGS=${OUT:-/tmp/gpushare-out}/hami_values
mkdir -p "$LOGS"
# shellcheck disable=SC2034  # read by rows.sh
BUDGET=${HAMI_BUDGET:-300}
SECS=${HAMI_RATE_SECONDS:-6}
PY=${PYTHON:-python3}
W=$SCRIPT_DIR/hami_worker.py
for v in $(compgen -e | grep -E '^(GPUSHARE_|CUDA_DEVICE_|GPU_CORE_UTILIZATION_POLICY$|CUDA_TASK_PRIORITY$|LD_PRELOAD$)'); do
  unset "$v"
done
# shellcheck source=rows.sh
. "$SCRIPT_DIR/rows.sh"

GiB=$((1 << 30))
fresh_ledger() { local d; d=$(mktemp -d /tmp/gpushare-ledger.XXXXXX); chmod 1777 "$d"; echo "$d"; }
# under NAME ENV... -- ARGS...: the worker with the library, a fresh ledger and GPUSHARE_LOG_LEVEL=info.
under() {
  local name=$1
  shift
  local envs=()
  while [[ $1 != -- ]]; do envs+=("$1"); shift; done
  shift
  run_step "$name" 120 env LD_PRELOAD="$LIB" GPUSHARE_LEDGER_DIR="$(fresh_ledger)" GPUSHARE_LOG_LEVEL=info \
    "${envs[@]}" "$PY" "$W" "$@"
}
value() { grep -a "^$2 " "$LOGS/$1.log" | tail -n1 | cut -d' ' -f2; }

echo "=== gpushare hami_values: stage=$STAGE logs=$LOGS"
[[ -f $LIB ]] && record preflight_lib PASS "$(sha256sum "$LIB" | cut -c1-12)" || record preflight_lib FAIL "$LIB missing"
run_step native_total 120 "$PY" "$W" total
card=$(value native_total TOTAL)

# ---- CUDA_DEVICE_MEMORY_LIMIT: PyTorch sees what HAMi-core would give --------------------------
sees() {  # name value expected-total
  under "$1" "CUDA_DEVICE_MEMORY_LIMIT=$2" -- total >/dev/null
  local got shown
  got=$(value "$1" TOTAL)
  shown=$(printf %q "$2")
  [[ -n $got && $got == "$3" ]] && record "$1_total" PASS "CUDA_DEVICE_MEMORY_LIMIT=$shown: total $got" ||
    record "$1_total" FAIL "CUDA_DEVICE_MEMORY_LIMIT=$shown: total ${got:-none}, want $3"
}
sees mem_4Gi 4Gi $((4 * GiB))
sees mem_4GiB_blanks $' 4GiB\n' $((4 * GiB))
sees mem_1_5g 1.5g $((3 * GiB / 2))
sees mem_zero_is_no_limit 0 "${card:-unknown}"
sees mem_200g_is_the_card 200g "${card:-unknown}"
lines=$(grep -c 'CUDA_DEVICE_MEMORY_LIMIT="200g" .* is above this device' "$LOGS/mem_200g_is_the_card.err")
[[ $lines == 1 ]] && record mem_200g_info_line PASS "one info line" || record mem_200g_info_line FAIL "$lines lines"
env LD_PRELOAD="$LIB" GPUSHARE_LEDGER_DIR="$(fresh_ledger)" CUDA_DEVICE_MEMORY_LIMIT=0x10G timeout 120 "$PY" "$W" total \
  >"$LOGS/mem_0x10G.log" 2>"$LOGS/mem_0x10G.err"
rc=$?
[[ $rc == 3 ]] && grep -q 'CUDA_DEVICE_MEMORY_LIMIT="0x10G" is not valid' "$LOGS/mem_0x10G.err" &&
  record mem_0x10G_refused PASS "CUDA unavailable, the variable named" ||
  record mem_0x10G_refused FAIL "rc=$rc; $(head -n1 "$LOGS/mem_0x10G.err" | cut -c1-120)"

# ---- CUDA_DEVICE_SM_LIMIT=25, a lone process, each policy against no library --------------------
run_step sm_native 120 "$PY" "$W" rate "$SECS"
base=$(value sm_native RATE)
ratio() {  # name low high ENV...
  local name=$1 lo=$2 hi=$3
  shift 3
  under "$name" "$@" -- rate "$SECS" >/dev/null
  local r
  r=$(value "$name" RATE)
  if [[ -z $r || -z $base ]]; then
    record "${name}_ratio" FAIL "no rate (base ${base:-none})"
    return
  fi
  local x
  x=$(awk -v r="$r" -v b="$base" 'BEGIN { printf "%.2f", r / b }')
  if awk -v x="$x" -v lo="$lo" -v hi="$hi" 'BEGIN { exit !(x >= lo && x <= hi) }'; then
    record "${name}_ratio" PASS "x$x of no library ($r vs $base matmuls/s; want $lo..$hi) $*"
  else
    record "${name}_ratio" FAIL "x$x of no library ($r vs $base matmuls/s; want $lo..$hi) $*"
  fi
}
ratio sm25_default 0.90 1.10 CUDA_DEVICE_SM_LIMIT=25
ratio sm25_force 0.15 0.35 CUDA_DEVICE_SM_LIMIT=25 GPU_CORE_UTILIZATION_POLICY=FORCE
ratio sm25pct_force_lower 0.15 0.35 CUDA_DEVICE_SM_LIMIT=25% GPU_CORE_UTILIZATION_POLICY=force
ratio sm_dev0_25_force 0.15 0.35 CUDA_DEVICE_SM_LIMIT_0=25 GPU_CORE_UTILIZATION_POLICY=force
ratio sm25_disable 0.90 1.10 CUDA_DEVICE_SM_LIMIT=25 GPU_CORE_UTILIZATION_POLICY=disable
grep -q 'CUDA_DEVICE_SM_LIMIT="25" (HAMi) is not applied' "$LOGS/sm25_disable.err" &&
  record sm25_disable_says_so PASS "info line" || record sm25_disable_says_so FAIL "no 'is not applied' line"
ratio sm100_force_is_no_limit 0.90 1.10 CUDA_DEVICE_SM_LIMIT=100 GPU_CORE_UTILIZATION_POLICY=force

print_rows "gpushare hami_values summary"
