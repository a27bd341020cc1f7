# SPDX-License-Identifier: Apache-2.0
"""A PyTorch tenant for tests/gpu/swap.sh.

  swap_worker.py NAME GIB ITERS SEED OUT_JSON [HOLD_SECONDS]

Holds GIB GiB on the GPU (a deterministic ballast of 2 GiB tensors plus two 8192x8192 fp16
operands), then runs ITERS steps of x = tanh(A @ x) (a matmul of 1.1 TFLOP each), synchronizing
every 10 steps to time them. Writes OUT_JSON: throughput, the worst pause between synchronized
steps (a swap-in shows there), a SHA-256 of the final x (bit-exactness against a run alone) and
whether the ballast still holds what was written (its integer sum, before and after). Prints
"NAME: DONE" then stays HOLD_SECONDS (default 0) so the ledger can be read while it is a tenant.
"""
import hashlib
import json
import os
import sys
import time

import torch

GiB = 1 << 30
N = 8192


def say(name, text):
    print(f"{name}: {text}", flush=True)


def main():
    name, gib, iters, seed, out = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    hold_s = float(sys.argv[6]) if len(sys.argv) > 6 else 0.0
    torch.use_deterministic_algorithms(True)
    torch.backends.cuda.matmul.allow_tf32 = False
    dev = torch.device("cuda")
    t_start = time.time()
    g = torch.Generator(device=dev).manual_seed(seed)
    a = (torch.randn(N, N, device=dev, generator=g, dtype=torch.float16) / 64).contiguous()
    x = torch.randn(N, N, device=dev, generator=g, dtype=torch.float16).contiguous()
    ballast_gib = max(0.0, gib - 2 * N * N * 2 / GiB)
    ballast = []
    left = int(ballast_gib * GiB)
    while left > 0:
        n = min(2 * GiB, left) // 8 * 8
        t = torch.randint(-2**62, 2**62, (n // 8,), device=dev, generator=g, dtype=torch.int64)
        ballast.append(t)
        left -= n
    sums_before = [int(t.sum().item()) for t in ballast]
    torch.cuda.synchronize()
    ready = time.time()
    say(name, f"READY held={torch.cuda.memory_allocated() / GiB:.1f}GiB reserved={torch.cuda.memory_reserved() / GiB:.1f}GiB "
              f"setup={ready - t_start:.1f}s pid={os.getpid()}")
    pauses = []
    last = time.time()
    for i in range(iters):
        x = torch.tanh(a @ x)
        if (i + 1) % 10 == 0:
            torch.cuda.synchronize()
            now = time.time()
            pauses.append(now - last)
            last = now
    torch.cuda.synchronize()
    done = time.time()
    digest = hashlib.sha256(x.cpu().numpy().tobytes()).hexdigest()
    sums_after = [int(t.sum().item()) for t in ballast]
    elapsed = done - ready
    pauses.sort()
    result = {
        "name": name, "iters": iters, "seconds": elapsed, "iters_per_s": iters / elapsed,
        "tflops": iters * 2 * N ** 3 / elapsed / 1e12, "digest": digest,
        "ballast_ok": sums_before == sums_after, "ballast_gib": ballast_gib,
        "worst_pause_s": pauses[-1] if pauses else 0.0,
        "median_pause_s": pauses[len(pauses) // 2] if pauses else 0.0,
        "pauses_over_100ms": sum(1 for p in pauses if p > 0.1),
        "start": ready, "end": done,
    }
    with open(out, "w") as f:
        json.dump(result, f)
    say(name, f"DONE {json.dumps(result)}")
    time.sleep(hold_s)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # report, never hang
        print(f"{sys.argv[1]}: ERROR {type(e).__name__}: {e}", flush=True)
        sys.exit(1)
