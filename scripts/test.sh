#!/usr/bin/env bash
# The whole test suite: builds (scripts/setup.sh) and runs every test through ctest. No GPU is
# needed: the library runs against the fake CUDA driver in tests/fake_driver.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
ctest --test-dir "${GPUSHARE_BUILD_DIR:-build}" --output-on-failure -j "$(nproc)" --timeout 300
