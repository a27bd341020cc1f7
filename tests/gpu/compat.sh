#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The compatibility suite on the GPU: the real clients users run, under a quota set both ways
# (GPUSHARE_MEM_LIMIT and HAMi's CUDA_DEVICE_MEMORY_LIMIT), and the outside checks of issue 15.
#
#   bash tests/gpu/compat.sh [STAGE_DIR]     (default .stage: lib/libgpushare.so, bin/gpushare-smi)
#
# One call, about 6 minutes on the H100. Builds its C/C++ programs with g++/nvcc into a temp
# dir, runs each step under a timeout, keeps going after failures, and prints the table last.
# Logs: $OUT/compat (or /tmp/gpushare-out/compat). COMPAT_ONLY=REGEX runs only the rows whose
# section name matches (sections: clients hami slice green graph smi starts args dlsym);
# COMPAT_WAYS=GPUSHARE_MEM_LIMIT=6Gi runs the clients under one of the two ways only.
set -u
set -o pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
STAGE=$(cd "${1:-.stage}" 2>/dev/null && pwd || echo "${1:-.stage}")
LIB=$STAGE/lib/libgpushare.so
SMI=$STAGE/bin/gpushare-smi
LOGS=${OUT:-/tmp/gpushare-out}/compat
mkdir -p "$LOGS"
BUILD=$(mktemp -d /tmp/gpushare-compat.XXXXXX)
BUDGET=${COMPAT_BUDGET:-540}
ONLY=${COMPAT_ONLY:-.}
PY=${PYTHON:-python3}
W=$SCRIPT_DIR/compat_worker.py
CUDA_INC=${CUDA_HOME:-/usr/local/cuda}/include
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false TRANSFORMERS_OFFLINE=1 HF_HUB_OFFLINE=1
for v in $(compgen -e | grep -E '^(GPUSHARE_|CUDA_DEVICE_|PYTORCH_CUDA_ALLOC_CONF$|LD_PRELOAD$|XLA_)'); do
  unset "$v"
done
# shellcheck source=rows.sh
. "$SCRIPT_DIR/rows.sh"

GiB=$((1 << 30))
Q=$((6 * GiB))  # the quota of the client rows
section() { [[ $1 =~ $ONLY ]]; }
fresh_ledger() { local d; d=$(mktemp -d /tmp/gpushare-ledger.XXXXXX); chmod 1777 "$d"; echo "$d"; }
# preloaded NAME TIMEOUT ENV... -- CMD...: run_step with the library and a fresh ledger directory.
preloaded() {
  local name=$1 t=$2
  shift 2
  local envs=()
  while [[ $1 != -- ]]; do envs+=("$1"); shift; done
  shift
  run_step "$name" "$t" env LD_PRELOAD="$LIB" GPUSHARE_LEDGER_DIR="$(fresh_ledger)" "${envs[@]}" "$@"
}

echo "=== gpushare compat: stage=$STAGE logs=$LOGS budget=${BUDGET}s"
GPU=$(timeout 20 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -n1)
record preflight_gpu "$([[ -n $GPU ]] && echo PASS || echo FAIL)" "${GPU:-nvidia-smi failed}"
[[ -f $LIB ]] && record preflight_lib PASS "$(sha256sum "$LIB" | cut -c1-12)" || record preflight_lib FAIL "$LIB missing"
versions=$(timeout 120 "$PY" -c 'import torch, transformers, jax, cupy; print("torch", torch.__version__, "transformers", transformers.__version__, "jax", jax.__version__, "cupy", cupy.__version__)' 2>&1 | tail -n1)
record preflight_clients INFO "$versions"
device_total=$(timeout 60 "$PY" -c 'import torch; print(torch.cuda.mem_get_info()[1])' 2>/dev/null)

