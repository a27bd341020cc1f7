/* SPDX-License-Identifier: Apache-2.0 */
/* Test-facing C API of the fake CUDA driver (tests/fake_driver, built as libcuda.so.1).
 *
 * Configuration is read from the environment at cuInit (and again after fakecuda_reset):
 *   GPUSHARE_FAKE_DEVICES       comma list of device sizes, bytes with optional Ki/Mi/Gi/Ti
 *                               suffix (default "16Gi": one device)
 *   GPUSHARE_FAKE_CTX_OVERHEAD  physical bytes each live context consumes (default 0)
 *   GPUSHARE_FAKE_CTX_CREATE_MS a context's creation takes this long (default 0), its memory
 *                               in use from the start; the process shows in the fake NVML's
 *                               process list only once it is done
 *   GPUSHARE_FAKE_STATE_DIR     share physical accounting with every process using this dir
 *                               (the fake NVML reads it with GPUSHARE_FAKE_NVML_LIVE=1)
 *   GPUSHARE_FAKE_UUID_SALT     hashed into device UUID bytes 4..11 (simulates another machine)
 *   GPUSHARE_FAKE_NO_DEVICE=1   cuInit fails with CUDA_ERROR_NO_DEVICE
 *   GPUSHARE_FAKE_TPC_BITS      live bits of the launch descriptor's TPC mask, "0-7,9" (2 SMs
 *                               each; default the H100's 66 of 128); the SM count follows
 *   GPUSHARE_FAKE_QMD_VERSION   the descriptors' version byte (default 0x40, Hopper V04_00)
 *   GPUSHARE_FAKE_PROFILER=1    the launch-callback slot is taken (as by CUPTI)
 *   GPUSHARE_FAKE_GPCS          each GPC's mask bits, GPCs separated by '/' ("0-7/8-15");
 *                               default: bit / 9 below 72, GPC 0 above
 *   GPUSHARE_FAKE_UNCLUSTERED_BITS  bits whose TPCs never run cluster blocks (default
 *                               "75,78,81,83", as on the H100; "" for none)
 *   GPUSHARE_FAKE_DTOH_DELAY_MS every device-to-host copy sleeps this long first (slow swap-outs)
 *
 * Kernels that touch device memory which is not mapped or not accessible (a VMM range after
 * cuMemUnmap) fault: the launch returns CUDA_ERROR_ILLEGAL_ADDRESS and the context is lost (every
 * later launch and synchronization returns it), as on a GPU. A cuCtxSynchronize while a stream of
 * the context captures invalidates the capture (its cuStreamEndCapture fails).
 *
 * Launch callback (launch_callback.cpp): cuGetExportTable with the callback table's id
 * (sm_partition/launch_descriptor.h) subscribes one callback, fired with a fresh descriptor at
 * every kernel launch (cuLaunchKernel[Ex], cooperative, and each kernel node at a graph's first
 * launch: later replays reuse the descriptors). Kernels then see the SMs the mask enables.
 * The built-in kernel gpushare_smid_bitmap (a module whose image declares
 * ".entry gpushare_smid_bitmap") sets bit s of its uint32 bitmap for each SM s it runs on;
 * gpushare_smid_cluster(uint32_t* out, uint64_t seed) writes for each block the SM it ran on,
 * every cluster's blocks on distinct SMs of one GPC (chosen pseudo-randomly from the seed).
 * Cluster launches (cuLaunchKernelEx with CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION) need the grid
 * to be a multiple of the cluster, at most 8 blocks (16 with the non-portable attribute), and a
 * GPC with that many enabled SMs; a function's required cluster (cuFuncSetAttribute
 * CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_*) is used when a launch names none and must match one it
 * names; dynamic shared memory above 48 KiB needs CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
 * (at most 227 KiB), as on the H100. cuOccupancyMaxActiveClusters answers for the whole GPU
 * (whatever a launch's TPC mask): per GPC, floor(SMs that run clusters x blocks per SM / cluster).
 *
 * Kernels: cuModuleGetFunction(&f, mod, "name") resolves "name" with dlsym(RTLD_DEFAULT) to a
 * function of type fakecuda_kernel defined in the test program (link it with -rdynamic /
 * ENABLE_EXPORTS so the symbol is visible, and declare it extern "C"). cuLaunchKernel calls it
 * synchronously, once per launch, with the launch geometry and the kernelParams array.
 *
 * Reach these functions directly (link against the fake) or through
 * dlsym(RTLD_DEFAULT, "fakecuda_...") when the fake is loaded as libcuda.so.1.
 */
