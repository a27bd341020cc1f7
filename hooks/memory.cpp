// SPDX-License-Identifier: Apache-2.0
// Synchronous allocations and what the program is told about memory.
#include "hooks/export.h"
#include "quota/memory_accounting.h"
#include "quota/swap_gate.h"
#include "quota/swap_table.h"
#include "quota/unseen_memory.h"

using gpushare::Real;
namespace quota = gpushare::quota;
using quota::HandleKind;

// A request the driver refuses for its arguments (a NULL output, a zero size) is the driver's to
// answer: charging it first could answer CUDA_ERROR_OUT_OF_MEMORY where the driver says
// CUDA_ERROR_INVALID_VALUE (tests/compat/arg_table.cpp).
GS_EXPORT CUresult cuMemAlloc_v2(CUdeviceptr* dptr, size_t bytesize) {
  GS_ENSURE_INIT();
  if (dptr == nullptr || bytesize == 0) return Real().cuMemAlloc_v2(dptr, bytesize);
  const quota::Target t = quota::CurrentTarget();
  if (t.quota == nullptr) return Real().cuMemAlloc_v2(dptr, bytesize);
  if (t.quota->swaps()) return quota::swap::Allocate(t, bytesize, dptr);
  quota::Charge charge = quota::ChargeAllocation(*t.quota, bytesize);
  if (!charge) return quota::Deny(*t.quota, bytesize, "cuMemAlloc");
  const CUresult rc =
      quota::CallDriverGranted(*t.quota, charge, [&] { return Real().cuMemAlloc_v2(dptr, bytesize); });
  if (rc == CUDA_SUCCESS) quota::Keep(HandleKind::kDevicePtr, *dptr, t, charge);
  return rc;
}

GS_EXPORT CUresult cuMemAllocManaged(CUdeviceptr* dptr, size_t bytesize, unsigned int flags) {
  GS_ENSURE_INIT();
  if (dptr == nullptr || bytesize == 0) return Real().cuMemAllocManaged(dptr, bytesize, flags);
  const quota::Target t = quota::CurrentTarget();
  if (t.quota == nullptr) return Real().cuMemAllocManaged(dptr, bytesize, flags);
  quota::Charge charge = quota::ChargeAllocation(*t.quota, bytesize);
  if (!charge) return quota::Deny(*t.quota, bytesize, "cuMemAllocManaged");
  const CUresult rc =
      quota::CallDriverGranted(*t.quota, charge, [&] { return Real().cuMemAllocManaged(dptr, bytesize, flags); });
  if (rc == CUDA_SUCCESS) quota::Keep(HandleKind::kDevicePtr, *dptr, t, charge);
  return rc;
}

GS_EXPORT CUresult cuMemAllocPitch_v2(CUdeviceptr* dptr, size_t* pPitch, size_t WidthInBytes,
                                      size_t Height, unsigned int ElementSizeBytes) {
  GS_ENSURE_INIT();
  const quota::Target t = dptr == nullptr || pPitch == nullptr || WidthInBytes == 0 || Height == 0
                              ? quota::Target{}
                              : quota::CurrentTarget();
  if (t.quota == nullptr)
    return Real().cuMemAllocPitch_v2(dptr, pPitch, WidthInBytes, Height, ElementSizeBytes);
  const uint64_t estimate = quota::EstimatePitchedBytes(WidthInBytes, Height);
  quota::Charge charge = quota::ChargeAllocation(*t.quota, estimate);
  if (!charge) return quota::Deny(*t.quota, estimate, "cuMemAllocPitch");
  const CUresult rc = quota::CallDriverGranted(*t.quota, charge, [&] {
    return Real().cuMemAllocPitch_v2(dptr, pPitch, WidthInBytes, Height, ElementSizeBytes);
  });
  if (rc != CUDA_SUCCESS) return rc;
  if (!charge.Resize(static_cast<uint64_t>(*pPitch) * Height)) {
    Real().cuMemFree_v2(*dptr);
    *dptr = 0;
    return quota::Deny(*t.quota, static_cast<uint64_t>(*pPitch) * Height, "cuMemAllocPitch");
  }
  quota::Keep(HandleKind::kDevicePtr, *dptr, t, charge);
  return rc;
}

GS_EXPORT CUresult cuMemFree_v2(CUdeviceptr dptr) {
  GS_ENSURE_INIT();
  if (CUresult rc; quota::swap::Enabled() && quota::swap::Free(dptr, &rc)) return rc;
  const CUresult rc = Real().cuMemFree_v2(dptr);
  if (rc == CUDA_SUCCESS && dptr != 0) quota::Forget(HandleKind::kDevicePtr, dptr);
  return rc;
}

