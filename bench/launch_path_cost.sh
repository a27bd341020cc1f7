#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Instructions per call that libgpushare.so adds to launch-like entry points, counted by
# callgrind against the fake driver (CPU only, deterministic, about a minute):
#   bash bench/launch_path_cost.sh [BUILD_DIR] [LIB...]
# BUILD_DIR defaults to build (targets gpushare_launch_path_bench, gs_fake_cuda, gpushare); each
# LIB (default BUILD_DIR/libgpushare.so; give another build's to compare) is measured in turn.
# Per call = (instructions of the calling thread at N=2000 - at N=200) / 1800, so start-up cancels
# out. "wrapper": the exported wrapper's own instructions with everything inlined into it (the
# init check, the gates, the activity clock): deterministic. "added": the whole thread against
# the run without LD_PRELOAD, PLT and the real call included; it wanders by a hundred or so on
# cuLaunchKernel, whose fake allocates (malloc's state differs with the library loaded).
set -u
BUILD=${1:-build}
[ $# -gt 0 ] && shift
LIBS=("$@")
[ ${#LIBS[@]} -eq 0 ] && LIBS=("$BUILD/libgpushare.so")
BIN=$BUILD/bench/gpushare_launch_path_bench
command -v valgrind >/dev/null || { echo "launch_path_cost.sh: valgrind is not installed" >&2; exit 2; }
[ -x "$BIN" ] || { echo "launch_path_cost.sh: $BIN not built" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export LD_LIBRARY_PATH=$BUILD/fake GPUSHARE_FAKE_DEVICES=16Gi GPUSHARE_LEDGER_DIR=$work/ledger

ir() {  # PRELOAD ENTRY N -> "total in_library"
  local out=$work/cg.out
  rm -f "$out"*
  # The calling thread only: the library's watcher thread ticks every 100 ms, longer runs more.
  LD_PRELOAD=$1 GPUSHARE_MEM_LIMIT=8Gi valgrind --tool=callgrind --separate-threads=yes \
    --callgrind-out-file="$out" "$BIN" "$2" "$3" >/dev/null 2>&1 || { echo "FAIL FAIL"; return; }
  out=$out-01
  local total lib
  total=$(sed -n 's/^summary: \([0-9]*\).*/\1/p' "$out")
  # The wrapper itself: its own instructions and what is inlined into it (the gates, the clock).
  lib=$(callgrind_annotate --auto=no --threshold=100 "$out" 2>/dev/null | grep -E ":$2 \[.*libgpushare\.so\]" |
        awk '{gsub(",", "", $1); s += $1} END {print s + 0}')
  echo "$total $lib"
}
per_call() {  # PRELOAD ENTRY -> "total in_library" per call
  local lo hi
  read -r -a lo <<<"$(ir "$1" "$2" 200)"
  read -r -a hi <<<"$(ir "$1" "$2" 2000)"
  if [ "${lo[0]}" = FAIL ] || [ "${hi[0]}" = FAIL ]; then echo "FAIL FAIL"; return; fi
  echo "$(((hi[0] - lo[0]) / 1800)) $(((hi[1] - lo[1]) / 1800))"
}

printf "%-26s %8s" entry driver
for lib in "${LIBS[@]}"; do printf " | %-36s" "$lib"; done
printf "\n%-26s %8s" "" total
for lib in "${LIBS[@]}"; do printf " | %10s %12s %12s" total added wrapper; done
printf "\n"
for entry in cuLaunchKernel cuGraphLaunch cuMemsetD32Async cuStreamWriteValue32_v2 cuLaunchHostFunc; do
  read -r -a base <<<"$(per_call "" "$entry")"
  printf "%-26s %8s" "$entry" "${base[0]}"
  for lib in "${LIBS[@]}"; do
    read -r -a with <<<"$(per_call "$lib" "$entry")"
    if [ "${with[0]}" = FAIL ] || [ "${base[0]}" = FAIL ]; then
      printf " | %10s %12s %12s" FAIL FAIL FAIL
    else
      printf " | %10s %12s %12s" "${with[0]}" "$((with[0] - base[0]))" "${with[1]}"
    fi
  done
  printf "\n"
done
