# SPDX-License-Identifier: Apache-2.0
# GPU check of SM partitions through PyTorch (tests/gpu/sm_partition.sh), unmodified, under
# LD_PRELOAD=libgpushare.so. Prints "key value" lines.
#   python3 sm_torch.py probe              multi_processor_count; distinct %smid of a Triton kernel
#                                          (default stream, new stream, 8 threads, CUDA graph);
#                                          bf16 8192^3 matmul TFLOP/s (cuBLAS)
#   python3 sm_torch.py mm START SECONDS   matmul TFLOP/s from unix time START for SECONDS
import sys, threading, time
import torch

N = 8192


def smid_paths():
    try:
        import triton
        import triton.language as tl
    except Exception as e:  # no Triton: the runtime-API program covers %smid
        print(f"triton_error {type(e).__name__}")
        return

    @triton.jit
    def smid_kernel(out_ptr, spin: tl.constexpr):
        pid = tl.program_id(0)
        s = tl.inline_asm_elementwise("mov.u32 $0, %smid;", "=r", [], dtype=tl.int32, is_pure=False, pack=1)
        acc = pid * 1.0
        for i in range(spin):
            acc = acc * 1.0000001 + 0.5
        tl.store(out_ptr + pid, s + (acc * 0).to(tl.int32))

    def sms(stream=None):
        out = torch.zeros(132 * 16, dtype=torch.int32, device="cuda")
        with torch.cuda.stream(stream or torch.cuda.current_stream()):
            smid_kernel[(out.numel(),)](out, spin=20000)
        torch.cuda.synchronize()
        return set(out.tolist())

    print(f"triton_default_stream {len(sms())}")
    print(f"triton_new_stream {len(sms(torch.cuda.Stream()))}")
    got = []
    def worker():
        torch.cuda.set_device(0)
        got.append(sms(torch.cuda.Stream()))
    ts = [threading.Thread(target=worker) for _ in range(8)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    # Concurrent kernels share the slice: one may land on fewer of its SMs, none outside it.
    print(f"triton_threads_union {len(set().union(*got))}")
    print(f"triton_threads_max {max(len(g) for g in got)}")
    out = torch.zeros(132 * 16, dtype=torch.int32, device="cuda")
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        smid_kernel[(out.numel(),)](out, spin=20000)
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        smid_kernel[(out.numel(),)](out, spin=20000)
    out.zero_(); g.replay(); torch.cuda.synchronize()
    print(f"triton_graph {len(set(out.tolist()))}")


def matmul(start, seconds):
    a = torch.randn(N, N, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(N, N, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    while time.time() < start:
        time.sleep(0.002)
    t0 = time.time(); k = 0
    while time.time() - t0 < seconds:
        for _ in range(4):
            a @ b
        torch.cuda.synchronize(); k += 4
    el = time.time() - t0
    print(f"tflops {2 * N**3 * k / el / 1e12:.1f}", flush=True)


mode = sys.argv[1]
print(f"multi_processor_count {torch.cuda.get_device_properties(0).multi_processor_count}", flush=True)
if mode == "probe":
    smid_paths()
    matmul(0, 3.0)
else:
    matmul(float(sys.argv[2]), float(sys.argv[3]))
