# SPDX-License-Identifier: Apache-2.0
"""A PyTorch client for tests/gpu/hami_values.sh.

  hami_worker.py total            prints "TOTAL <bytes>" (torch.cuda.mem_get_info's total);
                                  exit 3 when CUDA is unavailable (a refused configuration)
  hami_worker.py rate SECONDS     bf16 4096^3 matmuls for SECONDS after a 1 s warm-up, in groups
                                  of 8 then a synchronize; prints "RATE <matmuls per second>"
"""
import sys
import time


def main():
    mode = sys.argv[1]
    import torch

    if not torch.cuda.is_available():
        print("SUMMARY: CUDA unavailable")
        sys.exit(3)
    if mode == "total":
        free, total = torch.cuda.mem_get_info()
        print(f"TOTAL {total}")
        print(f"SUMMARY: total {total} free {free}")
    elif mode == "rate":
        seconds = float(sys.argv[2])
        a = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16)
        b = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16)

        def run(limit_s):
            count, start = 0, time.perf_counter()
            while time.perf_counter() - start < limit_s:
                for _ in range(8):
                    c = a @ b
                torch.cuda.synchronize()
                count += 8
            del c
            return count / (time.perf_counter() - start)

        run(1.0)
        rate = run(seconds)
        print(f"RATE {rate:.2f}")
        print(f"SUMMARY: {rate:.1f} matmuls/s")
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
