#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The real clients users run, under a gpushare quota (driven by tests/gpu/compat.sh).

Usage: compat_worker.py MODE LIMIT_BYTES [ARGS]
  hf        PyTorch + a Hugging Face transformers Llama built from a config (random weights):
            generates under the quota, an oversized batch raises torch.OutOfMemoryError, and the
            same process recovers and generates again
  jax       JAX: its preallocating allocator sizes itself to the quota; an array past the quota
            is refused (RESOURCE_EXHAUSTED), a smaller one still works
  cupy      CuPy: memGetInfo shows the quota; its memory pool fills up to the quota and no
            further (cupy's OutOfMemoryError), and gives memory back
  cupy_sm   CuPy RawKernel recording %smid under GPUSHARE_SM: it runs on at most the SMs that
            cudaDeviceAttr MultiProcessorCount reports, and that count is the slice (ARGS: SMS)
  graph     a CUDA graph captured and replayed under the quota: results match eager; with
            ARGS SECONDS [HOLD_BYTES] it first holds HOLD_BYTES in 1 GiB tensors, then keeps
            replaying that long (a graph-only tenant) and then reports
  hold      allocates ARGS BYTES in 1 GiB tensors, prints HOLDING, sleeps ARGS[1] seconds
  burst     tries to allocate ARGS BYTES in 1 GiB tensors; prints how far it got (no failure)
  sees      prints what torch sees (total, free) and checks total == LIMIT_BYTES

Prints "CHECK PASS|FAIL name: detail" and a last "SUMMARY: ..." line; exit 0 iff all held.
"""
import gc
import os
import sys
import time

GiB = 1 << 30
MiB = 1 << 20
failed = []


def check(ok, name, detail):
    print(f"CHECK {'PASS' if ok else 'FAIL'} {name}: {detail}", flush=True)
    if not ok:
        failed.append(name)
    return ok


def summary(extra):
    tail = f" failed={','.join(failed)}" if failed else ""
    print(f"SUMMARY: {extra}{tail}", flush=True)
    sys.exit(1 if failed else 0)


def first_line(exc):
    s = str(exc).strip().splitlines()
    return (type(exc).__name__ + ": " + (s[0] if s else ""))[:240]


def gib(b):
    return f"{b / GiB:.2f}GiB"


def mode_sees(limit):
    import torch
    free, total = torch.cuda.mem_get_info()
    check(total == limit, "total_is_limit", f"total={total} limit={limit}")
    check(free <= total, "free_le_total", f"free={gib(free)}")
    summary(f"total={total} free={free}")


def mode_hf(limit):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    free, total = torch.cuda.mem_get_info()
    check(total == limit, "hf_total_is_limit", f"total={gib(total)} limit={gib(limit)}")
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=32000, hidden_size=1024, intermediate_size=2816, num_hidden_layers=8,
                      num_attention_heads=16, num_key_value_heads=8, max_position_embeddings=4096)
    model = LlamaForCausalLM(cfg).to(device="cuda", dtype=torch.bfloat16).eval()
    prompt = torch.randint(0, cfg.vocab_size, (4, 32), device="cuda")

    def generate():
        with torch.no_grad():
            return model.generate(prompt, max_new_tokens=24, do_sample=False, pad_token_id=0)

    out = generate()
    check(out.shape == (4, 56), "hf_generates", f"shape={tuple(out.shape)}")
    first = out.clone()
    # An oversized batch: logits alone are batch x seq x vocab x 2 bytes, far past the quota.
    raised = None
    try:
        with torch.no_grad():
            big = torch.randint(0, cfg.vocab_size, (64, 4096), device="cuda")
            model(big)
        torch.cuda.synchronize()
    except torch.OutOfMemoryError as e:
        raised = e
    except Exception as e:  # anything else is a failure, reported as such
        check(False, "hf_oversized_raises_oom", first_line(e))
    else:
        check(False, "hf_oversized_raises_oom", "no exception")
    if raised is not None:
        check(True, "hf_oversized_raises_oom", first_line(raised))
    raised = None
    big = None
    gc.collect()
    torch.cuda.empty_cache()
    peak = torch.cuda.max_memory_reserved()
    check(peak <= limit, "hf_peak_reserved_le_limit", f"peak_reserved={gib(peak)}")
    again = generate()
    check(torch.equal(again, first), "hf_recovers_and_generates", f"same tokens={torch.equal(again, first)}")
    summary(f"total={gib(total)} peak_reserved={gib(peak)}")


def mode_jax(limit):
    import jax
    import jax.numpy as jnp
    dev = jax.devices("gpu")[0]
    stats = dev.memory_stats() or {}
    bytes_limit = stats.get("bytes_limit", 0)
    check(0 < bytes_limit <= limit, "jax_pool_sized_to_quota", f"bytes_limit={gib(bytes_limit)} quota={gib(limit)}")
    x = jnp.ones((256 * MiB // 4,), dtype=jnp.float32)
    check(float(x.sum()) == x.size, "jax_computes", f"sum of {x.size} ones")
    err = None
    try:
        y = jnp.ones((limit // 4 + 64 * MiB,), dtype=jnp.float32)  # past the quota
        y.block_until_ready()
    except Exception as e:
        err = e
    check(err is not None and "RESOURCE_EXHAUSTED" in str(err).upper().replace(" ", "_"),
          "jax_past_quota_refused", first_line(err) if err else "allocated past the quota")
    z = jnp.ones((512 * MiB // 4,), dtype=jnp.float32)
    check(float(z.sum()) == z.size, "jax_still_works", "512 MiB after the refusal")
    summary(f"bytes_limit={gib(bytes_limit)}")


def mode_cupy(limit):
    import cupy
    free, total = cupy.cuda.runtime.memGetInfo()
    check(total == limit, "cupy_total_is_limit", f"total={gib(total)}")
    pool = cupy.get_default_memory_pool()
    held, got = [], 0
    err = None
    try:
        while got < 2 * limit:
            held.append(cupy.empty(256 * MiB, dtype=cupy.uint8))
            got += 256 * MiB
    except cupy.cuda.memory.OutOfMemoryError as e:
        err = e
    check(err is not None, "cupy_pool_stops_at_quota", f"got={gib(got)} {first_line(err) if err else 'no OOM'}")
    check(got <= limit, "cupy_pool_le_quota", f"got={gib(got)} quota={gib(limit)}")
    held.clear()
    pool.free_all_blocks()
    free_after, _ = cupy.cuda.runtime.memGetInfo()
    check(free_after > free - 512 * MiB, "cupy_memory_comes_back", f"free before={gib(free)} after={gib(free_after)}")
    a = cupy.arange(1 << 20, dtype=cupy.float32)
    check(float(a.sum()) == float((1 << 20) * ((1 << 20) - 1) / 2), "cupy_computes", "arange sum")
    summary(f"total={gib(total)} got={gib(got)}")


def mode_cupy_sm(limit, sms):
    import cupy
    reported = cupy.cuda.Device(0).attributes["MultiProcessorCount"]
    check(reported == sms, "cupy_reported_sms_is_slice", f"reported={reported} slice={sms}")
    kern = cupy.RawKernel(r'''
extern "C" __global__ void smid(unsigned* seen) {
  unsigned id; asm volatile("mov.u32 %0, %%smid;" : "=r"(id));
  if (threadIdx.x == 0) seen[id] = 1;
  for (volatile int i = 0; i < 20000; ++i) {}
}''', "smid")
    seen = cupy.zeros(1024, dtype=cupy.uint32)
    kern((reported * 8,), (128,), (seen,))
    cupy.cuda.Device(0).synchronize()
    ran = int(seen.sum())
    check(0 < ran <= sms, "cupy_rawkernel_in_slice", f"distinct SMs={ran} slice={sms}")
    summary(f"reported={reported} ran_on={ran}")


def capture(torch, x, w):
    g = torch.cuda.CUDAGraph()
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(2):  # warm up outside the graph, as PyTorch asks
            y = torch.relu(x @ w)
    torch.cuda.current_stream().wait_stream(s)
    with torch.cuda.graph(g):
        y = torch.relu(x @ w)
    return g, y


def mode_graph(limit, seconds=0.0, hold=0):
    import torch
    held = [torch.empty(GiB, dtype=torch.uint8, device="cuda") for _ in range(hold // GiB)]
    x = torch.randn(2048, 2048, device="cuda")
    w = torch.randn(2048, 2048, device="cuda")
    g, y = capture(torch, x, w)
    x.copy_(torch.randn_like(x))
    g.replay()
    torch.cuda.synchronize()
    ref = torch.relu(x @ w)
    check(torch.allclose(y, ref, atol=1e-3, rtol=1e-3), "graph_replay_matches", "replay vs eager")
    replays = 0
    if seconds > 0:
        # A graph-only tenant: after capture, nothing but graph replays (as vLLM's decode).
        print(f"REPLAYING pid={os.getpid()}", flush=True)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for _ in range(20):
                g.replay()
            torch.cuda.synchronize()
            replays += 20
        check(True, "graph_only_tenant_survived", f"{replays} replays in {seconds:.0f}s")
    summary(f"replays={replays} held={gib(len(held) * GiB)}")


def mode_hold(limit, nbytes, seconds):
    import torch
    held = [torch.empty(GiB, dtype=torch.uint8, device="cuda") for _ in range(int(nbytes) // GiB)]
    torch.cuda.synchronize()
    print(f"HOLDING pid={os.getpid()} bytes={len(held) * GiB}", flush=True)
    time.sleep(float(seconds))
    summary(f"held={gib(len(held) * GiB)}")


def mode_burst(limit, nbytes):
    import torch
    held, err = [], None
    t0 = time.monotonic()
    try:
        for _ in range(int(nbytes) // GiB):
            held.append(torch.empty(GiB, dtype=torch.uint8, device="cuda"))
    except torch.OutOfMemoryError as e:
        err = e
    print(f"BURST got={gib(len(held) * GiB)} in {time.monotonic() - t0:.1f}s {first_line(err) if err else 'all'}",
          flush=True)
    summary(f"got={gib(len(held) * GiB)}")


def main():
    mode, limit = sys.argv[1], int(sys.argv[2])
    args = sys.argv[3:]
    if mode == "sees":
        mode_sees(limit)
    elif mode == "hf":
        mode_hf(limit)
    elif mode == "jax":
        mode_jax(limit)
    elif mode == "cupy":
        mode_cupy(limit)
    elif mode == "cupy_sm":
        mode_cupy_sm(limit, int(args[0]))
    elif mode == "graph":
        mode_graph(limit, float(args[0]) if args else 0.0, int(args[1]) if len(args) > 1 else 0)
    elif mode == "hold":
        mode_hold(limit, int(args[0]), args[1])
    elif mode == "burst":
        mode_burst(limit, int(args[0]))
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
