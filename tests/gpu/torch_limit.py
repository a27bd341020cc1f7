#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""PyTorch under gpushare: memory limit checks.

Usage:
  torch_limit.py LIMIT_BYTES                 full check (run under LD_PRELOAD + GPUSHARE_MEM_LIMIT)
  torch_limit.py LIMIT_BYTES --info          print what torch sees (baseline, no preload), exit 0
  torch_limit.py LIMIT_BYTES --hold FILE     warm up (run the kernels used later, synchronize),
                                             then fill memory to just under the limit (64 MiB,
                                             then 2 MiB steps), write every chunk, print
                                             "HOLDING pid=N bytes=B ...", wait until FILE exists
                                             (at most 120 s), exit
  torch_limit.py LIMIT_BYTES --hold-cold FILE
                                             the same without the warm-up: the fill happens
                                             before the first kernel, so lazily loaded kernel
                                             code lands on top of the full limit (informational)
  torch_limit.py 0 --bad                     malformed GPUSHARE_MEM_LIMIT: expect
                                             torch.cuda.is_available() False or the first CUDA
                                             op to raise

Prints "CHECK PASS|FAIL name: detail" lines and a final "SUMMARY: ..." line; exits 0 iff every
expectation held. Run with PYTHONUNBUFFERED=1.
"""
import gc
import os
import sys
import time

MiB = 1 << 20
STEP = 256 * MiB

failed = []


def check(ok, name, detail):
    print(f"CHECK {'PASS' if ok else 'FAIL'} {name}: {detail}", flush=True)
    if not ok:
        failed.append(name)
    return ok


def mib(b):
    return f"{b / MiB:.1f}MiB"


def preloaded():
    try:
        with open("/proc/self/maps") as f:
            return "libgpushare" in f.read()
    except OSError:
        return False


def first_line(exc):
    s = str(exc).strip().splitlines()
    return (type(exc).__name__ + ": " + (s[0] if s else ""))[:300]


def summary(extra):
    tail = f" failed={','.join(failed)}" if failed else ""
    print(f"SUMMARY: {extra}{tail}", flush=True)


def mode_bad():
    import torch
    avail = None
    try:
        avail = torch.cuda.is_available()
    except Exception as e:  # noqa: BLE001
        print(f"is_available raised {first_line(e)}")
    if not avail:
        check(True, "bad_env_rejected", f"torch.cuda.is_available() = {avail}")
        summary(f"is_available={avail}")
        return 0
    try:
        x = torch.zeros(1024, device="cuda")
        torch.cuda.synchronize()
        check(False, "bad_env_rejected",
              f"is_available True and first CUDA op worked ({float(x.sum())})")
        summary("NOT rejected")
        return 1
    except Exception as e:  # noqa: BLE001
        check(True, "bad_env_rejected", f"first CUDA op raised {first_line(e)}")
        summary(f"is_available=True first_op_raised={type(e).__name__}")
        return 0


def mode_info(limit):
    import torch
    print(f"torch {torch.__version__} cuda {torch.version.cuda} preloaded={preloaded()}")
    if not torch.cuda.is_available():
        check(False, "cuda_available", "torch.cuda.is_available() is False")
        summary("no CUDA")
        return 1
    free, total = torch.cuda.mem_get_info()
    props = torch.cuda.get_device_properties(0)
    print(f"mem_get_info: free={free} total={total}; props {props.name} total_memory={props.total_memory}")
    check(not preloaded(), "not_preloaded", f"libgpushare mapped={preloaded()}")
    check(total > limit, "baseline_unlimited", f"total={mib(total)} > {mib(limit)}")
    summary(f"total={mib(total)} free={mib(free)} props_total={mib(props.total_memory)}")
    return 0 if not failed else 1


def fill_until_oom(torch, oom_type, chunks, step):
    """Allocate `step`-byte tensors into `chunks` until OOM; returns (bytes, exception).

    The exception is returned without its traceback: the traceback would keep this frame, and
    with it `chunks`, alive in the caller for as long as the exception is referenced, so that
    `del chunks` + empty_cache() would free nothing.
    """
    got = 0
    while got <= (1 << 40):  # safety bound
        try:
            chunks.append(torch.empty(step, dtype=torch.uint8, device="cuda"))
            got += step
        except Exception as e:  # noqa: BLE001 - OOM, or the wrong exception type (caller checks)
            return got, e.with_traceback(None)
    return got, None


def release(torch, chunks):
    """Free what a fill holds: empty the list itself (other references to it, e.g. an exception's
    traceback frame, then hold nothing), collect, return cached blocks to the driver."""
    chunks.clear()
    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.synchronize()


def smi_used_mib():
    """This process's used_memory per nvidia-smi (MiB), or the only listed app's when the PID
    namespace hides ours; None if unavailable."""
    import subprocess
    try:
        out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory",
                              "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=15).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    rows = []
    for line in out.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
            rows.append((int(parts[0]), int(parts[1])))
    for pid, used in rows:
        if pid == os.getpid():
            return used
    return rows[0][1] if len(rows) == 1 else None


def stage(torch, variant, name):
    """Print what the limit view (mem_get_info) and nvidia-smi say at this point, and the gap
    between them: memory the driver took that gpushare's mem_get_info does not show."""
    free, total = torch.cuda.mem_get_info()
    used_view = (total - free) / MiB
    smi = smi_used_mib()
    gap = f"{smi - used_view:.0f}" if smi is not None else "?"
    print(f"STAGE {variant} {name}: mem_get_info free={free} ({mib(free)}) total={total} "
          f"used_view={used_view:.0f}MiB nvidia_smi_used={smi if smi is not None else '?'}MiB "
          f"gap={gap}MiB reserved={mib(torch.cuda.memory_reserved())}", flush=True)
    return free


