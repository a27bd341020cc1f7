#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# GPU check that dlsym answers as glibc answers the caller (issue 15, finding 1) in real programs:
# PyTorch (and JAX, CuPy where installed) under a limit, alone and beside a second interposer
# (dlsym_shim.c: wraps pthread_create and cuMemAlloc_v2, forwards through dlsym(RTLD_NEXT))
# preloaded after and before libgpushare; a driver-API program whose cuMemAlloc goes through that
# shim into gpushare. With .stage/lib-main/libgpushare.so (a build of main) it also shows main's
# failure, as INFO. Run by compat.sh (section dlsym), or alone, in about a minute:
#   bash tests/gpu/dlsym_chain.sh [STAGE_DIR]
# Prints the rows, then one "SUMMARY:" line; exits 0 iff no row failed. Logs: $OUT/dlsym_chain.
set -u
STAGE=$(cd "${1:-.stage}" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
LOGS=${OUT:-/tmp/gpushare-out}/dlsym_chain
OUTD=$LOGS
mkdir -p "$OUTD"
BUDGET=${DLSYM_BUDGET:-110}
LIB=$STAGE/lib/libgpushare.so
MAIN_LIB=$STAGE/lib-main/libgpushare.so
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
for v in $(compgen -e | grep -E '^(GPUSHARE_|CUDA_DEVICE_|LD_PRELOAD$)'); do unset "$v"; done
export PYTHONUNBUFFERED=1 GPUSHARE_LEDGER_DIR=$WORK/ledger
# shellcheck source=rows.sh
. "$HERE/rows.sh"
row() { record "$2" "$1" "$3"; }  # STATUS NAME FIGURES

# NAME: the run's stdout+stderr are in $OUTD/NAME.log; 0 iff the program passed and no SHIM FAIL
run() {  # NAME PRELOAD LIMIT CMD...
  local name=$1 preload=$2 limit=$3; shift 3
  GPUSHARE_TENANT=dlsym-$name GPUSHARE_MEM_LIMIT=$limit LD_PRELOAD=$preload \
    timeout -k 5 "$(tmo 60)" "$@" >"$OUTD/$name.log" 2>&1 </dev/null
  local rc=$?
  grep -q "SHIM FAIL" "$OUTD/$name.log" && rc=99
  return $rc
}
summary() { { grep -m1 '^SUMMARY:' "$OUTD/$1.log" | cut -c10-; grep -m1 'SHIM FAIL' "$OUTD/$1.log"; } | tr '\n' ' '; }
shim_forwarded() {  # NAME WHAT: the count the shim printed at exit for WHAT
  sed -n "s/.*SHIM forwarded .*$2=\([0-9]*\).*/\1/p" "$OUTD/$1.log" | tail -1
}
# The shim reports at exit, in each process (a launcher's children first): the last is the program's.
# NAME: the shim's RTLD_NEXT for cuMemAlloc_v2 at exit was gpushare's (at load, before libcuda is
# loaded, glibc's answer for a shim preloaded after gpushare is NULL)
shim_next_is_gpushare() { grep 'SHIM next cuMemAlloc_v2 now:' "$OUTD/$1.log" | tail -1 | grep -q 'libgpushare\.so$'; }
shim_next() { grep 'SHIM next' "$OUTD/$1.log" | tail -2 | sed 's/^SHIM next cuMemAlloc_v2 //' | tr '\n' ' '; }

cat >"$WORK/torch_check.py" <<'EOF'
import sys, threading, torch
limit = int(sys.argv[1])
failed = []
def check(ok, name, detail):
    print(f"CHECK {'PASS' if ok else 'FAIL'} {name}: {detail}", flush=True)
    if not ok: failed.append(name)
free, total = torch.cuda.mem_get_info()
check(total == limit, "total_is_limit", f"total={total} limit={limit}")
held = torch.empty(limit // 4, dtype=torch.uint8, device="cuda"); held.fill_(1)
try:
    torch.empty(limit, dtype=torch.uint8, device="cuda"); check(False, "past_limit", "allocated")
except torch.OutOfMemoryError:
    check(True, "past_limit", "torch.OutOfMemoryError")
torch.set_num_threads(8)
a = torch.randn(1024, 1024); cpu = (a @ a).sum().item()          # CPU threads (OpenMP)
t = threading.Thread(target=lambda: None); t.start(); t.join()
b = torch.randn(2048, 2048, device="cuda"); gpu = (b @ b).sum().item()  # cuBLAS, dlopened
torch.cuda.synchronize()
check(True, "matmuls", f"cpu={cpu:.3g} gpu={gpu:.3g}")
print("SUMMARY:", "FAIL " + ",".join(failed) if failed else "PASS", f"total={total}", flush=True)
sys.exit(1 if failed else 0)
EOF
cat >"$WORK/jax_check.py" <<'EOF'
import sys, jax, jax.numpy as jnp
limit = int(sys.argv[1])
stats = jax.devices()[0].memory_stats()
x = jnp.ones((1024, 1024)); s = float((x @ x).sum())
ok = 0 < stats["bytes_limit"] <= limit
print("SUMMARY:", "PASS" if ok else "FAIL", f"bytes_limit={stats['bytes_limit']} limit={limit} sum={s:.3g}")
sys.exit(0 if ok else 1)
EOF
cat >"$WORK/cupy_check.py" <<'EOF'
import sys, cupy
limit = int(sys.argv[1])
free, total = cupy.cuda.runtime.memGetInfo()
x = cupy.ones((1024, 1024)); s = float((x @ x).sum())
ok = total == limit
print("SUMMARY:", "PASS" if ok else "FAIL", f"total={total} limit={limit} sum={s:.3g}")
sys.exit(0 if ok else 1)
EOF
cat >"$WORK/alloc.cu" <<'EOF'
#include <cuda.h>
#include <stdio.h>
// cuMemAlloc called directly (bound by the dynamic linker: the shim's, when it is preloaded first)
int main() {
  CUdevice dev; CUcontext ctx; CUdeviceptr small = 0, big = 0;
  if (cuInit(0) || cuDeviceGet(&dev, 0) || cuDevicePrimaryCtxRetain(&ctx, dev) || cuCtxSetCurrent(ctx)) return 2;
  CUresult a = cuMemAlloc(&small, 256u << 20), b = cuMemAlloc(&big, 2ull << 30);
  printf("SUMMARY: %s 256MiB=%d 2GiB=%d (limit 1Gi: expect 0 and %d)\n",
         a == CUDA_SUCCESS && b == CUDA_ERROR_OUT_OF_MEMORY ? "PASS" : "FAIL", a, b, CUDA_ERROR_OUT_OF_MEMORY);
  return a == CUDA_SUCCESS && b == CUDA_ERROR_OUT_OF_MEMORY ? 0 : 1;
}
EOF

row INFO preflight_gpu "$(timeout 20 nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>&1 | head -n1)"
if [ -f "$LIB" ]; then row PASS preflight_library "$LIB"; else row FAIL preflight_library "missing $LIB"; fi
if gcc -O2 -shared -fPIC -fno-optimize-sibling-calls -o "$WORK/libdlsym_shim.so" "$HERE/dlsym_shim.c" -ldl -lpthread \
    >"$OUTD/build_shim.log" 2>&1; then row PASS build_shim "dlsym_shim.c"; else row FAIL build_shim "see build_shim.log"; fi
if nvcc -O2 -o "$WORK/alloc" "$WORK/alloc.cu" -lcuda >"$OUTD/build_alloc.log" 2>&1; then
  row PASS build_alloc "alloc.cu -lcuda"; else row FAIL build_alloc "see build_alloc.log"; fi
SHIM=$WORK/libdlsym_shim.so
G4=$((4 << 30))

torch_row() {  # NAME PRELOAD [shim]
  if over_budget; then row SKIP "$1" "time budget (${BUDGET}s) used up"; return; fi
  if run "$1" "$2" 4Gi python3 "$WORK/torch_check.py" $G4; then
    if [ "${3:-}" = shim ]; then
      local creates; creates=$(shim_forwarded "$1" pthread_create)
      if [ "${creates:-0}" -gt 0 ] && shim_next_is_gpushare "$1"; then
        row PASS "$1" "$(summary "$1"); shim forwarded pthread_create=$creates; its RTLD_NEXT cuMemAlloc_v2 $(shim_next "$1")"
      else
        row FAIL "$1" "$(summary "$1"); shim forwarded pthread_create=${creates:-?}; its RTLD_NEXT cuMemAlloc_v2 $(shim_next "$1")"
      fi
    else
      row PASS "$1" "$(summary "$1")"
    fi
  else
    row FAIL "$1" "rc=$? $(summary "$1") (see $1.log)"
  fi
}
torch_row torch_gpushare "$LIB"
torch_row torch_shim_after_gpushare "$LIB:$SHIM" shim
torch_row torch_shim_before_gpushare "$SHIM:$LIB" shim

for order in before after; do
  name=driver_shim_${order}_gpushare
  if [ $order = before ]; then preload=$SHIM:$LIB; else preload=$LIB:$SHIM; fi
  if over_budget; then row SKIP $name "time budget (${BUDGET}s) used up"; continue; fi
  if run $name "$preload" 1Gi "$WORK/alloc"; then
    allocs=$(shim_forwarded $name cuMemAlloc_v2)
    if [ $order = before ] && [ "${allocs:-0}" -lt 2 ]; then
      row FAIL $name "$(summary $name); the shim forwarded cuMemAlloc_v2 ${allocs:-?} times (expected 2)"
    else
      row PASS $name "$(summary $name); through the shim: ${allocs:-0}"
    fi
  else
    row FAIL $name "rc=$? $(summary $name)"
  fi
done

for fw in jax cupy; do
  name=${fw}_shim_after_gpushare
  if over_budget; then row SKIP $name "time budget (${BUDGET}s) used up"; continue; fi
  if XLA_PYTHON_CLIENT_PREALLOCATE=true run $name "$LIB:$SHIM" 4Gi python3 "$WORK/${fw}_check.py" $G4; then
    row PASS $name "$(summary $name)"
  elif grep -q "No module named '$fw'" "$OUTD/$name.log"; then
    row INFO $name "$fw is not installed"
  else
    row FAIL $name "rc=$? $(summary $name)"
  fi
done

if [ -f "$MAIN_LIB" ] && ! over_budget; then
  for pair in "torch_main_shim_after:$MAIN_LIB:$SHIM" "torch_main_shim_before:$SHIM:$MAIN_LIB"; do
    name=${pair%%:*}
    run "$name" "${pair#*:}" 4Gi python3 "$WORK/torch_check.py" $G4
    row INFO "$name" "main's library: rc=$? $(summary "$name")"
  done
  run driver_main_shim_before "$SHIM:$MAIN_LIB" 1Gi "$WORK/alloc"
  row INFO driver_main_shim_before "main's library: rc=$? $(summary driver_main_shim_before)"
fi

print_rows "dlsym answered for the caller"
rc=$?
fails=$(printf '%s\n' "${STATUS[@]}" | grep -cvE '^(PASS|INFO)$')
echo "SUMMARY: $(printf '%s\n' "${STATUS[@]}" | grep -c '^PASS$') passed, $fails failed/skipped$(
  for i in "${!NAMES[@]}"; do [[ ${STATUS[$i]} == PASS || ${STATUS[$i]} == INFO ]] || printf ' %s' "${NAMES[$i]}"; done)"
exit $rc
