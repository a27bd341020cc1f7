// SPDX-License-Identifier: Apache-2.0
// CUDA arrays and mipmapped arrays: charged by an estimate, then by the driver's own figure.
#include "hooks/export.h"
#include "quota/memory_accounting.h"
#include "quota/unseen_memory.h"

using gpushare::Real;
namespace quota = gpushare::quota;
using quota::HandleKind;

namespace {

CUDA_ARRAY3D_DESCRIPTOR As3D(const CUDA_ARRAY_DESCRIPTOR& d) {
  CUDA_ARRAY3D_DESCRIPTOR out{};
  out.Width = d.Width;
  out.Height = d.Height;
  out.Format = d.Format;
  out.NumChannels = d.NumChannels;
  return out;
}

// Creates with `create`, then corrects the charge to the driver's size (`requirements`);
// destroys again with `destroy` when the real size does not fit.
template <typename Handle, typename CreateFn, typename RequirementsFn, typename DestroyFn>
CUresult CreateCharged(Handle* handle, HandleKind kind, const CUDA_ARRAY3D_DESCRIPTOR& desc,
                       unsigned int levels, CreateFn create, RequirementsFn requirements,
                       DestroyFn destroy) {
  const quota::Target t = quota::CurrentTarget();
  if (t.quota == nullptr) return create();
  const uint64_t estimate = quota::EstimateArrayBytes(desc, levels);
  quota::Charge charge = quota::ChargeAllocation(*t.quota, estimate);
  if (!charge) return quota::Deny(*t.quota, estimate, "array creation");
  const CUresult rc = quota::CallDriverGranted(*t.quota, charge, create);
  if (rc != CUDA_SUCCESS) return rc;
  CUDA_ARRAY_MEMORY_REQUIREMENTS req{};
  if (requirements(&req, *handle, t.quota->ordinal()) == CUDA_SUCCESS && !charge.Resize(req.size)) {
    destroy(*handle);
    *handle = nullptr;
    return quota::Deny(*t.quota, req.size, "array creation");
  }
  quota::Keep(kind, reinterpret_cast<uint64_t>(*handle), t, charge);
  return rc;
}

}  // namespace

GS_EXPORT CUresult cuArrayCreate_v2(CUarray* pHandle, const CUDA_ARRAY_DESCRIPTOR* pAllocateArray) {
  GS_ENSURE_INIT();
  if (pHandle == nullptr || pAllocateArray == nullptr) return Real().cuArrayCreate_v2(pHandle, pAllocateArray);
  return CreateCharged(
      pHandle, HandleKind::kArray, As3D(*pAllocateArray), 1,
      [&] { return Real().cuArrayCreate_v2(pHandle, pAllocateArray); },
      Real().cuArrayGetMemoryRequirements, Real().cuArrayDestroy);
}

GS_EXPORT CUresult cuArray3DCreate_v2(CUarray* pHandle, const CUDA_ARRAY3D_DESCRIPTOR* pAllocateArray) {
  GS_ENSURE_INIT();
  if (pHandle == nullptr || pAllocateArray == nullptr) return Real().cuArray3DCreate_v2(pHandle, pAllocateArray);
  return CreateCharged(
      pHandle, HandleKind::kArray, *pAllocateArray, 1,
      [&] { return Real().cuArray3DCreate_v2(pHandle, pAllocateArray); },
      Real().cuArrayGetMemoryRequirements, Real().cuArrayDestroy);
}

GS_EXPORT CUresult cuArrayDestroy(CUarray hArray) {
  GS_ENSURE_INIT();
  const CUresult rc = Real().cuArrayDestroy(hArray);
  if (rc == CUDA_SUCCESS) quota::Forget(HandleKind::kArray, reinterpret_cast<uint64_t>(hArray));
  return rc;
}

GS_EXPORT CUresult cuMipmappedArrayCreate(CUmipmappedArray* pHandle,
                                          const CUDA_ARRAY3D_DESCRIPTOR* pMipmappedArrayDesc,
                                          unsigned int numMipmapLevels) {
  GS_ENSURE_INIT();
  if (pHandle == nullptr || pMipmappedArrayDesc == nullptr)
    return Real().cuMipmappedArrayCreate(pHandle, pMipmappedArrayDesc, numMipmapLevels);
  return CreateCharged(
      pHandle, HandleKind::kMipmappedArray, *pMipmappedArrayDesc, numMipmapLevels,
      [&] { return Real().cuMipmappedArrayCreate(pHandle, pMipmappedArrayDesc, numMipmapLevels); },
      Real().cuMipmappedArrayGetMemoryRequirements, Real().cuMipmappedArrayDestroy);
}

GS_EXPORT CUresult cuMipmappedArrayDestroy(CUmipmappedArray hMipmappedArray) {
  GS_ENSURE_INIT();
  const CUresult rc = Real().cuMipmappedArrayDestroy(hMipmappedArray);
  if (rc == CUDA_SUCCESS)
    quota::Forget(HandleKind::kMipmappedArray, reinterpret_cast<uint64_t>(hMipmappedArray));
  return rc;
}