def warm_up(torch):
    """Run the kernels used later (uint8 fill, a small reduction) and synchronize, as a server does
    before sizing its caches from mem_get_info: with CUDA_MODULE_LOADING=LAZY their code is put in
    device memory at first launch. Returns the sum (to use it)."""
    w = torch.ones(MiB, dtype=torch.uint8, device="cuda")
    w.fill_(1)
    total = int(w[:4096].sum().item())
    torch.cuda.synchronize()
    del w
    torch.cuda.empty_cache()
    torch.cuda.synchronize()
    return total


def mode_hold(limit, release_file, warm):
    import torch
    oom_type = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)
    torch.cuda.init()
    variant = "warm" if warm else "cold"
    if warm:
        s = warm_up(torch)
        print(f"hold[{variant}]: warm-up done (uint8 fill + sum = {s}, synchronized) before the fill")
    else:
        print(f"hold[{variant}]: no warm-up: the fill happens before the first kernel (informational)")
    stage(torch, variant, "before_fill")
    chunks = []
    got = 0
    for step in (64 * MiB, 2 * MiB):
        g, e = fill_until_oom(torch, oom_type, chunks, step)
        got += g
        print(f"hold[{variant}]: +{mib(g)} in {mib(step)} chunks, stopped with {first_line(e) if e else None}")
        e = None
    free_f = stage(torch, variant, "after_fill")
    for c in chunks:
        c.fill_(1)
    torch.cuda.synchronize()
    stage(torch, variant, "after_write")
    free, total = torch.cuda.mem_get_info()
    print(f"HOLDING pid={os.getpid()} bytes={got} variant={variant} reserved={torch.cuda.memory_reserved()} "
          f"free_after_fill={free_f} free={free} total={total}", flush=True)
    deadline = time.time() + 120
    while not os.path.exists(release_file) and time.time() < deadline:
        time.sleep(0.1)
    print("released", flush=True)
    return 0


