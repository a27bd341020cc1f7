#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# GPU verification of gpushare's memory limit ("spine" issue). See tests/gpu/README.md.
#
#   bash tests/gpu/run.sh [STAGE_DIR]      (default .stage; needs STAGE_DIR/lib/libgpushare.so)
#
# One invocation does everything: builds the test programs with nvcc, runs each check under a
# timeout, keeps going after failures, writes full logs to $OUT/gpu-tests (or
# /tmp/gpushare-out/gpu-tests) and prints a summary table last. Exit status 0 iff all passed.
#
# Knobs (env): GS_TEST_BUDGET (seconds for the whole script, default 240), GS_TEST_LOG_LEVEL
# (GPUSHARE_LOG_LEVEL for the limited runs, default info), NVCC, PYTHON.
set -u
set -o pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STAGE_ARG=${1:-.stage}
STAGE=$(cd "$STAGE_ARG" 2>/dev/null && pwd || echo "$STAGE_ARG")
LIB=$STAGE/lib/libgpushare.so
OUT_ROOT=${OUT:-/tmp/gpushare-out}
LOGS=$OUT_ROOT/gpu-tests
mkdir -p "$LOGS"
BUILD=$(mktemp -d /tmp/gpushare-tests.XXXXXX)
BUDGET=${GS_TEST_BUDGET:-240}
LOGLVL=${GS_TEST_LOG_LEVEL:-info}
PY=${PYTHON:-python3}
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
CUDA_HOME_GUESS=$(dirname "$(dirname "$(readlink -f "$NVCC")")")

export PYTHONUNBUFFERED=1
# A clean slate: nothing from the caller's environment may change the expectations.
for v in $(compgen -e | grep -E '^(GPUSHARE_|PYTORCH_CUDA_ALLOC_CONF$|LD_PRELOAD$|CUDA_VISIBLE_DEVICES$)'); do
  unset "$v"
done

GiB=$((1 << 30))
MiB=$((1 << 20))
L4=$((4 * GiB))

# shellcheck source=rows.sh
. "$SCRIPT_DIR/rows.sh"

echo "=== gpushare GPU tests: stage=$STAGE logs=$LOGS build=$BUILD budget=${BUDGET}s"

# ---- preflight ---------------------------------------------------------------------------------
{
  echo "## nvidia-smi"; timeout 20 nvidia-smi 2>&1
  echo "## nvcc ($NVCC)"; timeout 20 "$NVCC" --version 2>&1
  echo "## uname"; uname -a
  echo "## stage"; ls -lR "$STAGE" 2>&1
  echo "## ldd $LIB"; timeout 20 ldd "$LIB" 2>&1
  echo "## exported cu* / dlsym symbols"; timeout 20 nm -D --defined-only "$LIB" 2>&1 | grep -E ' (cu[A-Z]|dlsym)' 
} >"$LOGS/preflight.log" 2>&1

GPU=$(timeout 20 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -n1)
record preflight_gpu "$([[ -n $GPU ]] && echo PASS || echo FAIL)" "${GPU:-nvidia-smi failed}"

if [[ -f $LIB ]]; then
  record preflight_lib PASS "$(stat -c %s "$LIB") bytes sha256=$(sha256sum "$LIB" | cut -c1-12) mtime=$(date -r "$LIB" -Is)"
else
  record preflight_lib FAIL "$LIB not found"
fi

missing_deps=$(timeout 20 ldd "$LIB" 2>&1 | grep -E 'not found|No such file' | tr -s ' \t' ' ' | paste -sd';')
if [[ -f $LIB && -z $missing_deps ]]; then
  record preflight_ldd PASS "all dependencies resolve"
else
  record preflight_ldd FAIL "${missing_deps:-library missing}"
fi

want_syms="cuInit cuGetProcAddress cuGetProcAddress_v2 dlsym cuMemAlloc_v2 cuMemAllocPitch_v2 cuMemAllocManaged cuMemAllocAsync cuMemCreate cuMemFree_v2 cuMemGetInfo_v2 cuDeviceTotalMem_v2 cuLaunchKernel"
if command -v nm >/dev/null 2>&1 && [[ -f $LIB ]]; then
  exported=$(nm -D --defined-only "$LIB" 2>/dev/null | awk '{print $NF}' | sed 's/@.*//')
  miss=""
  for s in $want_syms; do
    grep -qx "$s" <<<"$exported" || miss="$miss $s"
  done
  if [[ -z $miss ]]; then
    record preflight_exports PASS "$(grep -c '^cu' <<<"$exported") cu* symbols exported, incl. all checked"
  else
    record preflight_exports FAIL "missing:$miss"
  fi
else
  record preflight_exports FAIL "nm unavailable or library missing"
fi