# ---- the clients, under the quota both ways ----------------------------------------------------
if section clients; then
  for way in ${COMPAT_WAYS:-GPUSHARE_MEM_LIMIT=6Gi CUDA_DEVICE_MEMORY_LIMIT=6g}; do
    tag=$([[ $way == GPUSHARE* ]] && echo gs || echo hami)
    preloaded "hf_$tag" 180 "$way" -- "$PY" "$W" hf "$Q"
    preloaded "jax_$tag" 120 "$way" -- "$PY" "$W" jax "$Q"
    preloaded "jax_platform_$tag" 120 "$way" XLA_PYTHON_CLIENT_PREALLOCATE=false XLA_PYTHON_CLIENT_ALLOCATOR=platform \
      -- "$PY" "$W" jax "$Q"
    preloaded "cupy_$tag" 90 "$way" -- "$PY" "$W" cupy "$Q"
    preloaded "graph_$tag" 90 "$way" -- "$PY" "$W" graph "$Q"
  done
fi

# ---- HAMi's spellings, as HAMi-core reads them -------------------------------------------------
if section hami; then
  preloaded hami_4GiB 60 CUDA_DEVICE_MEMORY_LIMIT=4GiB -- "$PY" "$W" sees $((4 * GiB))
  preloaded hami_zero_is_no_limit 60 CUDA_DEVICE_MEMORY_LIMIT=0 -- "$PY" "$W" sees "${device_total:-0}"
  preloaded hami_above_card_capped 60 CUDA_DEVICE_MEMORY_LIMIT=200g -- "$PY" "$W" sees "${device_total:-0}"
fi

# ---- an SM slice: CuPy's RawKernel, a green context made inside it -----------------------------
if section slice; then
  preloaded cupy_rawkernel_slice32 90 GPUSHARE_SM=32 -- "$PY" "$W" cupy_sm 0 32
fi
if section green; then
  if g++ -std=c++17 -I"$CUDA_INC" "$SCRIPT_DIR/green_ctx.cpp" -o "$BUILD/green_ctx" -lcuda 2>"$LOGS/green_build.err"; then
    run_step green_ctx_native 60 "$BUILD/green_ctx"
    preloaded green_ctx_in_slice_50pct 60 GPUSHARE_SM=50% -- "$BUILD/green_ctx"
    preloaded green_ctx_in_slice_16 60 GPUSHARE_SM=16 -- "$BUILD/green_ctx" 8
    preloaded green_ctx_memory_limit 60 GPUSHARE_MEM_LIMIT=8Gi -- "$BUILD/green_ctx"
  else
    record green_ctx_build FAIL "$(tail -n 3 "$LOGS/green_build.err" | paste -sd' ')"
  fi
fi

# ---- a graph-only tenant beside a priority requester with an idle timeout ----------------------
# Tenant a holds 40 GiB and then only replays a CUDA graph; tenant b (same priority,
# GPUSHARE_IDLE_TIMEOUT=2s) bursts 50 GiB into it. a is busy: it must not be terminated.
if section graph && ! over_budget; then
  dir=$(fresh_ledger)
  common=(LD_PRELOAD="$LIB" GPUSHARE_LEDGER_DIR="$dir" GPUSHARE_RESOLVER=priority GPUSHARE_MEM_REQUEST=4Gi
          GPUSHARE_MEM_LIMIT=70Gi GPUSHARE_WAIT_TIMEOUT=3s GPUSHARE_LOG_LEVEL=info)
  env "${common[@]}" GPUSHARE_TENANT=a timeout 90 "$PY" "$W" graph 0 14 $((40 * GiB)) \
    >"$LOGS/graph_only_a.log" 2>"$LOGS/graph_only_a.err" &
  a=$!
  for _ in $(seq 60); do grep -q REPLAYING "$LOGS/graph_only_a.log" 2>/dev/null && break; sleep 0.5; done
  sleep 3
  env "${common[@]}" GPUSHARE_TENANT=b GPUSHARE_IDLE_TIMEOUT=2s timeout 60 "$PY" "$W" burst 0 $((50 * GiB)) \
    >"$LOGS/graph_only_b.log" 2>"$LOGS/graph_only_b.err"
  wait $a
  rc=$?
  b_got=$(grep -a '^BURST' "$LOGS/graph_only_b.log" | cut -c7- | head -c 160)
  if ((rc == 0)) && grep -q 'CHECK PASS graph_only_tenant_survived' "$LOGS/graph_only_a.log"; then
    record graph_only_not_idle PASS "a survived ($(grep -a '^SUMMARY' "$LOGS/graph_only_a.log" | cut -c10-)); b: $b_got"
  else
    record graph_only_not_idle FAIL "a rc=$rc ($(grep -aiE 'terminat|SIGTERM' "$LOGS/graph_only_a.err" | head -n1 | cut -c1-120)); b: $b_got"
  fi
  "$SMI" --ledger-dir "$dir" >"$LOGS/graph_only_smi.txt" 2>&1
