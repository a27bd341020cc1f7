#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Processes that start together (issue 15, finding 7): N = 16, 48 and 96 processes started at
# once, each cuInit + primary context + 64 MiB (tests/gpu/concurrent_start.c, driver API only),
# without gpushare and with it (GPUSHARE_MEM_LIMIT=1Gi each, its own tenant, a fresh ledger
# directory per batch; a ledger holds 64 tenants, so 96 go as 48 tenants of 2 processes, each
# tenant limited to 2Gi). With gpushare all must be ready, each charged for its context what a
# lone start is (its ledger process slot's context_bytes, from gpushare-smi --json, against a
# lone start's in another fresh ledger). Also: a context that does not fit says why at warn level.
#   bash tests/gpu/concurrent_starts.sh [STAGE_DIR]     (needs STAGE/lib/libgpushare.so, STAGE/bin/gpushare-smi)
# Knobs: GS_STARTS ("16 48 96"), GS_STARTS_REQUEST_MIB (640 per process: 96 must fit the GPU),
# GS_STARTS_GPU (0), GS_STARTS_BUDGET (170 s; later batches are SKIPped), GS_STARTS_TOL_MIB (8).
# Without nvcc it builds the worker with cc against CUDA_INC (/usr/local/cuda/include) and
# CUDA_LIBDIR (a directory with libcuda.so.1), which lets it run against the fake driver too.
# Logs: $OUT/concurrent_starts/<batch>/w<i>.{out,err}, smi.json, smi.txt, apps.txt. Table last.
set -u
set -o pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STAGE=$(cd "${1:-.stage}" 2>/dev/null && pwd || echo "${1:-.stage}")
LIB=$STAGE/lib/libgpushare.so
SMI=$STAGE/bin/gpushare-smi
OUTD=${OUT:-/tmp/gpushare-out}/concurrent_starts
BUDGET=${GS_STARTS_BUDGET:-170}
STARTS=${GS_STARTS:-16 48 96}
REQUEST_MIB=${GS_STARTS_REQUEST_MIB:-640}
MAX_TENANTS=64  # GS_LEDGER_TENANT_SLOTS
TOL_MIB=${GS_STARTS_TOL_MIB:-8}
PY=${PYTHON:-python3}
rm -rf "$OUTD"
mkdir -p "$OUTD"
BUILD=$(mktemp -d /tmp/gpushare-starts.XXXXXX)
trap 'rm -rf "$BUILD"' EXIT

# A clean slate (the fake driver's own variables may stay, for a run without a GPU).
for v in $(compgen -e | grep -E '^GPUSHARE_' | grep -v '^GPUSHARE_FAKE_'); do unset "$v"; done
unset LD_PRELOAD
export CUDA_VISIBLE_DEVICES=${GS_STARTS_GPU:-0}

LOGS=$OUTD
# shellcheck source=rows.sh
. "$HERE/rows.sh"
now_ms() { date +%s%3N; }

echo "=== concurrent starts: stage=$STAGE logs=$OUTD starts=[$STARTS] request=${REQUEST_MIB}Mi budget=${BUDGET}s"
GPU=$(timeout 20 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader -i "$CUDA_VISIBLE_DEVICES" 2>/dev/null | head -n1)
echo "=== GPU: ${GPU:-nvidia-smi unavailable}"
[[ -f $LIB ]] || record preflight_lib FAIL "$LIB not found"
[[ -x $SMI ]] || record preflight_smi FAIL "$SMI not found"

# ---- the worker --------------------------------------------------------------------------------
W=$BUILD/concurrent_start
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
if [[ -x $NVCC ]]; then
  CUDA_HOME_GUESS=$(dirname "$(dirname "$(readlink -f "$NVCC")")")
  "$NVCC" -O2 -o "$W" "$HERE/concurrent_start.c" -L"$CUDA_HOME_GUESS/lib64/stubs" \
    -L"$CUDA_HOME_GUESS/targets/x86_64-linux/lib/stubs" -lcuda >"$OUTD/build.log" 2>&1
