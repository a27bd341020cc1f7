# SPDX-License-Identifier: Apache-2.0
# A PyTorch tenant for tests/gpu/ledger_damage.sh: holds HOLD GiB, then either runs a matmul loop
# (busy) or sleeps (idle). On SIGUSR1 it allocates the GiB written in ASK_FILE and prints whether
# it got them; every 100 iterations (busy) it prints that the loop still computes correctly.
#   python3 ledger_worker.py NAME HOLD_GIB busy|idle ASK_FILE
import signal
import sys
import time

import torch

name, hold_gib, mode, ask_file = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
held = torch.empty(int(hold_gib * 2**30), dtype=torch.uint8, device="cuda")
a = torch.randn(2048, 2048, device="cuda")
expected = float((a @ a).sum())
pending = []
signal.signal(signal.SIGUSR1, lambda *_: pending.append(1))
print(f"{name}: READY held {hold_gib} GiB", flush=True)
extra = []
iteration = 0
while True:
    if mode == "busy":
        ok = abs(float((a @ a).sum()) - expected) <= 1e-3 * max(1.0, abs(expected))
        iteration += 1
        if iteration % 100 == 0:
            print(f"{name}: ITER {iteration} {'ok' if ok else 'WRONG'}", flush=True)
    else:
        time.sleep(0.05)
    while pending:
        pending.pop()
        gib = float(open(ask_file).read())
        try:
            extra.append(torch.empty(int(gib * 2**30), dtype=torch.uint8, device="cuda"))
            print(f"{name}: ASK {gib} GOT", flush=True)
        except torch.cuda.OutOfMemoryError:
            print(f"{name}: ASK {gib} OOM", flush=True)
