#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds gpushare and shows a memory limit enforced: on the GPU when there is one (PyTorch if
# installed), else on the fake driver of the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
build=${GPUSHARE_BUILD_DIR:-build}
lib=$PWD/$build/libgpushare.so
limit=${GPUSHARE_DEMO_LIMIT:-2Gi}

if nvidia-smi -L >/dev/null 2>&1 && python3 -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null; then
  echo "demo: on the GPU ($(nvidia-smi -L | head -1)), PyTorch under GPUSHARE_MEM_LIMIT=$limit"
  LD_PRELOAD=$lib GPUSHARE_MEM_LIMIT=$limit python3 - <<'PY'
import torch
free, total = torch.cuda.mem_get_info()
print(f"torch sees total {total / 2**30:.2f} GiB, free {free / 2**30:.2f} GiB")
held = []
try:
    while True:
        held.append(torch.empty(256 << 20, dtype=torch.uint8, device="cuda"))
except torch.OutOfMemoryError:
    print(f"allocated {len(held) * 256} MiB, then torch.OutOfMemoryError: the limit holds")
PY
  exit 0
fi

echo "demo: no GPU here; on the fake CUDA driver (tests/fake_driver), a 16 GiB device"
echo "demo: the same program without the library, then with LD_PRELOAD and GPUSHARE_MEM_LIMIT=$limit"
client=$build/tests/cuda_client
show() { grep -E '^(start_total|filled_bytes|fill_stop_rc) ' | awk '{ if ($1 == "fill_stop_rc") printf "  %-14s %s (2 = CUDA_ERROR_OUT_OF_MEMORY)\n", $1, $2; else printf "  %-14s %6.2f GiB\n", $1, $2 / 2^30 }'; }
echo "without gpushare:"
LD_LIBRARY_PATH=$build/fake GPUSHARE_FAKE_DEVICES=16Gi "$client" gpa fill | show
echo "with gpushare, GPUSHARE_MEM_LIMIT=$limit:"
LD_PRELOAD=$lib LD_LIBRARY_PATH=$build/fake GPUSHARE_FAKE_DEVICES=16Gi GPUSHARE_MEM_LIMIT=$limit "$client" gpa fill | show
