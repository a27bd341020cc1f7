#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Small PyTorch inference loop: iterations/s with or without gpushare (see bench/run.sh).

  torch_loop.py [--iters 2000] [--repeats 5] [--batch 32] [--hidden 1024]

A 4-layer fp16 MLP (Linear+GELU) plus a LayerNorm and a softmax, batch 32, under
torch.inference_mode(). Small on purpose: the loop is bound by kernel-launch cost on the CPU,
which is where an interposer's per-call overhead shows. Warm-up, then REPEATS timed runs of ITERS
iterations (synchronized at the end of each); reports the median. Prints "METRIC torch_iters_per_s
<value>". Run with PYTHONUNBUFFERED=1.
"""
import argparse
import os
import statistics
import time

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--hidden", type=int, default=1024)
    a = ap.parse_args()

    with open("/proc/self/maps") as f:
        preloaded = "libgpushare" in f.read()
    print(f"torch {torch.__version__}; preloaded={preloaded}; "
          f"GPUSHARE_MEM_LIMIT={os.environ.get('GPUSHARE_MEM_LIMIT', '(unset)')}")
    print(f"METRIC torch_preloaded {1 if preloaded else 0}")

    dev = torch.device("cuda")
    h = a.hidden
    layers = []
    for _ in range(4):
        layers += [torch.nn.Linear(h, h), torch.nn.GELU()]
    model = torch.nn.Sequential(torch.nn.LayerNorm(h), *layers, torch.nn.Linear(h, 16))
    model = model.to(dev, torch.float16).eval()
    x = torch.randn(a.batch, h, device=dev, dtype=torch.float16)

    with torch.inference_mode():
        for _ in range(a.warmup):
            y = torch.softmax(model(x), dim=-1)
        torch.cuda.synchronize()
        rates = []
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            for _ in range(a.iters):
                y = torch.softmax(model(x), dim=-1)
            torch.cuda.synchronize()
            rates.append(a.iters / (time.perf_counter() - t0))
    assert torch.isfinite(y).all()
    med = statistics.median(rates)
    print("runs (it/s): " + " ".join(f"{r:.0f}" for r in rates))
    print(f"median {med:.1f} it/s over {a.repeats} x {a.iters} iterations "
          f"(batch {a.batch}, hidden {h}, fp16)")
    print(f"METRIC torch_iters_per_s {med:.2f}")


if __name__ == "__main__":
    main()