# ---- build -------------------------------------------------------------------------------------
NVFLAGS=(-O2 -arch=sm_90 -std=c++17)
CULIBS=(-L"$CUDA_HOME_GUESS/lib64/stubs" -L"$CUDA_HOME_GUESS/targets/x86_64-linux/lib/stubs" -lcuda -ldl)
RPATH=(-Xlinker -rpath -Xlinker "$CUDA_HOME_GUESS/lib64")
declare -A BPID
build() {  # name cmd...
  local name=$1
  shift
  (timeout -k 5 "$(tmo 240)" "$@" >"$LOGS/build_$name.log" 2>&1) &
  BPID[$name]=$!
}
build driver_api_limit "$NVCC" "${NVFLAGS[@]}" "$SCRIPT_DIR/driver_api_limit.cu" -o "$BUILD/driver_api_limit" "${CULIBS[@]}"
build runtime_shared "$NVCC" "${NVFLAGS[@]}" -cudart shared "$SCRIPT_DIR/runtime_api_limit.cu" -o "$BUILD/runtime_shared" -ldl "${RPATH[@]}"
build runtime_static "$NVCC" "${NVFLAGS[@]}" -cudart static "$SCRIPT_DIR/runtime_api_limit.cu" -o "$BUILD/runtime_static" -ldl
for name in driver_api_limit runtime_shared runtime_static; do
  wait "${BPID[$name]}"
  rc=$?
  if ((rc == 0)) && [[ -x $BUILD/$name ]]; then
    record "build_$name" PASS "ok"
  else
    record "build_$name" FAIL "rc=$rc: $(grep -m1 -i error "$LOGS/build_$name.log" | cut -c1-150)"
  fi
done

# ---- environments ------------------------------------------------------------------------------
WITH=(env LD_PRELOAD="$LIB" GPUSHARE_LOG_LEVEL="$LOGLVL")

# ---- driver API --------------------------------------------------------------------------------
run_step driver_4Gi 45 "${WITH[@]}" GPUSHARE_MEM_LIMIT=4Gi "$BUILD/driver_api_limit" "$L4"
run_step driver_idx0_2Gi_over_6Gi 45 "${WITH[@]}" GPUSHARE_MEM_LIMIT=6Gi GPUSHARE_MEM_LIMIT_0=2Gi \
  "$BUILD/driver_api_limit" $((2 * GiB))
run_step driver_3G_decimal 45 "${WITH[@]}" GPUSHARE_MEM_LIMIT=3G "$BUILD/driver_api_limit" 3000000000
run_step driver_plain_bytes 45 "${WITH[@]}" GPUSHARE_MEM_LIMIT=$((3 * GiB + 512 * MiB)) \
  "$BUILD/driver_api_limit" $((3 * GiB + 512 * MiB))

# Malformed value: some CUDA call fails, and stderr names the variable. Default log level.
bad_stderr_check() {  # name errfile
  local n
  n=$(grep -c 'GPUSHARE_MEM_LIMIT' "$2" 2>/dev/null)
  n=${n:-0}
  if ((n >= 1)); then
    record "$1" PASS "$n stderr line(s) name GPUSHARE_MEM_LIMIT: $(grep -m1 GPUSHARE_MEM_LIMIT "$2" | cut -c1-110)"
  else
    record "$1" FAIL "no stderr line names GPUSHARE_MEM_LIMIT ($(wc -l <"$2" 2>/dev/null || echo 0) stderr lines)"
  fi
}
run_step driver_bad_value 45 env LD_PRELOAD="$LIB" 'GPUSHARE_MEM_LIMIT=8GB?' \
  "$BUILD/driver_api_limit" --expect-error
over_budget || bad_stderr_check driver_bad_value_stderr "$LOGS/driver_bad_value.err"

# ---- runtime API (shared and static cudart) ----------------------------------------------------
run_step runtime_shared_4Gi 45 "${WITH[@]}" GPUSHARE_MEM_LIMIT=4Gi "$BUILD/runtime_shared" "$L4"
run_step runtime_static_4Gi 45 "${WITH[@]}" GPUSHARE_MEM_LIMIT=4Gi "$BUILD/runtime_static" "$L4"

# ---- PyTorch -----------------------------------------------------------------------------------
TL=$SCRIPT_DIR/torch_limit.py
run_step torch_baseline_no_preload 60 "$PY" "$TL" "$L4" --info
run_step torch_default_4Gi 60 "${WITH[@]}" GPUSHARE_MEM_LIMIT=4Gi "$PY" "$TL" "$L4"
run_step torch_expandable_4Gi 60 "${WITH[@]}" GPUSHARE_MEM_LIMIT=4Gi \
  PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True "$PY" "$TL" "$L4"
run_step torch_mallocasync_4Gi 60 "${WITH[@]}" GPUSHARE_MEM_LIMIT=4Gi \
  PYTORCH_CUDA_ALLOC_CONF=backend:cudaMallocAsync "$PY" "$TL" "$L4"

