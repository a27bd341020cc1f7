# SPDX-License-Identifier: Apache-2.0
"""A PyTorch tenant for tests/gpu/resolvers.sh.

  resolver_worker.py NAME hold GIB SECONDS   take GIB GiB, hold them SECONDS, release them, idle on
  resolver_worker.py NAME take GIB           take GIB GiB in 1 GiB tensors; report every allocation
                                             that had to wait, and whether any raised OOM
Lines start with "NAME:"; times are time.time() values.
"""
import os
import signal
import sys
import time

import torch

GiB = 1 << 30


def say(name, text):
    print(f"{name}: {text}", flush=True)


def hold(name, gib, seconds):
    held = []
    for _ in range(gib):
        held.append(torch.empty(GiB, dtype=torch.uint8, device="cuda"))
        held[-1].fill_(7)
    torch.cuda.synchronize()
    say(name, f"held={len(held)}GiB pid={os.getpid()}")
    say(name, "READY")
    end = time.time() + seconds
    while time.time() < end:
        held[0].add_(1)  # busy: launches keep the tenant active
        torch.cuda.synchronize()
        time.sleep(0.05)
    held.clear()
    say(name, f"FREEING at {time.time():.4f}")
    torch.cuda.empty_cache()
    torch.cuda.synchronize()
    say(name, f"RELEASED at {time.time():.4f}")
    time.sleep(120)


def take(name, gib):
    say(name, f"taking {gib}GiB pid={os.getpid()}")
    say(name, "READY")
    held, waits, ooms = [], [], 0
    while len(held) < gib:
        t0 = time.time()
        try:
            held.append(torch.empty(GiB, dtype=torch.uint8, device="cuda"))
        except torch.OutOfMemoryError as e:
            ooms += 1
            say(name, f"OOM after {len(held)}GiB: {str(e).splitlines()[0][:100]}")
            break
        t1 = time.time()
        if t1 - t0 > 0.05:
            waits.append((t0, t1))
            say(name, f"allocation {len(held)} waited {1000 * (t1 - t0):.0f} ms, returned at {t1:.4f}")
    torch.cuda.synchronize()
    say(name, f"DONE got={len(held)}GiB ooms={ooms} waits={len(waits)}")
    time.sleep(120)


if __name__ == "__main__":
    name, mode = sys.argv[1], sys.argv[2]
    torch.cuda.init()
    torch.empty(1, device="cuda").fill_(1)
    signal.signal(signal.SIGTERM, lambda *_: (say(name, f"SIGTERM at {time.time():.4f}"), sys.exit(143)))
    if mode == "hold":
        hold(name, int(sys.argv[3]), float(sys.argv[4]))
    else:
        take(name, int(sys.argv[3]))
