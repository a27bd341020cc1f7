#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# GPU check of issue 6 (what a Kubernetes tenant sees): nvidia-smi under the library shows the
# quota (from GPUSHARE_ and from the HAMi, KAI and aliyun variables); a PyTorch process started
# by gpushare-run is limited; nvidia-smi shows the tenant its own use and processes only; the
# metrics endpoint reports the tenant while it runs. Prints a summary table last.
#
#   bash tests/gpu/k8s.sh [STAGE]      (default .stage; make it with: bash tests/gpu/stage.sh build .stage)
#
# STAGE holds lib/libgpushare.so, bin/gpushare-run, bin/gpushare-exporter (its shared libraries
# in lib/, put on LD_LIBRARY_PATH for the exporter alone) and bin/gpushare-smi. Logs: $OUT/k8s
# (or /tmp/gpushare-out/k8s). Exit status 0 iff every row passed.
set -u
STAGE=$(cd "${1:-.stage}" 2>/dev/null && pwd || echo "${1:-.stage}")
HERE=$(cd "$(dirname "$0")" && pwd)
LIB=$STAGE/lib/libgpushare.so
LOGS=${OUT:-/tmp/gpushare-out}/k8s
mkdir -p "$LOGS"
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
for v in $(compgen -e | grep -E '^(GPUSHARE_|CUDA_DEVICE_|CUDA_TASK_PRIORITY$|ALIYUN_COM_|GPU_PORTION$|POD_|CONTAINER_NAME$|LD_PRELOAD$|CUDA_VISIBLE_DEVICES$)'); do
  unset "$v"
done
export GPUSHARE_LEDGER_DIR=/tmp/gpushare-k8s-ledger-$$
MiB=$((1 << 20))
GiB=$((1 << 30))

NAMES=() STATUS=() FIGS=()
record() {  # NAME PASS|FAIL|INFO FIGURES
  NAMES+=("$1") STATUS+=("$2") FIGS+=("$3")
  printf '[%-4s] %-26s %s\n' "$2" "$1" "$3"
}
check() {  # NAME CONDITION-EXIT-STATUS FIGURES
  if [ "$2" -eq 0 ]; then record "$1" PASS "$3"; else record "$1" FAIL "$3"; fi
}
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; rm -rf "$GPUSHARE_LEDGER_DIR"; }
trap cleanup EXIT

# nvidia-smi --query-gpu for device 0 under the library with extra environment: "total,used,free" in MiB.
smi_memory() { env LD_PRELOAD="$LIB" "$@" timeout 30 nvidia-smi -i 0 --query-gpu=memory.total,memory.used,memory.free --format=csv,noheader,nounits 2>>"$LOGS/smi.err" | tr -d ' '; }
smi_apps() { env LD_PRELOAD="$LIB" "$@" timeout 30 nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits 2>>"$LOGS/smi.err" | tr -d ' ' | paste -sd';'; }

echo "=== gpushare k8s GPU check: stage=$STAGE logs=$LOGS"
# ---- preflight ---------------------------------------------------------------------------------
{
  echo "## nvidia-smi"; timeout 20 nvidia-smi 2>&1
  echo "## ldd nvidia-smi"; ldd "$(command -v nvidia-smi)" 2>&1
  echo "## stage"; ls -lR "$STAGE" 2>&1
  echo "## ldd exporter"; LD_LIBRARY_PATH=$STAGE/lib ldd "$STAGE/bin/gpushare-exporter" 2>&1
  echo "## nm nvml*"; nm -D --defined-only "$LIB" 2>&1 | grep nvml
} >"$LOGS/preflight.log" 2>&1
PHYS_MIB=$(timeout 20 nvidia-smi -i 0 --query-gpu=memory.total --format=csv,noheader,nounits 2>/dev/null | tr -d ' ')
check preflight_gpu "$([ -n "$PHYS_MIB" ]; echo $?)" "device 0: ${PHYS_MIB:-?} MiB"
missing=""
for f in lib/libgpushare.so bin/gpushare-run bin/gpushare-exporter bin/gpushare-smi; do [ -x "$STAGE/$f" ] || missing="$missing $f"; done
unresolved=$(LD_LIBRARY_PATH=$STAGE/lib ldd "$STAGE/bin/gpushare-exporter" 2>&1 | grep -c 'not found')
check preflight_stage "$([ -z "$missing" ] && [ "$unresolved" = 0 ]; echo $?)" "missing:${missing:- none}; exporter unresolved libs: $unresolved"
nvml_exports=$(nm -D --defined-only "$LIB" 2>/dev/null | grep -c ' nvml')
check preflight_nvml_exports "$([ "$nvml_exports" -ge 5 ]; echo $?)" "$nvml_exports nvml* symbols exported"

