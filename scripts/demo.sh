#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds gpushare and shows what it is for: two tenants sharing one GPU, each with a request
# (memory held back for it) and a limit. One bursts into the memory the other does not use; the
# other's burst then collides and waits until the first frees; then, under the swap resolver,
# both hold more than the GPU has, taking turns through host memory. gpushare-smi after each step.
# On the GPU with PyTorch when there is one, else on the fake CUDA driver of the tests.
#   scripts/demo.sh                             installs what is missing, builds, runs
#   GPUSHARE_DEMO_STAGE=.stage scripts/demo.sh  runs a staged build (tests/gpu/stage.sh) on a GPU
#                                               machine without our Debian packages
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${GPUSHARE_DEMO_STAGE:-}" ]; then
  stage=$(cd "$GPUSHARE_DEMO_STAGE" && pwd)
  lib=$stage/lib/libgpushare.so smi_bin=$stage/bin/gpushare-smi fake=
else
  scripts/setup.sh
  build=$PWD/${GPUSHARE_BUILD_DIR:-build}
  lib=$build/libgpushare.so smi_bin=$build/gpushare-smi fake=$build/fake
fi
work=$(mktemp -d /tmp/gpushare-demo-XXXXXX)
declare -A fd pid
cleanup() {
  for t in "${!pid[@]}"; do kill "${pid[$t]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

if nvidia-smi -L >/dev/null 2>&1 && python3 -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null; then
  backend=torch
  mib=$(python3 -c 'import torch; print(torch.cuda.mem_get_info()[1] >> 20)')
  echo "demo: on the GPU ($(nvidia-smi -L | head -1)), two PyTorch tenants"
elif [ -z "$fake" ]; then
  echo "demo: a staged build runs on a GPU with PyTorch; none here" >&2
  exit 1
else
  backend=driver
  mib=6144
  export LD_LIBRARY_PATH=$fake GPUSHARE_FAKE_DEVICES=${mib}Mi GPUSHARE_FAKE_STATE_DIR=$work
  echo "demo: no GPU here; on the fake CUDA driver (tests/fake_driver), a 6 GiB device, two tenants"
fi
# part PERCENT: that part of the GPU's memory in MiB, in whole 256 MiB blocks (demo_tenant.py's).
part() { echo $((mib * $1 / 100 / 256 * 256)); }

# start NAME TENANT RESOLVER REQUEST_MIB LIMIT_MIB: a tenant (scripts/demo_tenant.py) told what to
# do through a FIFO; its answers go to $work/NAME.log.
start() {
  local name=$1 tenant=$2 resolver=$3 request=$4 limit=$5
  mkfifo "$work/$name.in"
  env LD_PRELOAD="$lib" GPUSHARE_LEDGER_DIR="$ledger" GPUSHARE_TENANT="$tenant" \
    GPUSHARE_MEM_REQUEST="${request}Mi" GPUSHARE_MEM_LIMIT="${limit}Mi" GPUSHARE_RESOLVER="$resolver" \
    GPUSHARE_WAIT_MODE=always GPUSHARE_WAIT_TIMEOUT=30s GPUSHARE_SWAP_QUANTUM=1s \
    python3 scripts/demo_tenant.py "$name" "$backend" <"$work/$name.in" >"$work/$name.log" 2>"$work/$name.err" &
  pid[$name]=$!
  exec {fd[$name]}>"$work/$name.in"
  expect "$name" "ready" 60
  echo "  $name = tenant '$tenant': request $request MiB, limit $limit MiB, resolver $resolver"
}
tell() { echo "$2" >&"${fd[$1]}"; }
# expect NAME TEXT SECONDS: waits for NAME to say TEXT (a line "NAME: TEXT...") and shows what it
# said since the last time.
declare -A seen
expect() {
  local i from
  for ((i = 0; i < $3 * 10; i++)); do
    from=$((${seen[$1]:-0} + 1))
    if tail -n +"$from" "$work/$1.log" 2>/dev/null | grep -q "^$1: $2"; then
      tail -n +"$from" "$work/$1.log" | grep -v ": ready$" | sed 's/^/    /' || true
      seen[$1]=$(wc -l <"$work/$1.log")
      return 0
    fi
    kill -0 "${pid[$1]}" 2>/dev/null || break
    sleep 0.1
  done
  echo "demo: $1 did not say '$2'; its log:" >&2
  cat "$work/$1.log" "$work/$1.err" >&2
  exit 1
}
stop() {
  for t in "$@"; do
    tell "$t" quit
    exec {fd[$t]}>&-
    wait "${pid[$t]}" 2>/dev/null || true
    unset "pid[$t]" "seen[$t]"
    rm -f "$work/$t.in" "$work/$t.log"
  done
}
smi() { echo "  gpushare-smi:"; "$smi_bin" --ledger-dir "$ledger" | sed 's/^/    /'; echo; }
# settled: waits until no process of the ledger is half-way through a swap.
settled() {
  local i
  for ((i = 0; i < 300; i++)); do
    "$smi_bin" --json --ledger-dir "$ledger" | python3 -c '
import json, sys
states = [p["swap_state"] for l in json.load(sys.stdin)["ledgers"] for t in l["tenants"] for p in t["processes"]]
sys.exit(any(s.startswith("swapping") for s in states))' && return 0
    sleep 0.1
  done
}

request=$(part 25) limit=$(part 75)
ledger=$work/ledger-wait
echo
echo "1. Two tenants, each holding its request: guaranteed to it, used or not"
start A team-a/train wait "$request" "$limit"
start B team-b/serve wait "$request" "$limit"
tell A "take $request"; expect A "holds $request MiB" 60
tell B "take $((request / 2))"; expect B "holds $((request / 2)) MiB" 60
smi

# Takes stay a little under the limits: a CUDA context's own memory counts too.
echo "2. A bursts past its request into the memory no one is guaranteed (B's unused request stays B's)"
tell A "take $(part 70)"; expect A "holds $(part 70) MiB" 60
smi

echo "3. B grows past its request: its request comes at once, its burst collides with A's and waits"
tell B "take $((request * 3 / 2))"
sleep 2
smi

echo "4. A frees its burst: B's waiting allocation goes through"
tell A "free $request"; expect A "holds $request MiB" 60
expect B "holds $((request * 3 / 2)) MiB" 40
smi
stop A B

# The swap resolver: each tenant takes 55% of the GPU. The second's burst makes the first, whose
# turn (GPUSHARE_SWAP_QUANTUM, 1 s) is over, move its burst to host memory.
request=$(part 30) limit=$(part 60) take=$(part 55)
ledger=$work/ledger-swap
echo "5. The swap resolver: A and B each take $take MiB of a $mib MiB GPU, $((2 * take)) MiB in all"
start A team-a/train swap "$request" "$limit"
start B team-b/serve swap "$request" "$limit"
tell A "take $take"; expect A "holds $take MiB" 60
tell B "take $take"; expect B "holds $take MiB" 60
settled
echo "  A and B hold $((2 * take)) MiB on a $mib MiB GPU: A's burst waits in host memory (swapped out)"
smi

echo "6. A works again: its memory comes back at the same addresses, and B's burst goes to host memory"
tell A touch; expect A "touched" 60
settled
smi
stop A B
echo "demo: done"
