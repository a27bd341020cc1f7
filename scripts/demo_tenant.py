#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""One tenant of scripts/demo.sh: holds device memory in 256 MiB blocks as told on stdin, under
LD_PRELOAD=libgpushare.so, with PyTorch (`torch`) or the CUDA driver API through ctypes (`driver`,
what runs on the fake driver).

  demo_tenant.py NAME torch|driver      then, one per line on stdin:
    take MIB    allocate until it holds MIB MiB (an allocation that has to wait says so)
    free MIB    release blocks until it holds MIB MiB
    touch       a kernel over every block (under the swap resolver, brings swapped memory back)
    quit
Each answer is one line starting with NAME.
"""
import ctypes
import sys
import time

MIB = 1 << 20
BLOCK_MIB = 256


class Torch:
    def __init__(self):
        import torch
        self.torch = torch
        torch.empty(1, device="cuda")

    def alloc(self):
        try:
            t = self.torch.empty(BLOCK_MIB * MIB, dtype=self.torch.uint8, device="cuda")
            t.fill_(1)
            return t
        except self.torch.OutOfMemoryError:
            return None

    def free(self, block):
        del block
        self.torch.cuda.empty_cache()

    def touch(self, blocks):
        for b in blocks:
            b.add_(1)
        self.torch.cuda.synchronize()


class Driver:
    def __init__(self):
        self.cuda = ctypes.CDLL("libcuda.so.1")
        ctx, dev = ctypes.c_void_p(), ctypes.c_int()
        for rc in (self.cuda.cuInit(0), self.cuda.cuDeviceGet(ctypes.byref(dev), 0),
                   self.cuda.cuDevicePrimaryCtxRetain(ctypes.byref(ctx), dev), self.cuda.cuCtxSetCurrent(ctx)):
            if rc != 0:
                raise SystemExit(f"CUDA driver call failed with {rc}")

    def alloc(self):
        ptr = ctypes.c_uint64()
        return ptr.value if self.cuda.cuMemAlloc_v2(ctypes.byref(ptr), ctypes.c_size_t(BLOCK_MIB * MIB)) == 0 else None

    def free(self, block):
        self.cuda.cuMemFree_v2(ctypes.c_uint64(block))

    def touch(self, blocks):
        byte = ctypes.c_uint8()
        for b in blocks:  # a copy is a safe point, as a kernel is
            self.cuda.cuMemcpyDtoH_v2(ctypes.byref(byte), ctypes.c_uint64(b), ctypes.c_size_t(1))


def main():
    name, backend = sys.argv[1], sys.argv[2]
    gpu = Torch() if backend == "torch" else Driver()
    blocks = []

    def say(text):
        print(f"{name}: {text}", flush=True)

    def held():
        mib = len(blocks) * BLOCK_MIB
        return f"{mib} MiB ({mib / 1024:.2f} GiB)"

    say("ready")
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "take":
            want = int(words[1]) // BLOCK_MIB
            while len(blocks) < want:
                t0 = time.monotonic()
                block = gpu.alloc()
                waited = time.monotonic() - t0
                if block is None:
                    say(f"out of memory at {held()}")
                    break
                blocks.append(block)
                if waited > 0.2:
                    say(f"an allocation waited {waited:.1f} s, then it had {held()}")
            say(f"holds {held()}")
        elif words[0] == "free":
            while len(blocks) > int(words[1]) // BLOCK_MIB:
                gpu.free(blocks.pop())
            say(f"holds {held()}")
        elif words[0] == "touch":
            t0 = time.monotonic()
            gpu.touch(blocks)
            say(f"touched its {held()} in {time.monotonic() - t0:.1f} s")
        elif words[0] == "quit":
            break


if __name__ == "__main__":
    main()