# nvidia-smi's view of a process holding memory up to its limit.
#   smi_hold NAME FLAG GRADE: FLAG --hold (warm-up, then fill: graded, used <= limit + 2 MiB) or
#   --hold-cold (fill before the first kernel: GRADE=info, the figure is recorded as INFO).
smi_hold() {
  local name=$1 flag=$2 grade=$3
  if over_budget; then
    record "$name" SKIP "time budget (${BUDGET}s) used up"
    return
  fi
  local log=$LOGS/$name.log err=$LOGS/$name.err rel=$BUILD/release_$name
  rm -f "$rel"
  local dev_before
  dev_before=$(timeout 20 nvidia-smi -i 0 --query-gpu=memory.used --format=csv,noheader,nounits 2>/dev/null | tr -d ' ')
  (timeout -k 5 "$(tmo 90)" "${WITH[@]}" GPUSHARE_MEM_LIMIT=4Gi "$PY" "$TL" "$L4" "$flag" "$rel" >"$log" 2>"$err" </dev/null) &
  local bg=$! waited=0
  while ((waited < 600)) && ! grep -q '^HOLDING' "$log" 2>/dev/null && kill -0 "$bg" 2>/dev/null; do
    sleep 0.1
    waited=$((waited + 1))
  done
  if ! grep -q '^HOLDING' "$log" 2>/dev/null; then
    touch "$rel"
    kill "$bg" 2>/dev/null
    wait "$bg" 2>/dev/null
    record "$name" "$([[ $grade == info ]] && echo INFO || echo FAIL)" \
      "child never reached HOLDING: $(tail -n1 "$err" 2>/dev/null | cut -c1-120)"
    return
  fi
  sleep 1
  local child apps dev_now held hline free_fill free_now
  hline=$(grep -m1 '^HOLDING' "$log")
  child=$(sed -E 's/.*pid=([0-9]+).*/\1/' <<<"$hline")
  held=$(sed -E 's/.*bytes=([0-9]+).*/\1/' <<<"$hline")
  free_fill=$(sed -nE 's/.*free_after_fill=([0-9]+).*/\1/p' <<<"$hline")
  free_now=$(sed -nE 's/.* free=([0-9]+).*/\1/p' <<<"$hline")
  apps=$(timeout 20 nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits 2>&1)
  dev_now=$(timeout 20 nvidia-smi -i 0 --query-gpu=memory.used --format=csv,noheader,nounits 2>/dev/null | tr -d ' ')
  touch "$rel"
  wait "$bg"
  {
    echo "## child pid $child held $held bytes"
    echo "## nvidia-smi --query-compute-apps=pid,used_memory:"
    echo "$apps"
    echo "## device memory.used before=$dev_before now=$dev_now MiB"
  } >>"$log"
  local lim_mib=$((L4 / MiB)) used="" how=""
  used=$(awk -F', *' -v p="$child" '$1 == p {print $2}' <<<"$apps" | head -n1)
  if [[ -n $used ]]; then
    how="pid $child"
  elif [[ $(grep -cE '^[0-9]+, *[0-9]+' <<<"$apps") == 1 ]]; then
    used=$(grep -E '^[0-9]+, *[0-9]+' <<<"$apps" | awk -F', *' '{print $2}')
    how="only compute app (pid $(cut -d, -f1 <<<"$apps"); namespace pid $child)"
  elif [[ $dev_before =~ ^[0-9]+$ && $dev_now =~ ^[0-9]+$ ]]; then
    used=$((dev_now - dev_before))
    how="device memory.used delta (process not listed)"
  fi
  local figs="nvidia-smi used=${used:-?}MiB via $how; limit=${lim_mib}MiB (+2 allowed); torch held=$((${held:-0} / MiB))MiB"
  figs="$figs; mem_get_info free after fill=$((${free_fill:-0} / MiB))MiB, after writing=$((${free_now:-0} / MiB))MiB"
  figs="$figs; device used ${dev_before}->${dev_now}MiB"
  # In-child nvidia-smi minus the limit view (total - free), before the fill / after / after writing.
  local gaps
  gaps=$(grep -a '^STAGE' "$log" | sed -nE 's/.*gap=([0-9?-]+)MiB.*/\1/p' | paste -sd/)
  figs="$figs; nvidia-smi minus mem_get_info used, before fill/after fill/after write=${gaps:-?}MiB"
  if [[ $grade == info ]]; then
    record "$name" INFO "informational (fill before the first kernel, not graded): $figs"
  elif [[ $used =~ ^[0-9]+$ ]] && ((used <= lim_mib + 2)); then
    record "$name" PASS "$figs"
  else
    record "$name" FAIL "$figs; apps=[$(paste -sd';' <<<"$apps" | cut -c1-120)]"
  fi
}
smi_hold torch_hold_nvidia_smi --hold check
smi_hold torch_hold_cold_nvidia_smi_info --hold-cold info

run_step torch_bad_value 60 env LD_PRELOAD="$LIB" 'GPUSHARE_MEM_LIMIT=8GB?' "$PY" "$TL" 0 --bad
over_budget || bad_stderr_check torch_bad_value_stderr "$LOGS/torch_bad_value.err"

# ---- summary (last) ----------------------------------------------------------------------------
rm -rf "$BUILD"
print_rows "gpushare GPU test summary"