# ---- nvidia-smi shows the quota ----------------------------------------------------------------
row=$(smi_memory GPUSHARE_MEM_LIMIT=4Gi)
check smi_gpushare_limit "$([ "${row%%,*}" = 4096 ]; echo $?)" "GPUSHARE_MEM_LIMIT=4Gi: total,used,free MiB = ${row:-none} (physical $PHYS_MIB)"
env LD_PRELOAD="$LIB" GPUSHARE_MEM_LIMIT=4Gi timeout 30 nvidia-smi >"$LOGS/smi_table.log" 2>&1
check smi_table "$(grep -qE '/ *4096MiB' "$LOGS/smi_table.log"; echo $?)" "plain nvidia-smi's table shows $(grep -o '[0-9]*MiB / *[0-9]*MiB' "$LOGS/smi_table.log" | head -1)"
row=$(smi_memory CUDA_DEVICE_MEMORY_LIMIT_0=3000m)
check smi_hami "$([ "${row%%,*}" = 3000 ]; echo $?)" "CUDA_DEVICE_MEMORY_LIMIT_0=3000m: ${row:-none}"
row=$(smi_memory GPU_PORTION=0.25)
want=$((PHYS_MIB / 4))
check smi_kai "$([ -n "$row" ] && [ $(( ${row%%,*} - want )) -ge -1 ] && [ $(( ${row%%,*} - want )) -le 1 ]; echo $?)" "GPU_PORTION=0.25: ${row:-none} (want ~$want)"
row=$(smi_memory ALIYUN_COM_GPU_MEM_CONTAINER=5 ALIYUN_COM_GPU_MEM_DEV=$((PHYS_MIB / 1024)))
check smi_aliyun_gib "$([ "${row%%,*}" = 5120 ]; echo $?)" "ALIYUN_COM_GPU_MEM_CONTAINER=5 DEV=$((PHYS_MIB / 1024)) (GiB inferred): ${row:-none}"
row=$(smi_memory ALIYUN_COM_GPU_MEM_CONTAINER=2048 ALIYUN_COM_GPU_MEM_DEV="$PHYS_MIB")
check smi_aliyun_mib "$([ "${row%%,*}" = 2048 ]; echo $?)" "ALIYUN_COM_GPU_MEM_CONTAINER=2048 DEV=$PHYS_MIB (MiB inferred): ${row:-none}"
row=$(smi_memory GPUSHARE_MEM_LIMIT=1Gi CUDA_DEVICE_MEMORY_LIMIT_0=3000m)
check smi_precedence "$([ "${row%%,*}" = 1024 ]; echo $?)" "GPUSHARE_MEM_LIMIT=1Gi over CUDA_DEVICE_MEMORY_LIMIT_0=3000m: ${row:-none}"
: >"$LOGS/smi.err"
row=$(smi_memory GPUSHARE_MEM_LIMIT='8GB?')
check smi_bad_value "$([ "${row%%,*}" != "$PHYS_MIB" ] && grep -q 'GPUSHARE_MEM_LIMIT="8GB?"' "$LOGS/smi.err"; echo $?)" "8GB?: nvidia-smi printed '${row:-nothing}', stderr: $(head -c 120 "$LOGS/smi.err" | tr '\n' ' ')"

# ---- a PyTorch tenant started by gpushare-run ----------------------------------------------------
RELEASE=$LOGS/release-$$
rm -f "$RELEASE"
TENANT_ENV=(POD_NAMESPACE=gpu-test POD_NAME=k8s-sh CONTAINER_NAME=worker)
env "${TENANT_ENV[@]}" GPUSHARE_LOG_LEVEL=info "$STAGE/bin/gpushare-run" --library "$LIB" --mem-request 2Gi --mem-limit 4Gi \
  --sm 25% --priority 10 --resolver wait -- "$PY" "$HERE/k8s_worker.py" "$RELEASE" 3072 >"$LOGS/worker.log" 2>"$LOGS/worker.err" &
