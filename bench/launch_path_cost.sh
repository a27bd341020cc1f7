#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Instructions per call that libgpushare.so adds to launch-like entry points, counted by
# callgrind against the fake driver (CPU only, deterministic, about a minute):
#   bash bench/launch_path_cost.sh [BUILD_DIR] [LIB...]
# BUILD_DIR defaults to build (targets gpushare_launch_path_bench, gs_fake_cuda, gpushare); each
# LIB (default BUILD_DIR/libgpushare.so; give another build's to compare) is measured in turn.
# Per call = (instructions at N=2000 - at N=200) / 1800, so start-up cancels out: "in library" is
# what executes inside libgpushare.so (the wrapper itself; deterministic), "total" the whole
# process against the run without LD_PRELOAD (the fake driver's own launch path allocates and
# locks, so the difference there wanders by a few hundred).
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
  LD_PRELOAD=$1 GPUSHARE_MEM_LIMIT=8Gi valgrind --tool=callgrind --callgrind-out-file="$out" "$BIN" "$2" "$3" \
    >/dev/null 2>&1 || { echo "FAIL FAIL"; return; }
  local total lib
  total=$(sed -n 's/^summary: \([0-9]*\).*/\1/p' "$out")
  lib=$(callgrind_annotate --threshold=100 "$out" 2>/dev/null | grep 'libgpushare\.so\]' |
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
for lib in "${LIBS[@]}"; do printf " | %10s %12s %12s" total added "in library"; done
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
