#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs the ledger CPU benchmark (bench/ledger_bench.cpp); builds nothing.
#
#   bash bench/ledger_bench.sh [BINARY] [--seconds S]
#
# BINARY defaults to build/bench/gpushare_ledger_bench (the target gpushare_ledger_bench). S is
# per case (default 0.8; 13 cases, about 12 s in all). Exit status: the binary's (0 every case
# within the target, 1 one is not, 2 an error such as a denied charge).
set -u
BIN=${1:-build/bench/gpushare_ledger_bench}
[ $# -gt 0 ] && shift
if [ ! -x "$BIN" ]; then
  echo "ledger_bench.sh: $BIN not found or not executable (build the target gpushare_ledger_bench)" >&2
  exit 2
fi
exec "$BIN" "$@"
