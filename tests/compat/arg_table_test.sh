#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The argument table (arg_table.cpp) against the fake driver and fake NVML, without the library
# and with it: with a memory limit, and with each feature that changes a wrapper's path (swap, an
# SM slice, a compute share, the priority resolver with an idle timeout). Every line must be the
# driver's own.   arg_table_test.sh ARG_TABLE LIBGPUSHARE FAKE_CUDA_DIR FAKE_NVML_DIR
set -u
table=$1 lib=$2
export LD_LIBRARY_PATH=$3:$4 GPUSHARE_FAKE_DEVICES=8Gi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0

run() {  # NAME ENV...
  local name=$1
  shift
  mkdir -p "$work/ledger-$name"
  env "$@" GPUSHARE_LEDGER_DIR="$work/ledger-$name" "$table" 2>"$work/$name.err" | grep -v '^#' >"$work/$name.txt"
}

run plain
if grep -E -- '-> (CRASH|HANG)' "$work/plain.txt"; then
  echo "FAIL: the fake driver crashed or hung on the rows above"
  fail=1
fi
rows=$(wc -l <"$work/plain.txt")
[ "$rows" -gt 1000 ] || { echo "FAIL: only $rows rows"; fail=1; }
configs=(
  "limit GPUSHARE_MEM_LIMIT=1Gi"
  "request GPUSHARE_MEM_REQUEST=256Mi GPUSHARE_MEM_LIMIT=1Gi GPUSHARE_RESOLVER=priority GPUSHARE_IDLE_TIMEOUT=1s"
  "swap GPUSHARE_MEM_REQUEST=256Mi GPUSHARE_MEM_LIMIT=1Gi GPUSHARE_RESOLVER=swap"
  "sm GPUSHARE_SM=50%"
  "compute GPUSHARE_COMPUTE=50%"
)
for config in "${configs[@]}"; do
  read -r -a words <<<"$config"
  name=${words[0]}
  run "$name" LD_PRELOAD="$lib" "${words[@]:1}"
  if diff "$work/plain.txt" "$work/$name.txt" >"$work/$name.diff"; then
    echo "PASS $name: $rows rows as the driver answers them"
  else
    echo "FAIL $name (${words[*]:1}): lines differ from the driver's (< driver, > with libgpushare.so)"
    head -40 "$work/$name.diff"
    tail -5 "$work/$name.err"
    fail=1
  fi
done
exit $fail
