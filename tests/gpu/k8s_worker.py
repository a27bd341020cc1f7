# SPDX-License-Identifier: Apache-2.0
"""A PyTorch tenant for tests/gpu/k8s.sh, started by gpushare-run.

  k8s_worker.py RELEASE_FILE HOLD_MIB
Warms up, prints what torch.cuda.mem_get_info shows, fills 256 MiB blocks until
torch.OutOfMemoryError, keeps HOLD_MIB of them (written), prints READY, and holds until
RELEASE_FILE exists (at most 120 s). Lines are "key value".
"""
import os
import sys
import time

import torch

MiB = 1 << 20


def say(key, value):
    print(f"{key} {value}", flush=True)


def main():
    release, hold_mib = sys.argv[1], int(sys.argv[2])
    torch.ones(1, device="cuda").sum().item()  # context and the kernels used below
    free, total = torch.cuda.mem_get_info()
    say("pid", os.getpid())
    say("meminfo_total", total)
    say("meminfo_free", free)
    say("sm_count", torch.cuda.get_device_properties(0).multi_processor_count)
    blocks, oom = [], False
    while len(blocks) * 256 < 64 * 1024:
        try:
            blocks.append(torch.empty(256 * MiB, dtype=torch.uint8, device="cuda"))
        except torch.OutOfMemoryError:
            oom = True
            break
    say("filled_bytes", len(blocks) * 256 * MiB)
    say("oom", int(oom))
    del blocks[hold_mib // 256:]
    for b in blocks:
        b.fill_(1)
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    say("held_bytes", len(blocks) * 256 * MiB)
    say("reserved_bytes", torch.cuda.memory_reserved())
    say("READY", 1)
    end = time.time() + 120
    while not os.path.exists(release) and time.time() < end:
        time.sleep(0.1)
    say("RELEASED", 1)


if __name__ == "__main__":
    main()