fi

# ---- nvidia-smi in a preloaded shell ------------------------------------------------------------
if section smi; then
  shown=$(env LD_PRELOAD="$LIB" GPUSHARE_LEDGER_DIR="$(fresh_ledger)" GPUSHARE_MEM_LIMIT=6Gi \
          bash -c 'nvidia-smi --query-gpu=memory.total,memory.used --format=csv,noheader,nounits' 2>&1 | head -n1)
  total_mib=$(cut -d, -f1 <<<"$shown" | tr -d ' ')
  [[ $total_mib == 6144 ]] && record nvidia_smi_shows_quota PASS "memory.total,used = $shown MiB" ||
    record nvidia_smi_shows_quota FAIL "shown: $shown (want 6144 MiB total)"
fi

# ---- N concurrent starts (tests/gpu/concurrent_starts.sh) --------------------------------------
if section starts; then
  if [[ -f $SCRIPT_DIR/concurrent_starts.sh ]]; then
    run_step concurrent_starts 200 bash "$SCRIPT_DIR/concurrent_starts.sh" "$STAGE"
  else
    record concurrent_starts FAIL "tests/gpu/concurrent_starts.sh missing"
  fi
fi

# ---- NULL, zero and invalid arguments: the driver's answers with and without the library --------
if section args; then
  if g++ -std=c++17 -I"$CUDA_INC" "$ROOT/tests/compat/arg_table.cpp" -o "$BUILD/arg_table" -lcuda -ldl \
       2>"$LOGS/arg_table_build.err"; then
    timeout 60 "$BUILD/arg_table" >"$LOGS/arg_table.native" 2>"$LOGS/arg_table.native.err"
    for cfg in "GPUSHARE_MEM_LIMIT=8Gi" "GPUSHARE_MEM_LIMIT=8Gi GPUSHARE_RESOLVER=swap" "GPUSHARE_SM=50%" \
               "GPUSHARE_COMPUTE=50%"; do
      tag=$(tr -c 'A-Za-z0-9\n' _ <<<"$cfg" | tr -d '\n')
      # shellcheck disable=SC2086
      env LD_PRELOAD="$LIB" GPUSHARE_LEDGER_DIR="$(fresh_ledger)" $cfg timeout 60 "$BUILD/arg_table" \
        >"$LOGS/arg_table.$tag" 2>"$LOGS/arg_table.$tag.err"
      rows=$(wc -l <"$LOGS/arg_table.native")
      if diff "$LOGS/arg_table.native" "$LOGS/arg_table.$tag" >"$LOGS/arg_table.$tag.diff"; then
        record "args_same_as_driver_$tag" PASS "$rows rows identical to the driver's"
      else
        record "args_same_as_driver_$tag" FAIL "$(grep -c '^>' "$LOGS/arg_table.$tag.diff") of $rows rows differ: $(grep '^>' "$LOGS/arg_table.$tag.diff" | head -n 3 | cut -c1-80 | paste -sd';')"
      fi
    done
  else
    record arg_table_build FAIL "$(tail -n 3 "$LOGS/arg_table_build.err" | paste -sd' ' | cut -c1-200)"
  fi
fi

# ---- dlsym answered for the caller (tests/gpu/dlsym_chain.sh) ----------------------------------
if section dlsym; then
  if [[ -f $SCRIPT_DIR/dlsym_chain.sh ]]; then
    run_step dlsym_chain 120 bash "$SCRIPT_DIR/dlsym_chain.sh" "$STAGE"
  else
    record dlsym_chain FAIL "tests/gpu/dlsym_chain.sh missing"
  fi
fi

rm -rf "$BUILD"
print_rows "gpushare compat summary"
