// SPDX-License-Identifier: Apache-2.0
// Function attributes and occupancy, as on the H100: 2048 threads, 32 blocks and 228 KiB of
// shared memory per SM (1 KiB of it reserved per block), clusters of up to 8 blocks (16 with
// the non-portable attribute), all blocks of a cluster in one GPC and none on the TPCs that
// never run cluster blocks (launch_callback.cpp's GPC map).
#include <algorithm>
#include <map>

#include "tests/fake_driver/state.h"

namespace fakecuda {
namespace {

constexpr unsigned kSharedBytesPerSm = 228 * 1024;
constexpr unsigned kReservedSharedBytesPerBlock = 1024;

// The config's CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION, or null.
const unsigned* asked_cluster(const CUlaunchConfig& config) {
  for (unsigned i = 0; i < config.numAttrs; ++i)
    if (config.attrs[i].id == CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION) return &config.attrs[i].value.clusterDim.x;
  return nullptr;
}

}  // namespace

int blocks_per_sm(const Function& fn, unsigned threads, size_t shared_bytes) {
  if (threads == 0 || threads > 1024 || shared_bytes > fn.max_dynamic_shared) return 0;
  const size_t by_threads = 2048 / threads;
  const size_t by_shared = kSharedBytesPerSm / (shared_bytes + kReservedSharedBytesPerBlock);
  return static_cast<int>(std::min({by_threads, by_shared, size_t{32}}));
}

CUresult cluster_of(const Function& fn, const unsigned* asked, unsigned out[3], bool* clustered) {
  const unsigned* required = fn.required_cluster;
  const bool has_required = required[0] != 0 || required[1] != 0 || required[2] != 0;
  *clustered = has_required || asked != nullptr;
  if (!*clustered) return CUDA_SUCCESS;
  if (has_required && asked != nullptr &&
      (asked[0] != required[0] || asked[1] != required[1] || asked[2] != required[2]))
    return CUDA_ERROR_INVALID_CLUSTER_SIZE;
  const unsigned* dims = has_required ? required : asked;
  for (int i = 0; i < 3; ++i) out[i] = dims[i];
  const uint64_t size = uint64_t{out[0]} * out[1] * out[2];
  const unsigned most = fn.non_portable_clusters ? 16 : 8;
  if (size == 0 || size > most) return CUDA_ERROR_INVALID_CLUSTER_SIZE;
  return CUDA_SUCCESS;
}

}  // namespace fakecuda

using namespace fakecuda;

FAKE_API CUresult cuFuncSetAttribute(CUfunction f, CUfunction_attribute attrib, int value) {
  FAKE_ENTER();
  Function* fn = find_function(f);
  if (fn == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  switch (attrib) {
    case CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES:
      if (value < 0 || static_cast<unsigned>(value) > kMaxSharedBytesOptIn) return CUDA_ERROR_INVALID_VALUE;
      fn->max_dynamic_shared = static_cast<unsigned>(value);
      return CUDA_SUCCESS;
    case CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED:
      fn->non_portable_clusters = value != 0;
      return CUDA_SUCCESS;
    case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_WIDTH:
    case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_HEIGHT:
    case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_DEPTH:
      // Validity (all 0 or all positive, the size limit) is checked at launch, as cuda.h says.
      if (value < 0) return CUDA_ERROR_INVALID_VALUE;
      fn->required_cluster[attrib - CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_WIDTH] = static_cast<unsigned>(value);
      return CUDA_SUCCESS;
    case CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT:
    case CU_FUNC_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE:
      return CUDA_SUCCESS;
    default:
      return CUDA_ERROR_INVALID_VALUE;
  }
}

FAKE_API CUresult cuFuncGetAttribute(int* value, CUfunction_attribute attrib, CUfunction f) {
  FAKE_ENTER();
  if (value == nullptr) return CUDA_ERROR_INVALID_VALUE;
  const Function* fn = find_function(f);
  if (fn == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  switch (attrib) {
    case CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK: *value = 1024; break;
    case CU_FUNC_ATTRIBUTE_NUM_REGS: *value = 32; break;
    case CU_FUNC_ATTRIBUTE_PTX_VERSION:
    case CU_FUNC_ATTRIBUTE_BINARY_VERSION: *value = 90; break;
    case CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES: *value = static_cast<int>(fn->max_dynamic_shared); break;
    case CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT: *value = -1; break;
    case CU_FUNC_ATTRIBUTE_CLUSTER_SIZE_MUST_BE_SET:
      *value = fn->required_cluster[0] != 0 || fn->required_cluster[1] != 0 || fn->required_cluster[2] != 0;
      break;
    case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_WIDTH:
    case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_HEIGHT:
    case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_DEPTH:
      *value = static_cast<int>(fn->required_cluster[attrib - CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_WIDTH]);
      break;
    case CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED: *value = fn->non_portable_clusters; break;
    case CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES:
    case CU_FUNC_ATTRIBUTE_CONST_SIZE_BYTES:
    case CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES:
    case CU_FUNC_ATTRIBUTE_CACHE_MODE_CA:
    case CU_FUNC_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE: *value = 0; break;
    default: return CUDA_ERROR_INVALID_VALUE;
  }
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuOccupancyMaxActiveBlocksPerMultiprocessor(int* blocks, CUfunction f, int block_size,
                                                              size_t dynamic_shared) {
  FAKE_ENTER();
  if (blocks == nullptr || block_size <= 0) return CUDA_ERROR_INVALID_VALUE;
  const Function* fn = find_function(f);
  if (fn == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  *blocks = blocks_per_sm(*fn, static_cast<unsigned>(block_size), dynamic_shared);
  return CUDA_SUCCESS;
}

// For the whole GPU: the launch descriptor's TPC mask is the caller's business, not the driver's.
FAKE_API CUresult cuOccupancyMaxActiveClusters(int* clusters, CUfunction f, const CUlaunchConfig* config) {
  FAKE_ENTER();
  if (clusters == nullptr || config == nullptr) return CUDA_ERROR_INVALID_VALUE;
  Context* c = nullptr;
  FAKE_TRY(stream_context(config->hStream, &c));
  const Function* fn = find_function(f);
  if (fn == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  if (config->numAttrs > 0 && config->attrs == nullptr) return CUDA_ERROR_INVALID_VALUE;
  const uint64_t threads = uint64_t{config->blockDimX} * config->blockDimY * config->blockDimZ;
  if (threads == 0 || threads > 1024) return CUDA_ERROR_INVALID_VALUE;
  unsigned dims[3];
  bool clustered = false;
  FAKE_TRY(cluster_of(*fn, asked_cluster(*config), dims, &clustered));
  if (!clustered) return CUDA_ERROR_INVALID_CLUSTER_SIZE;
  std::map<unsigned, uint64_t> sms_per_gpc;
  const unsigned sms = fake_sm_count();
  for (unsigned sm = 0; sm < sms; ++sm)
    if (const unsigned gpc = fake_gpc_of_sm(sm); gpc != kUnclustered) ++sms_per_gpc[gpc];
  const uint64_t per_sm = static_cast<uint64_t>(blocks_per_sm(*fn, static_cast<unsigned>(threads), config->sharedMemBytes));
  const uint64_t size = uint64_t{dims[0]} * dims[1] * dims[2];
  uint64_t total = 0;
  for (const auto& [gpc, n] : sms_per_gpc) total += n * per_sm / size;
  *clusters = static_cast<int>(total);
  return CUDA_SUCCESS;
}
