#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# clang-tidy over the library and tools (not the tests or the fake driver), with the build's
# compile_commands.json. Needs a configured build (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${GPUSHARE_BUILD_DIR:-build}
command -v clang-tidy >/dev/null || { echo "lint: clang-tidy not installed (apt-get install clang-tidy)"; exit 1; }
files=$(git ls-files 'src/*.cpp' 'quota/*.cpp' 'hooks/*.cpp' 'sm_partition/*.cpp' 'tools/*.cpp')
echo "$files" | xargs -P "$(nproc)" -n 4 clang-tidy -p "$build" --quiet 2>/dev/null
echo "lint: clang-tidy clean on $(echo "$files" | wc -w) files"
