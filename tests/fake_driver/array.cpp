// SPDX-License-Identifier: Apache-2.0
// CUDA arrays and mipmapped arrays: no host-visible storage, only their physical footprint.
// Size model: rows of width*channels*element bytes padded to 512, times max(height,1) and
// max(depth,1); mipmaps sum their levels (each halving every dimension); the total is rounded
// up to 2 MiB.
#include "tests/fake_driver/state.h"

#include <algorithm>

namespace fakecuda {
namespace {

constexpr size_t kRowAlign = 512;

struct Array {
  Context* ctx = nullptr;
  uint64_t bytes = 0;
  bool mipmapped = false;
};

std::map<const void*, std::unique_ptr<Array>>& arrays() {
  static auto* m = new std::map<const void*, std::unique_ptr<Array>>;
  return *m;
}

size_t format_bytes(CUarray_format f) {
  switch (f) {
    case CU_AD_FORMAT_UNSIGNED_INT8:
    case CU_AD_FORMAT_SIGNED_INT8: return 1;
    case CU_AD_FORMAT_UNSIGNED_INT16:
    case CU_AD_FORMAT_SIGNED_INT16:
    case CU_AD_FORMAT_HALF: return 2;
    case CU_AD_FORMAT_UNSIGNED_INT32:
    case CU_AD_FORMAT_SIGNED_INT32:
    case CU_AD_FORMAT_FLOAT: return 4;
    default: return 0;
  }
}

uint64_t level_bytes(size_t elem, size_t w, size_t h, size_t d) {
  return round_up(w * elem, kRowAlign) * std::max<size_t>(h, 1) * std::max<size_t>(d, 1);
}

// Footprint in bytes, or 0 when the descriptor is invalid.
uint64_t footprint(const CUDA_ARRAY3D_DESCRIPTOR& d, unsigned levels) {
  const size_t fb = format_bytes(d.Format);
  if (d.Width == 0 || fb == 0 || (d.NumChannels != 1 && d.NumChannels != 2 && d.NumChannels != 4)) {
    return 0;
  }
  if (d.Width > kMaxRequest / 16 || d.Height > kMaxRequest / 16 || d.Depth > kMaxRequest / 16) {
    return 0;
  }
  const size_t elem = fb * d.NumChannels;
  size_t w = d.Width, h = d.Height, dep = d.Depth;
  uint64_t total = 0;
  for (unsigned l = 0; l < levels; ++l) {
    total += level_bytes(elem, w, h, dep);
    w = std::max<size_t>(w / 2, 1);
    h = h == 0 ? 0 : std::max<size_t>(h / 2, 1);
    dep = dep == 0 ? 0 : std::max<size_t>(dep / 2, 1);
  }
  return round_up(total, kGranularity);
}

unsigned max_levels(const CUDA_ARRAY3D_DESCRIPTOR& d) {
  size_t m = std::max({d.Width, d.Height, d.Depth});
  unsigned n = 0;
  for (; m > 0; m >>= 1) ++n;
  return n;
}

CUresult create(const CUDA_ARRAY3D_DESCRIPTOR& desc, unsigned levels, bool mipmapped,
                const void** handle) {
  Context* c = nullptr;
  FAKE_TRY(current_context(&c));
  const uint64_t bytes = footprint(desc, levels);
  if (bytes == 0) return CUDA_ERROR_INVALID_VALUE;
  if (!phys_charge(c->device, bytes)) return CUDA_ERROR_OUT_OF_MEMORY;
  auto a = std::make_unique<Array>();
  a->ctx = c;
  a->bytes = bytes;
  a->mipmapped = mipmapped;
  *handle = a.get();
  arrays().emplace(a.get(), std::move(a));
  return CUDA_SUCCESS;
}

Array* find(const void* handle, bool mipmapped) {
  auto it = arrays().find(handle);
  if (it == arrays().end() || it->second->mipmapped != mipmapped) return nullptr;
  return it->second.get();
}

void destroy(const void* handle) {
  auto it = arrays().find(handle);
  phys_release(it->second->ctx->device, it->second->bytes);
  arrays().erase(it);
}

CUresult destroy_checked(const void* handle, bool mipmapped) {
  if (find(handle, mipmapped) == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  destroy(handle);
  return CUDA_SUCCESS;
}

CUresult requirements(CUDA_ARRAY_MEMORY_REQUIREMENTS* req, const void* handle, bool mipmapped,
                      CUdevice dev) {
  if (req == nullptr) return CUDA_ERROR_INVALID_VALUE;
  const Array* a = find(handle, mipmapped);
  if (a == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  if (!valid_device(dev)) return CUDA_ERROR_INVALID_DEVICE;
  *req = CUDA_ARRAY_MEMORY_REQUIREMENTS{};
  req->size = a->bytes;
  req->alignment = kRowAlign;
  return CUDA_SUCCESS;
}

}  // namespace

void array_release_context(Context* ctx) {
  std::vector<const void*> doomed;
  for (const auto& [h, a] : arrays()) {
    if (a->ctx == ctx) doomed.push_back(h);
  }
  for (const void* h : doomed) destroy(h);
}

void array_reset() {
  while (!arrays().empty()) destroy(arrays().begin()->first);
}

int array_live_count() { return static_cast<int>(arrays().size()); }

}  // namespace fakecuda

using namespace fakecuda;

FAKE_API CUresult cuArrayCreate_v2(CUarray* handle, const CUDA_ARRAY_DESCRIPTOR* desc) {
  FAKE_ENTER();
  if (handle == nullptr || desc == nullptr) return CUDA_ERROR_INVALID_VALUE;
  CUDA_ARRAY3D_DESCRIPTOR d3{};
  d3.Width = desc->Width;
  d3.Height = desc->Height;
  d3.Format = desc->Format;
  d3.NumChannels = desc->NumChannels;
  const void* h = nullptr;
  FAKE_TRY(create(d3, 1, false, &h));
  *handle = reinterpret_cast<CUarray>(const_cast<void*>(h));
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuArray3DCreate_v2(CUarray* handle, const CUDA_ARRAY3D_DESCRIPTOR* desc) {
  FAKE_ENTER();
  if (handle == nullptr || desc == nullptr) return CUDA_ERROR_INVALID_VALUE;
  const void* h = nullptr;
  FAKE_TRY(create(*desc, 1, false, &h));
  *handle = reinterpret_cast<CUarray>(const_cast<void*>(h));
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuArrayDestroy(CUarray handle) {
  FAKE_ENTER();
  return destroy_checked(handle, false);
}

FAKE_API CUresult cuMipmappedArrayCreate(CUmipmappedArray* handle,
                                         const CUDA_ARRAY3D_DESCRIPTOR* desc,
                                         unsigned int levels) {
  FAKE_ENTER();
  if (handle == nullptr || desc == nullptr || levels == 0 || levels > max_levels(*desc)) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  const void* h = nullptr;
  FAKE_TRY(create(*desc, levels, true, &h));
  *handle = reinterpret_cast<CUmipmappedArray>(const_cast<void*>(h));
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuMipmappedArrayDestroy(CUmipmappedArray handle) {
  FAKE_ENTER();
  return destroy_checked(handle, true);
}

FAKE_API CUresult cuArrayGetMemoryRequirements(CUDA_ARRAY_MEMORY_REQUIREMENTS* req,
                                               CUarray array, CUdevice dev) {
  FAKE_ENTER();
  return requirements(req, array, false, dev);
}

FAKE_API CUresult cuMipmappedArrayGetMemoryRequirements(CUDA_ARRAY_MEMORY_REQUIREMENTS* req,
                                                        CUmipmappedArray mipmap, CUdevice dev) {
  FAKE_ENTER();
  return requirements(req, mipmap, true, dev);
}
