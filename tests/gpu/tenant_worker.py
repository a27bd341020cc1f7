# SPDX-License-Identifier: Apache-2.0
"""One tenant's PyTorch process for tests/gpu/tenants.sh.

  tenant_worker.py NAME hold GIB      take up to GIB GiB in 1 GiB tensors (stop at OOM), report, hold
  tenant_worker.py NAME waitfree GIB  retry taking GIB GiB every 20 ms until it works; report when
Lines start with "NAME:" so the script can grep them; times are time.time() values.
"""
import os
import sys
import time

import torch

GiB = 1 << 30


def say(name, text):
    print(f"{name}: {text}", flush=True)


def hold(name, gib):
    free, total = torch.cuda.mem_get_info()
    say(name, f"sees total={total / GiB:.2f}GiB free={free / GiB:.2f}GiB")
    held, err = [], None
    while len(held) < gib:
        try:
            t = torch.empty(GiB, dtype=torch.uint8, device="cuda")
            t.fill_(len(held) % 255)
            held.append(t)
        except torch.OutOfMemoryError as e:
            err = str(e).splitlines()[0][:120]
            e = None
            break
    torch.cuda.synchronize()
    free, total = torch.cuda.mem_get_info()
    say(name, f"held={len(held)}GiB oom={'yes' if err else 'no'} then total={total / GiB:.2f}GiB "
              f"free={free / GiB:.2f}GiB pid={os.getpid()}")
    if err:
        say(name, f"oom message: {err}")
    say(name, "READY")
    time.sleep(600)


def waitfree(name, gib):
    say(name, f"waiting for {gib}GiB, pid={os.getpid()}")
    say(name, "READY")
    tries = 0
    while True:
        tries += 1
        try:
            t = torch.empty(gib * GiB, dtype=torch.uint8, device="cuda")
            t.fill_(1)
            torch.cuda.synchronize()
            say(name, f"GOT {gib}GiB at {time.time():.4f} after {tries} tries")
            return
        except torch.OutOfMemoryError:
            torch.cuda.empty_cache()
            time.sleep(0.02)


if __name__ == "__main__":
    name, mode, gib = sys.argv[1], sys.argv[2], int(sys.argv[3])
    torch.cuda.init()
    torch.empty(1, device="cuda").fill_(1)  # context and first kernels before anything is measured
    {"hold": hold, "waitfree": waitfree}[mode](name, gib)