pids+=($!)
for _ in $(seq 1 1200); do grep -q '^READY' "$LOGS/worker.log" 2>/dev/null && break; kill -0 "${pids[0]}" 2>/dev/null || break; sleep 0.1; done
val() { sed -n "s/^$1 //p" "$LOGS/worker.log" | tail -1; }
total=$(val meminfo_total) filled=$(val filled_bytes) held=$(val held_bytes) wpid=$(val pid)
check run_ready "$(grep -q '^READY' "$LOGS/worker.log"; echo $?)" "worker pid ${wpid:-?}; $(tail -2 "$LOGS/worker.err" | tr '\n' ' ' | cut -c1-160)"
check run_meminfo "$([ "$total" = $((4 * GiB)) ]; echo $?)" "torch.cuda.mem_get_info total ${total:-?} (want $((4 * GiB)))"
check run_limited "$([ -n "$filled" ] && [ "$filled" -le $((4 * GiB)) ] && [ "$(val oom)" = 1 ]; echo $?)" "filled $((${filled:-0} / MiB)) MiB in 256 MiB blocks, then torch.OutOfMemoryError=$(val oom)"
sms=$(val sm_count)
check run_sm_slice "$([ -n "$sms" ] && [ "$sms" -ge 33 ] && [ "$sms" -le 40 ]; echo $?)" "--sm 25%: the tenant sees ${sms:-?} SMs (25% of 132, rounded up to whole TPCs)"

# ---- nvidia-smi as the tenant (its ledger figures) and as another tenant ---------------------------
row=$(smi_memory "${TENANT_ENV[@]}")
used=$(echo "$row" | cut -d, -f2)
check smi_tenant_used "$([ "${row%%,*}" = 4096 ] && [ -n "$used" ] && [ "$used" -ge $((${held:-0} / MiB)) ] && [ "$used" -le 4096 ]; echo $?)" \
  "as the tenant: total,used,free ${row:-none} MiB; torch holds $((${held:-0} / MiB)) MiB"
apps=$(smi_apps "${TENANT_ENV[@]}")
if [ "$(readlink /proc/self/ns/pid)" = "pid:[4026531836]" ]; then
  check smi_tenant_apps "$([[ ";$apps;" == *";$wpid,"* ]]; echo $?)" "as the tenant: compute apps '${apps}' (worker $wpid)"
else  # NVML lists the initial namespace's pids, which cannot be attributed from here: none is shown
  check smi_tenant_apps "$([ -z "$apps" ]; echo $?)" "nested PID namespace: as the tenant, compute apps '${apps:-none}' (expected none; worker $wpid)"
fi
apps=$(smi_apps POD_NAMESPACE=gpu-test POD_NAME=other CONTAINER_NAME=worker GPUSHARE_MEM_LIMIT=1Gi)
check smi_other_apps "$([ -n "$wpid" ] && [[ ";$apps;" != *";$wpid,"* ]]; echo $?)" "as another tenant: compute apps '${apps:-none}'"
# The public NVML API (what pynvml and exporters call) as another tenant: the worker must not show.
apps=$(env LD_PRELOAD="$LIB" POD_NAMESPACE=gpu-test POD_NAME=other CONTAINER_NAME=worker GPUSHARE_MEM_LIMIT=1Gi \
  timeout 30 "$PY" "$HERE/nvml_procs.py" 2>>"$LOGS/smi.err")
check nvml_api_other_apps "$([ -n "$wpid" ] && [[ ";$apps;" != *";$wpid,"* ]]; echo $?)" "nvmlDeviceGetComputeRunningProcesses_v3 as another tenant: '${apps:-none}'"
apps=$(env LD_PRELOAD="$LIB" "${TENANT_ENV[@]}" GPUSHARE_MEM_LIMIT=4Gi GPUSHARE_MEM_REQUEST=2Gi timeout 30 "$PY" "$HERE/nvml_procs.py" 2>>"$LOGS/smi.err")
record nvml_api_tenant_apps INFO "the same as the tenant: '${apps:-none}' (worker $wpid)"
apps=$(env -u LD_PRELOAD timeout 30 nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits 2>/dev/null | tr -d ' ' | paste -sd';')
record smi_no_library INFO "without the library: '${apps}'"

