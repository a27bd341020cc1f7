#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The NULL/zero/invalid-argument table (tests/compat/arg_table.cpp) on the real driver, without
# the library and with it (a memory limit; and each feature that changes a wrapper's path: swap,
# an SM slice, a compute share). Every line must be the same. One call, about a minute.
#   bash tests/gpu/arg_table.sh [STAGE]      (STAGE/lib/libgpushare.so)
# Outputs: $OUT/arg_table/{plain,limit,swap,sm,compute}.txt (hand plain.txt back: it is the real
# driver's answers the fake driver must give).
set -u
STAGE=$(cd "${1:-.stage}" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
OUTD=${OUT:-/tmp/gpushare-out}/arg_table
mkdir -p "$OUTD"
BIN=$(mktemp -d)/arg_table
if ! g++ -std=c++17 -O1 -rdynamic -I/usr/local/cuda/include "$HERE/../compat/arg_table.cpp" -o "$BIN" -ldl \
    2>"$OUTD/build.err"; then
  echo "FAIL build_arg_table"; cat "$OUTD/build.err"; exit 1
fi
echo "PASS build_arg_table"

run() {  # NAME ENV...
  local name=$1
  shift
  local ledger
  ledger=$(mktemp -d)
  env "$@" GPUSHARE_LEDGER_DIR="$ledger" timeout 300 "$BIN" >"$OUTD/$name.txt" 2>"$OUTD/$name.err"
  echo "$name: exit $?, $(grep -vc '^#' "$OUTD/$name.txt") rows" >>"$OUTD/runs.txt"
  rm -rf "$ledger"
}

: >"$OUTD/runs.txt"
run plain
LIB=$STAGE/lib/libgpushare.so
run limit LD_PRELOAD="$LIB" GPUSHARE_MEM_LIMIT=4Gi
run swap LD_PRELOAD="$LIB" GPUSHARE_MEM_REQUEST=2Gi GPUSHARE_MEM_LIMIT=4Gi GPUSHARE_RESOLVER=swap
run sm LD_PRELOAD="$LIB" GPUSHARE_MEM_LIMIT=4Gi GPUSHARE_SM=50%
run compute LD_PRELOAD="$LIB" GPUSHARE_MEM_LIMIT=4Gi GPUSHARE_COMPUTE=50%
cat "$OUTD/runs.txt"

bad=$(grep -E -- '-> (CRASH|HANG)' "$OUTD/plain.txt")
if [ -n "$bad" ]; then
  echo "FAIL real_driver_survives_every_row (remove these rows from the table):"
  echo "$bad"
else
  echo "PASS real_driver_survives_every_row ($(grep -vc '^#' "$OUTD/plain.txt") rows)"
fi
for name in limit swap sm compute; do
  if diff <(grep -v '^#' "$OUTD/plain.txt") <(grep -v '^#' "$OUTD/$name.txt") >"$OUTD/$name.diff"; then
    echo "PASS same_as_driver_$name"
  else
    echo "FAIL same_as_driver_$name ($(grep -c '^>' "$OUTD/$name.diff") lines differ; first ones:)"
    head -20 "$OUTD/$name.diff"
  fi
done