def mode_check(limit):
    import torch
    conf = os.environ.get("PYTORCH_CUDA_ALLOC_CONF", "(default)")
    print(f"torch {torch.__version__} cuda {torch.version.cuda} alloc_conf={conf}")
    oom_type = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)
    check(preloaded(), "preload_active", f"libgpushare mapped={preloaded()}")
    if not check(torch.cuda.is_available(), "cuda_available", "torch.cuda.is_available()"):
        summary("no CUDA")
        return 1
    torch.cuda.init()
    print(f"allocator backend: {torch.cuda.get_allocator_backend()}")

    free0, total0 = torch.cuda.mem_get_info()
    check(total0 == limit, "mem_get_info_total", f"total={total0} limit={limit}")
    check(free0 <= limit, "mem_get_info_free", f"free={mib(free0)} <= {mib(limit)}")
    props = torch.cuda.get_device_properties(0)
    check(props.total_memory == limit, "props_total_memory", f"total_memory={props.total_memory}")

    # Under the limit: 1 GiB works and can be written.
    try:
        x = torch.empty(1024 * MiB, dtype=torch.uint8, device="cuda")
        x.fill_(7)
        torch.cuda.synchronize()
        ok = int(x[-1].item()) == 7
        del x
        check(ok, "alloc_1GiB_under", "1 GiB tensor allocated and written")
    except Exception as e:  # noqa: BLE001
        check(False, "alloc_1GiB_under", first_line(e))

    # cuBLAS (workspace allocation under the limit).
    try:
        a = torch.randn(1024, 1024, device="cuda", dtype=torch.float16)
        b = a @ a
        torch.cuda.synchronize()
        check(bool(torch.isfinite(b).all()), "matmul", "fp16 1024x1024 matmul")
        del a, b
    except Exception as e:  # noqa: BLE001
        check(False, "matmul", first_line(e))

    # One request past the whole limit.
    over = limit + STEP
    try:
        y = torch.empty(over, dtype=torch.uint8, device="cuda")
        torch.cuda.synchronize()
        del y
        check(False, "single_over_limit_oom", f"{mib(over)} tensor was allocated")
    except oom_type as e:
        check(True, "single_over_limit_oom", first_line(e))
    except Exception as e:  # noqa: BLE001
        check(False, "single_over_limit_oom", f"wrong exception {first_line(e)}")

    # Baseline for the fill: after cuBLAS has its workspace and kernels (they stay).
    torch.cuda.empty_cache()
    torch.cuda.synchronize()
    free_b, _ = torch.cuda.mem_get_info()
    print(f"free before fill (after 1 GiB test, matmul, empty_cache): {mib(free_b)}")

    # 256 MiB steps until OOM.
    chunks = []
    got, err = fill_until_oom(torch, oom_type, chunks, STEP)
    free_peak, _ = torch.cuda.mem_get_info()
    reserved_peak = torch.cuda.memory_reserved()
    err_name = type(err).__name__ if err else None
    print(f"256 MiB steps: got {got} ({mib(got)}), reserved {mib(reserved_peak)}, "
          f"free at peak {mib(free_peak)}, stopped with {first_line(err) if err else None}")
    check(isinstance(err, oom_type), "steps_oom_error", f"stopped with {err_name}")
    check(got <= limit, "steps_le_limit", f"got={mib(got)} limit={mib(limit)}")
    check(got + STEP + 128 * MiB >= free_b, "steps_reach_free",
          f"got={mib(got)} free before fill={mib(free_b)}")

    # Survives: free, then allocate again. Drop the exception first (and the list's contents,
    # whoever else refers to the list): a live traceback would keep the tensors allocated.
    err = None
    release(torch, chunks)
    del chunks
    free1, _ = torch.cuda.mem_get_info()
    print(f"after freeing the fill (chunks cleared, exception dropped, empty_cache): free {mib(free1)}, "
          f"reserved {mib(torch.cuda.memory_reserved())}")
    try:
        z = torch.ones(1024 * MiB, dtype=torch.uint8, device="cuda")
        torch.cuda.synchronize()
        s = int(z[:16].sum().item())
        del z
        torch.cuda.empty_cache()
        check(s == 16, "alloc_after_oom", f"1 GiB after freeing works (free was {mib(free1)})")
    except Exception as e:  # noqa: BLE001
        check(False, "alloc_after_oom", first_line(e))
    check(free1 + 64 * MiB >= free_b, "free_returns",
          f"free after empty_cache={mib(free1)} before fill={mib(free_b)}")

    summary(f"total={mib(total0)} props_total={mib(props.total_memory)} free0={mib(free0)} "
            f"free_before_fill={mib(free_b)} "
            f"got={mib(got)} err={err_name} free_after_release={mib(free1)}")
    return 0 if not failed else 1


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    limit = int(sys.argv[1])
    args = sys.argv[2:]
    if args[:1] == ["--bad"]:
        return mode_bad()
    if args[:1] == ["--info"]:
        return mode_info(limit)
    if args[:1] in (["--hold"], ["--hold-cold"]) and len(args) >= 2:
        return mode_hold(limit, args[1], warm=args[0] == "--hold")
    return mode_check(limit)


if __name__ == "__main__":
    try:
        rc = main()
    except Exception as e:  # noqa: BLE001
        import traceback
        traceback.print_exc()
        check(False, "unexpected_exception", first_line(e))
        summary("crashed")
        rc = 1
    sys.stdout.flush()
    sys.exit(rc)