GS_EXPORT CUresult cuMemGetInfo_v2(size_t* free, size_t* total) {
  GS_ENSURE_INIT();
  const CUresult rc = Real().cuMemGetInfo_v2(free, total);
  if (rc != CUDA_SUCCESS) return rc;
  if (quota::DeviceQuota* q = quota::CurrentQuota()) quota::ClampMemInfo(*q, free, total);
  return rc;
}

GS_EXPORT CUresult cuDeviceTotalMem_v2(size_t* bytes, CUdevice dev) {
  GS_ENSURE_INIT();
  const CUresult rc = Real().cuDeviceTotalMem_v2(bytes, dev);
  if (rc != CUDA_SUCCESS) return rc;
  if (quota::DeviceQuota* q = quota::QuotaFor(dev)) *bytes = q->visible_total_bytes();
  return rc;
}

// Virtual memory management: physical memory is taken by cuMemCreate on a device location;
// reserving address space is free.
GS_EXPORT CUresult cuMemCreate(CUmemGenericAllocationHandle* handle, size_t size,
                               const CUmemAllocationProp* prop, unsigned long long flags) {
  GS_ENSURE_INIT();
  quota::Target t;
  if (handle != nullptr && size != 0 && prop != nullptr && prop->location.type == CU_MEM_LOCATION_TYPE_DEVICE)
    t.quota = quota::QuotaFor(prop->location.id);
  if (t.quota == nullptr) return Real().cuMemCreate(handle, size, prop, flags);
  quota::Charge charge = quota::ChargeAllocation(*t.quota, size);
  if (!charge) return quota::Deny(*t.quota, size, "cuMemCreate");
  const CUresult rc =
      quota::CallDriverGranted(*t.quota, charge, [&] { return Real().cuMemCreate(handle, size, prop, flags); });
  if (rc == CUDA_SUCCESS) quota::Keep(HandleKind::kVmmHandle, *handle, t, charge);
  return rc;
}

GS_EXPORT CUresult cuMemRelease(CUmemGenericAllocationHandle handle) {
  GS_ENSURE_INIT();
  const CUresult rc = Real().cuMemRelease(handle);
  if (rc == CUDA_SUCCESS) quota::Forget(HandleKind::kVmmHandle, handle);
  return rc;
}

// Pointer queries: swappable allocations answer as cuMemAlloc memory does (quota/swap_table.h).
GS_EXPORT CUresult cuMemGetAddressRange_v2(CUdeviceptr* pbase, size_t* psize, CUdeviceptr dptr) {
  GS_ENSURE_INIT();
  if (quota::swap::Enabled() && quota::swap::AddressRange(dptr, pbase, psize)) return CUDA_SUCCESS;
  return Real().cuMemGetAddressRange_v2(pbase, psize, dptr);
}

GS_EXPORT CUresult cuPointerGetAttribute(void* data, CUpointer_attribute attribute, CUdeviceptr ptr) {
  GS_ENSURE_INIT();
  if (CUresult rc; quota::swap::Enabled() && quota::swap::PointerAttribute(data, attribute, ptr, &rc)) return rc;
  return Real().cuPointerGetAttribute(data, attribute, ptr);
}

GS_EXPORT CUresult cuPointerGetAttributes(unsigned int numAttributes, CUpointer_attribute* attributes, void** data,
                                          CUdeviceptr ptr) {
  GS_ENSURE_INIT();
  if (!quota::swap::Enabled() || attributes == nullptr || data == nullptr || numAttributes == 0 ||
      !quota::swap::AddressRange(ptr, nullptr, nullptr))
    return Real().cuPointerGetAttributes(numAttributes, attributes, data, ptr);
  for (unsigned int i = 0; i < numAttributes; ++i) {
    if (data[i] == nullptr) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = CUDA_SUCCESS;
    if (!quota::swap::PointerAttribute(data[i], attributes[i], ptr, &rc))
      rc = Real().cuPointerGetAttribute(data[i], attributes[i], ptr);
    // As the driver does here: an attribute that does not apply reads as null, not an error.
    if (rc != CUDA_SUCCESS && attributes[i] == CU_POINTER_ATTRIBUTE_HOST_POINTER) *static_cast<void**>(data[i]) = nullptr;
  }
  return CUDA_SUCCESS;
}