else
  cc -O2 -std=c11 -D_DEFAULT_SOURCE -I"${CUDA_INC:-/usr/local/cuda/include}" -o "$W" "$HERE/concurrent_start.c" \
    -L"${CUDA_LIBDIR:-/usr/lib/x86_64-linux-gnu}" -l:libcuda.so.1 >"$OUTD/build.log" 2>&1
fi
if [[ -x $W ]]; then
  record build_worker PASS "$(basename "$NVCC" 2>/dev/null) ok"
else
  record build_worker FAIL "$(grep -m1 -i error "$OUTD/build.log" | cut -c1-150)"
fi

# ---- one batch: N processes let go at once -----------------------------------------------------
# batch NAME N WITH(0|1) [VAR=value...]: sets B_READY, B_FAIL, B_SILENT, B_MS (go to last READY),
# B_DIR; with gpushare the ledger is B_DIR/ledger (fresh) and gpushare-smi's views are saved.
batch() {
  local name=$1 n=$2 with=$3
  shift 3
  B_DIR=$OUTD/$name
  mkdir -p "$B_DIR"
  local go=$B_DIR/go rel=$B_DIR/release i
  local -a pids=()
  # Processes per tenant: 1, or as many as make the tenants fit the ledger's slots.
  local k=$(((n + MAX_TENANTS - 1) / MAX_TENANTS))
  for ((i = 1; i <= n; i++)); do
    if ((with)); then
      env LD_PRELOAD="$LIB" GPUSHARE_LEDGER_DIR="$B_DIR/ledger" GPUSHARE_TENANT="cs-$name-$(((i - 1) / k))" \
        GPUSHARE_MEM_LIMIT="${k}Gi" GPUSHARE_MEM_REQUEST="$((k * REQUEST_MIB))Mi" GPUSHARE_LOG_LEVEL=info "$@" \
        timeout -k 5 150 "$W" "$go" "$rel" >"$B_DIR/w$i.out" 2>"$B_DIR/w$i.err" </dev/null &
    else
      env "$@" timeout -k 5 150 "$W" "$go" "$rel" >"$B_DIR/w$i.out" 2>"$B_DIR/w$i.err" </dev/null &
    fi
    pids+=($!)
  done
  sleep 0.5  # all loaded, waiting for the file
  local t0 t_last done_n=0 waited=0
  t0=$(now_ms)
  t_last=$t0
  touch "$go"
  while ((waited < 1200)); do  # 60 s
    B_READY=$(cat "$B_DIR"/w*.out 2>/dev/null | grep -c '^READY')
    B_FAIL=$(cat "$B_DIR"/w*.out 2>/dev/null | grep -c '^FAIL')
    ((B_READY > done_n)) && t_last=$(now_ms) && done_n=$B_READY
    ((B_READY + B_FAIL >= n)) && break
    local alive=0 p
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done
    ((alive == 0)) && break
    sleep 0.05
    waited=$((waited + 1))
  done
  B_MS=$((t_last - t0))
  B_SILENT=$((n - B_READY - B_FAIL))
  if ((with)) && [[ -x $SMI ]]; then
    "$SMI" --json --ledger-dir "$B_DIR/ledger" >"$B_DIR/smi.json" 2>&1
    "$SMI" --ledger-dir "$B_DIR/ledger" >"$B_DIR/smi.txt" 2>&1
  fi
  timeout 20 nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits >"$B_DIR/apps.txt" 2>&1
  timeout 20 nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits >"$B_DIR/gpu_used.txt" 2>&1
  touch "$rel"
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  # The next batch's first start measures alone: wait until the GPU lists no process (10 s at most).
  local settle
  for settle in $(seq 1 100); do
    local apps
    apps=$(timeout 10 nvidia-smi --query-compute-apps=pid --format=csv,noheader 2>/dev/null) || break
    [[ -z $apps ]] && break
    sleep 0.1
  done
}

# What went wrong, for a row: the first FAIL lines, gpushare's warnings, silent workers' stderr.
diagnose() {  # dir
  grep -h '^FAIL' "$1"/w*.out 2>/dev/null | sort | uniq -c | sort -rn | head -n 3 | sed 's/^ */        /'
  grep -h 'warning' "$1"/w*.err 2>/dev/null | sed 's/gpushare\[[0-9]*\]/gpushare/' | sort | uniq -c | head -n 3 |
    cut -c1-300 | sed 's/^ */        /'
  local f
  for f in "$1"/w*.out; do
    grep -q . "$f" || { tail -n 2 "${f%.out}.err" | sed "s|^|        $(basename "$f" .out) stderr: |"; break; }
  done
}

