# SPDX-License-Identifier: Apache-2.0
"""Lists the compute processes of GPU 0 through NVML's public API, as pynvml or an exporter
would: dlopen("libnvidia-ml.so.1") + dlsym("nvmlDeviceGetComputeRunningProcesses_v3").
Prints "pid,used_MiB" entries joined by ';' (empty when none)."""
import ctypes

nvml = ctypes.CDLL("libnvidia-ml.so.1")


class ProcessInfo(ctypes.Structure):  # nvmlProcessInfo_t (v2/v3 layout)
    _fields_ = [("pid", ctypes.c_uint), ("usedGpuMemory", ctypes.c_ulonglong),
                ("gpuInstanceId", ctypes.c_uint), ("computeInstanceId", ctypes.c_uint)]


assert nvml.nvmlInit_v2() == 0
dev = ctypes.c_void_p()
assert nvml.nvmlDeviceGetHandleByIndex_v2(0, ctypes.byref(dev)) == 0
count = ctypes.c_uint(64)
infos = (ProcessInfo * 64)()
rc = nvml.nvmlDeviceGetComputeRunningProcesses_v3(dev, ctypes.byref(count), infos)
assert rc == 0, rc
print(";".join(f"{infos[i].pid},{infos[i].usedGpuMemory >> 20}" for i in range(count.value)))
