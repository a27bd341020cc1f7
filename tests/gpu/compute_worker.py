# SPDX-License-Identifier: Apache-2.0
# One tenant for tests/gpu/compute_shares.sh: a bf16 matmul loop ("matmul") or a latency-sensitive
# small-batch loop ("latency": a request of a few small matmuls every PERIOD ms, timed with
# cudaEvent-free wall clock around request + synchronize). Prints one JSON line at the end.
#   python3 compute_worker.py KIND SECONDS [N] [PERIOD_MS] [GRAPH]
import json, os, sys, time
import torch

kind, seconds = sys.argv[1], float(sys.argv[2])
n = int(sys.argv[3]) if len(sys.argv) > 3 else 8192
period = float(sys.argv[4]) / 1000 if len(sys.argv) > 4 else 0.02
use_graph = len(sys.argv) > 5 and sys.argv[5] == "graph"
dev = torch.device("cuda")
a = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
b = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
out = {"kind": kind, "tenant": os.environ.get("GPUSHARE_TENANT", ""), "share": os.environ.get("GPUSHARE_COMPUTE", "none")}

def step():
    c = a
    for _ in range(4 if kind == "latency" else 1):
        c = c @ b
    return c

for _ in range(3):
    step()
torch.cuda.synchronize()
graph = None
if use_graph:
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        step()
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    torch.cuda.synchronize()
run = (lambda: graph.replay()) if graph is not None else step
# Start together: the script writes the start time into GO_AT.
go_at = float(os.environ.get("GO_AT", "0"))
while time.time() < go_at:
    time.sleep(0.001)
t0 = time.time()
iters, lat = 0, []
if kind == "matmul":
    while time.time() - t0 < seconds:
        for _ in range(8):
            run()
        torch.cuda.synchronize()
        iters += 8
else:
    next_at = t0
    while time.time() - t0 < seconds:
        now = time.time()
        if now < next_at:
            time.sleep(next_at - now)
        s0 = time.perf_counter()
        run()
        torch.cuda.synchronize()
        lat.append((time.perf_counter() - s0) * 1000)
        iters += 1
        next_at += period
elapsed = time.time() - t0
flops = 2 * n ** 3 * (4 if kind == "latency" else 1) * iters
out.update({"iters": iters, "seconds": round(elapsed, 3), "tflops": round(flops / elapsed / 1e12, 1)})
if lat:
    lat.sort()
    out.update({"p50_ms": round(lat[len(lat) // 2], 3), "p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 3)})
print(json.dumps(out), flush=True)
