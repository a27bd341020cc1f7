#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The whole test suite: builds (scripts/setup.sh) and runs every test through ctest. No GPU is
# needed: the library runs against the fake CUDA driver in tests/fake_driver. Then the tests
# that run in-process (unit, fake driver, ledger) again under AddressSanitizer and UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
ctest --test-dir "${GPUSHARE_BUILD_DIR:-build}" --output-on-failure -j "$(nproc)" --timeout 300

if [ "${GPUSHARE_SKIP_SANITIZERS:-0}" != 1 ]; then
  # Preloading an instrumented libgpushare.so into uninstrumented programs is not possible, so
  # the end-to-end tests run only in the plain build above; these run in-process.
  suites="gpushare_unit_tests gpushare_ledger_tests"
  echo "test: $suites again under AddressSanitizer + UndefinedBehaviorSanitizer"
  GPUSHARE_BUILD_DIR=build-asan GPUSHARE_CMAKE_ARGS="-DGPUSHARE_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug" \
    GPUSHARE_BUILD_TARGETS="$suites" scripts/setup.sh
  for suite in $suites; do
    exe=$(find build-asan -type f -name "$suite" -perm -u+x | head -n 1)
    [ -n "$exe" ] || { echo "test: $suite was not built" >&2; exit 1; }
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
      "$exe" --gtest_brief=1
  done
fi