# ---- the metrics endpoint while it runs ----------------------------------------------------------
LD_LIBRARY_PATH=$STAGE/lib "$STAGE/bin/gpushare-exporter" --listen 127.0.0.1:0 --ledger-dir "$GPUSHARE_LEDGER_DIR" >"$LOGS/exporter.log" 2>"$LOGS/exporter.err" &
pids+=($!)
for _ in $(seq 1 50); do grep -q 'http://' "$LOGS/exporter.log" && break; sleep 0.1; done
url=$(grep -o 'http://[^ ]*' "$LOGS/exporter.log" | head -1)
scrape() {  # prints "used request limit oom processes namespace pod container" of the tenant
  "$PY" - "$url" <<'PY'
import re, sys, urllib.request
text = urllib.request.urlopen(sys.argv[1], timeout=10).read().decode()
want = {"gpushare_memory_used_bytes": "-", "gpushare_memory_request_bytes": "-", "gpushare_memory_limit_bytes": "-",
        "gpushare_oom_denials_total": "-", "gpushare_processes": "-"}
labels = "- - -"
for line in text.splitlines():
    m = re.match(r'(\w+)\{(.*)\} (\S+)$', line)
    if m and m.group(1) in want and 'tenant="gpu-test/k8s-sh/worker"' in m.group(2):
        want[m.group(1)] = str(int(float(m.group(3))))
        l = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
        labels = f'{l.get("namespace", "-")} {l.get("pod", "-")} {l.get("container", "-")}'
print(" ".join(want.values()), labels)
PY
}
read -r m_used m_request m_limit m_oom m_procs m_ns m_pod m_ctr <<<"$(scrape 2>>"$LOGS/exporter.err")"
check metrics_served "$([ -n "$url" ] && [ "${m_used:--}" != - ]; echo $?)" "${url:-no url}: used ${m_used:-?} request ${m_request:-?} limit ${m_limit:-?} oom ${m_oom:-?} processes ${m_procs:-?}"
check metrics_values "$([ "$m_request" = $((2 * GiB)) ] && [ "$m_limit" = $((4 * GiB)) ] && [ "$m_used" -ge "${held:-1}" ] && [ "$m_oom" -ge 1 ] && [ "$m_procs" = 1 ]; echo $?)" \
  "request 2Gi, limit 4Gi, used >= held $((${held:-0} / MiB)) MiB, oom >= 1, 1 process"
check metrics_labels "$([ "$m_ns $m_pod $m_ctr" = "gpu-test k8s-sh worker" ]; echo $?)" "namespace/pod/container = $m_ns/$m_pod/$m_ctr"
touch "$RELEASE"
wait "${pids[0]}" 2>/dev/null
served_before=$m_request
read -r m_used _ _ _ m_procs _ <<<"$(scrape 2>>"$LOGS/exporter.err")"
# Its slot is free at once; its use stays counted until the ledger reaps it (next join or reap).
check metrics_after_exit "$([ "$served_before" = $((2 * GiB)) ] && { [ "$m_procs" = - ] || [ "$m_procs" = 0 ]; }; echo $?)" \
  "after the worker exited: live processes ${m_procs}, used ${m_used} (until reaped)"

# ---- summary -------------------------------------------------------------------------------------
fails=0
for st in "${STATUS[@]}"; do [ "$st" = FAIL ] && fails=$((fails + 1)); done
{
  echo
  echo "=== summary (tests/gpu/k8s.sh)"
  printf '%-26s %-5s %s\n' ROW STATUS FIGURES
  for i in "${!NAMES[@]}"; do printf '%-26s %-5s %s\n' "${NAMES[$i]}" "${STATUS[$i]}" "${FIGS[$i]}"; done
  echo "$(( ${#NAMES[@]} - fails )) rows passed or informational, $fails failed"
} | tee "$LOGS/summary.txt"
[ "$fails" = 0 ]