# Where each process's context figure came from (the library's info line), counted.
sources() {  # dir
  grep -h "context's own memory" "$1"/w*.err 2>/dev/null |
    sed -E "s/.*context's own memory [0-9.]+ MiB \(([A-Za-z' ]+).*/\1/" | sort | uniq -c | awk '{c=$1; $1=""; printf "%s%s x%d", sep, substr($0,2), c; sep=", "}'
}

# The ledger's figures: "ctx_min ctx_median ctx_max used_min used_max shared n_equal_shared count"
ledger_figures() {  # smi.json lone_ctx tol_bytes
  "$PY" - "$@" <<'EOF'
import json, sys
try:
    j = json.load(open(sys.argv[1]))
except Exception as e:
    print("unreadable", e); sys.exit(0)
ctx, used, shared = [], [], 0
for l in j.get("ledgers", []):
    co = l.get("context_overhead") or {}
    for t in l["tenants"]:
        for p in t["processes"]:
            if p["context_bytes"] > 0 or p["used_bytes"] > 0:
                ctx.append(p["context_bytes"]); used.append(p["used_bytes"]); shared = co.get("bytes", 0) or shared
if not ctx:
    print("none 0 0 0 0 0 0 0"); sys.exit(0)
ctx.sort(); used.sort()
lone, tol = int(sys.argv[2]), int(sys.argv[3])
off = sum(1 for c in ctx if abs(c - lone) > tol)
print(ctx[0], ctx[len(ctx) // 2], ctx[-1], used[0], used[-1], shared, sum(1 for c in ctx if c == shared), len(ctx), off)
EOF
}
mib() { awk -v b="$1" 'BEGIN { if (b ~ /^[0-9]+$/) printf "%.1f", b / 1048576; else print b }'; }

# ---- a lone start: the reference charge ----------------------------------------------------------
LONE_CTX=""
if ! over_budget && [[ -x $W && -f $LIB ]]; then
  batch lone 1 1
  read -r c_min _ _ u_min _ shared _ _ _ <<<"$(ledger_figures "$B_DIR/smi.json" 0 0)"
  line=$(grep -h "context's own memory" "$B_DIR/w1.err" | head -n1 | sed 's/.*info: //')
  wpid=$(sed -nE 's/^READY pid=([0-9]+).*/\1/p' "$B_DIR/w1.out")
  fig=$(awk -F', *' -v p="$wpid" '$1 == p {print $2}' "$B_DIR/apps.txt")
  [[ -z $fig && $(grep -cE '^[0-9]+, *[0-9]+' "$B_DIR/apps.txt") == 1 ]] && fig=$(awk -F', *' '{print $2}' "$B_DIR/apps.txt")
  figs="context $(mib "$c_min") MiB, used $(mib "$u_min") MiB, ledger's shared figure $(mib "$shared") MiB; nvidia-smi: process ${fig:-?} MiB; log: ${line:-none}"
  if ((B_READY == 1)) && [[ $c_min =~ ^[0-9]+$ ]] && ((c_min > 0)) && [[ $shared == "$c_min" ]]; then
    LONE_CTX=$c_min
    record lone_start PASS "$figs"
  else
    record lone_start FAIL "ready $B_READY/1; $figs"
    diagnose "$B_DIR"
  fi
else
  record lone_start SKIP "no worker, no library or no time"
fi

# ---- N at once, without and with gpushare -------------------------------------------------------
for n in $STARTS; do
  if over_budget || [[ ! -x $W ]]; then
    record "N${n}_without_gpushare" SKIP "time budget (${BUDGET}s) used up or no worker"
    record "N${n}_ready" SKIP "-"
    record "N${n}_charged_as_lone" SKIP "-"
    continue
  fi
  batch "plain_$n" "$n" 0
  st=PASS
  ((B_READY == n)) || st=FAIL
  used=$(head -n1 "$B_DIR/gpu_used.txt" | tr -d ' ')
  [[ $used =~ ^[0-9]+$ ]] || used='?'
  record "N${n}_without_gpushare" "$st" "ready $B_READY/$n (fail $B_FAIL, silent $B_SILENT) in $B_MS ms; device used $used MiB with all of them"
  [[ $st == PASS ]] || diagnose "$B_DIR"
  if over_budget || [[ ! -f $LIB ]]; then
    record "N${n}_ready" SKIP "time budget (${BUDGET}s) used up or no library"
    record "N${n}_charged_as_lone" SKIP "-"
    continue
  fi
  batch "gpushare_$n" "$n" 1
  st=PASS
  ((B_READY == n)) || st=FAIL
  record "N${n}_ready" "$st" "ready $B_READY/$n (fail $B_FAIL, silent $B_SILENT) in $B_MS ms; figures: $(sources "$B_DIR")"
  [[ $st == PASS ]] || diagnose "$B_DIR"
  tol=$((TOL_MIB << 20))
  read -r c_min c_med c_max u_min u_max shared n_eq count off <<<"$(ledger_figures "$B_DIR/smi.json" "${LONE_CTX:-0}" "$tol")"
  figs="context min/median/max $(mib "$c_min")/$(mib "$c_med")/$(mib "$c_max") MiB vs lone $(mib "${LONE_CTX:-?}") MiB (tolerance ${TOL_MIB} MiB)"
  figs="$figs; $n_eq of $count equal the ledger's shared $(mib "$shared") MiB; used $(mib "$u_min")..$(mib "$u_max") MiB"
  if [[ -n $LONE_CTX && $count == "$n" && $off == 0 ]]; then
    record "N${n}_charged_as_lone" PASS "$figs"
  else
    record "N${n}_charged_as_lone" FAIL "$figs; $off off the lone figure; $count processes in the ledger"
    grep -h "context's own memory" "$B_DIR"/w*.err | grep -v 'shared in the ledger)' | sed 's/gpushare\[[0-9]*\] info: /        /' | head -n 5
  fi
done

# ---- a context that does not fit says why, at warn level ------------------------------------------
if ! over_budget && [[ -x $W && -f $LIB ]]; then
  batch refused 1 1 GPUSHARE_MEM_LIMIT=256Mi GPUSHARE_MEM_REQUEST=256Mi GPUSHARE_LOG_LEVEL=warn
  warn=$(grep -h 'warning: device .*CUDA context refused' "$B_DIR/w1.err" | head -n1 | sed 's/gpushare\[[0-9]*\] //')
  failed=$(grep -h '^FAIL' "$B_DIR/w1.out")
  if [[ $failed == *"step=cuDevicePrimaryCtxRetain"*"CUDA_ERROR_OUT_OF_MEMORY"* && -n $warn ]]; then
    record refused_context_warns PASS "$(cut -c1-260 <<<"$warn")"
  else
    record refused_context_warns FAIL "worker: ${failed:-$(head -c 120 "$B_DIR/w1.out")}; warning: ${warn:-none}"
    tail -n 3 "$B_DIR/w1.err" | sed 's/^/        stderr: /'
  fi
else
  record refused_context_warns SKIP "no worker, no library or no time"
fi

# ---- summary (last) -----------------------------------------------------------------------------
print_rows "concurrent starts"
ok=$?
# For tests/gpu/compat.sh (rows.sh's run_step): a CHECK line per row and one SUMMARY line.
summary=""
npass=0
for i in "${!NAMES[@]}"; do
  [[ ${STATUS[$i]} == PASS ]] && npass=$((npass + 1))
  [[ ${STATUS[$i]} == PASS ]] && echo "CHECK PASS ${NAMES[$i]}" || echo "CHECK FAIL ${NAMES[$i]}: ${FIGS[$i]}" | cut -c1-400
  [[ ${NAMES[$i]} =~ ^N[0-9]+_(ready|charged_as_lone)$ ]] && summary="$summary${NAMES[$i]}=${STATUS[$i]} "
done
echo "SUMMARY: ${summary}${npass}/${#STATUS[@]} rows passed (table: $OUTD/summary.txt)"
exit $ok