#ifndef GPUSHARE_TESTS_FAKE_DRIVER_FAKE_CUDA_CONTROL_H_
#define GPUSHARE_TESTS_FAKE_DRIVER_FAKE_CUDA_CONTROL_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct fakecuda_launch {
  unsigned grid[3], block[3];
  unsigned shared_bytes;
  void** params; /* cuLaunchKernel's kernelParams: params[i] points at argument i */
  const unsigned* sm_ids; /* the SMs this launch runs on (what %smid would show): those its */
  unsigned sm_count;      /* descriptor's TPC mask leaves enabled */
  const unsigned* sm_gpcs; /* the GPC of each of sm_ids (0xFE: never runs cluster blocks) */
  unsigned cluster[3];    /* thread block cluster dimensions (1, 1, 1 without clusters) */
};

typedef void (*fakecuda_kernel)(const struct fakecuda_launch*);

/* cuGetExportTable answers this 16-byte id with the address of a fixed static table whose
 * first uint64_t is the table size in bytes; any other id gets CUDA_ERROR_INVALID_VALUE.
 * Like the real driver's, it works before cuInit. */
#define FAKECUDA_EXPORT_TABLE_UUID                                                   \
  {0x67, 0x73, 0x66, 0x6b, 0x65, 0x78, 0x70, 0x74, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, \
   0x07, 0x08}

/* Physical bytes in use on `device`: all processes sharing GPUSHARE_FAKE_STATE_DIR (or this
 * process only, without it). 0 for an unknown device or before cuInit. */
uint64_t fakecuda_physical_used(int device);
/* Physical bytes this process holds on `device`. */
uint64_t fakecuda_process_used(int device);
/* Live device allocations of this process: linear, managed, stream-ordered and live graph
 * allocations, unreleased VMM handles, arrays and mipmapped arrays. */
int fakecuda_live_allocations(void);
/* Live contexts (active primary contexts and undestroyed created ones). */
int fakecuda_live_contexts(void);
/* Live events: created, and neither destroyed nor gone with their context. */
int fakecuda_live_events(void);
/* Calls that named an event after it was destroyed (by cuEventDestroy or with its context:
 * they return CUDA_ERROR_INVALID_HANDLE, as the real driver does in practice, which otherwise
 * leaves them undefined) or recorded an event on a stream of another context (also
 * CUDA_ERROR_INVALID_HANDLE). A correct program makes none. */
uint64_t fakecuda_bad_event_calls(void);
/* Bytes reserved by graph allocations on `device` (same as CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT). */
uint64_t fakecuda_graph_reserved(int device);
/* Number of driver symbols the hook-table coverage check references. */
int fakecuda_covered_symbol_count(void);
/* Kernel launches so far, and those whose descriptor carried a TPC mask. */
uint64_t fakecuda_launches(void);
uint64_t fakecuda_masked_launches(void);
/* The latest launch's disable mask (4 words); returns 1 when it was masked. */
int fakecuda_last_launch_mask(uint32_t disable[4]);
/* SMs the latest launch ran on. */
unsigned fakecuda_last_launch_sms(void);
/* 1 when a launch callback is subscribed and enabled. */
int fakecuda_launch_callback_subscribed(void);
/* Destroys every object, frees all memory and un-initializes the driver: the next cuInit
 * re-reads the environment. Context handles other threads still hold become invalid. */
void fakecuda_reset(void);

#ifdef __cplusplus
}
#endif

#endif /* GPUSHARE_TESTS_FAKE_DRIVER_FAKE_CUDA_CONTROL_H_ */
