// SPDX-License-Identifier: Apache-2.0
// cuInit (reads the GPUSHARE_FAKE_* environment), versions and device queries.
#include "tests/fake_driver/state.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace fakecuda {

Driver& drv() {
  static Driver* d = new Driver;  // never destroyed: other libraries' destructors may call us
  return *d;
}

bool valid_device(CUdevice dev) {
  return dev >= 0 && static_cast<size_t>(dev) < drv().devices.size();
}

namespace {

// "16Gi", "512Mi", "4096", "1Ki"; false on anything else.
bool parse_bytes(const std::string& s, uint64_t* out) {
  if (s.empty() || s[0] < '0' || s[0] > '9') return false;
  char* end = nullptr;
  unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  std::string suffix(end);
  uint64_t mult = 1;
  if (suffix == "Ki") mult = 1ull << 10;
  else if (suffix == "Mi") mult = 1ull << 20;
  else if (suffix == "Gi") mult = 1ull << 30;
  else if (suffix == "Ti") mult = 1ull << 40;
  else if (!suffix.empty()) return false;
  *out = v * mult;
  return true;
}

bool parse_device_list(const char* env, std::vector<uint64_t>* totals) {
  std::string s = env;
  size_t start = 0;
  while (start <= s.size()) {
    size_t comma = s.find(',', start);
    if (comma == std::string::npos) comma = s.size();
    uint64_t v = 0;
    if (!parse_bytes(s.substr(start, comma - start), &v) || v == 0) return false;
    totals->push_back(v);
    start = comma + 1;
  }
  return !totals->empty();
}

uint64_t fnv1a(const char* s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; ++s) h = (h ^ static_cast<unsigned char>(*s)) * 1099511628211ull;
  return h;
}

CUuuid make_uuid(int index, const char* salt) {
  CUuuid u{};
  const unsigned char magic[4] = {0x67, 0x73, 0x66, 0x6b};  // "gsfk"
  std::memcpy(u.bytes, magic, 4);
  if (salt != nullptr) {
    uint64_t h = fnv1a(salt);
    std::memcpy(u.bytes + 4, &h, 8);
  }
  u.bytes[15] = static_cast<char>(index);
  return u;
}

CUresult initialize() {
  Driver& d = drv();
  const char* no_dev = std::getenv("GPUSHARE_FAKE_NO_DEVICE");
  if (no_dev != nullptr && std::strcmp(no_dev, "1") == 0) return CUDA_ERROR_NO_DEVICE;

  std::vector<uint64_t> totals;
  const char* list = std::getenv("GPUSHARE_FAKE_DEVICES");
  if (list == nullptr) {
    totals.push_back(16ull << 30);
  } else if (!parse_device_list(list, &totals)) {
    std::fprintf(stderr, "fake libcuda: bad GPUSHARE_FAKE_DEVICES '%s'\n", list);
    return CUDA_ERROR_INVALID_VALUE;
  }
  uint64_t overhead = 0;
  const char* ov = std::getenv("GPUSHARE_FAKE_CTX_OVERHEAD");
  if (ov != nullptr && !parse_bytes(ov, &overhead)) {
    std::fprintf(stderr, "fake libcuda: bad GPUSHARE_FAKE_CTX_OVERHEAD '%s'\n", ov);
    return CUDA_ERROR_INVALID_VALUE;
  }
  unsigned create_ms = 0;
  if (const char* ms = std::getenv("GPUSHARE_FAKE_CTX_CREATE_MS"); ms != nullptr) {
    char* end = nullptr;
    const unsigned long v = std::strtoul(ms, &end, 10);
    if (*ms == '\0' || *end != '\0' || v > 60000) {
      std::fprintf(stderr, "fake libcuda: bad GPUSHARE_FAKE_CTX_CREATE_MS '%s'\n", ms);
      return CUDA_ERROR_INVALID_VALUE;
    }
    create_ms = static_cast<unsigned>(v);
  }
  FAKE_TRY(phys_init(totals, std::getenv("GPUSHARE_FAKE_STATE_DIR")));

  const char* salt = std::getenv("GPUSHARE_FAKE_UUID_SALT");
  d.ctx_overhead = overhead;
  d.ctx_create_ms = create_ms;
  d.devices.clear();
  for (size_t i = 0; i < totals.size(); ++i) {
    Device dev;
    dev.total = totals[i];
    dev.uuid = make_uuid(static_cast<int>(i), salt);
    auto primary = std::make_unique<Context>();
    primary->device = static_cast<int>(i);
    primary->primary = true;
    dev.primary = primary.get();
    d.contexts.push_back(std::move(primary));
    d.devices.push_back(dev);
  }
  pools_init();
  launch_config_init();
  d.initialized = true;
  return CUDA_SUCCESS;
}

}  // namespace
}  // namespace fakecuda

using namespace fakecuda;

FAKE_API CUresult cuInit(unsigned int flags) {
  if (flags != 0) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::recursive_mutex> lock(drv().mu);
  if (drv().initialized) return CUDA_SUCCESS;
  return initialize();
}

FAKE_API CUresult cuDriverGetVersion(int* version) {
  if (version == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *version = kDriverVersion;
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuDeviceGetCount(int* count) {
  FAKE_ENTER();
  if (count == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *count = static_cast<int>(drv().devices.size());
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuDeviceGet(CUdevice* device, int ordinal) {
  FAKE_ENTER();
  if (device == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (!valid_device(ordinal)) return CUDA_ERROR_INVALID_DEVICE;
  *device = ordinal;
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuDeviceGetName(char* name, int len, CUdevice dev) {
  FAKE_ENTER();
  if (name == nullptr || len <= 0) return CUDA_ERROR_INVALID_VALUE;
  if (!valid_device(dev)) return CUDA_ERROR_INVALID_DEVICE;
  std::snprintf(name, static_cast<size_t>(len), "%s", "gpushare fake GPU");
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuDeviceGetUuid_v2(CUuuid* uuid, CUdevice dev) {
  FAKE_ENTER();
  if (uuid == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (!valid_device(dev)) return CUDA_ERROR_INVALID_DEVICE;
  *uuid = drv().devices[dev].uuid;
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuDeviceGetUuid(CUuuid* uuid, CUdevice dev) { return cuDeviceGetUuid_v2(uuid, dev); }

FAKE_API CUresult cuDeviceTotalMem_v2(size_t* bytes, CUdevice dev) {
  FAKE_ENTER();
  if (bytes == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (!valid_device(dev)) return CUDA_ERROR_INVALID_DEVICE;
  *bytes = drv().devices[dev].total;
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuDeviceGetAttribute(int* value, CUdevice_attribute attrib, CUdevice dev) {
  FAKE_ENTER();
  if (value == nullptr || attrib <= 0 || attrib >= CU_DEVICE_ATTRIBUTE_MAX) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  if (!valid_device(dev)) return CUDA_ERROR_INVALID_DEVICE;
  switch (attrib) {
    case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT: *value = static_cast<int>(fake_sm_count()); break;
    case CU_DEVICE_ATTRIBUTE_COOPERATIVE_LAUNCH: *value = 1; break;
    case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK: *value = 1024; break;
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: *value = 9; break;
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: *value = 0; break;
    case CU_DEVICE_ATTRIBUTE_WARP_SIZE: *value = 32; break;
    case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK: *value = 48 * 1024; break;
    case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN: *value = 227 * 1024; break;
    case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR: *value = 228 * 1024; break;
    case CU_DEVICE_ATTRIBUTE_CLUSTER_LAUNCH:
    case CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED:
    case CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED:
    case CU_DEVICE_ATTRIBUTE_CONCURRENT_MANAGED_ACCESS:
    case CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING:
    case CU_DEVICE_ATTRIBUTE_MANAGED_MEMORY: *value = 1; break;
    case CU_DEVICE_ATTRIBUTE_MAX_BLOCKS_PER_MULTIPROCESSOR: *value = 32; break;
    // GPUSHARE_FAKE_MPS=1: contexts are MPS clients' (the MPS daemon runs).
    case CU_DEVICE_ATTRIBUTE_MPS_ENABLED: *value = std::getenv("GPUSHARE_FAKE_MPS") != nullptr ? 1 : 0; break;
    default: *value = 0; break;
  }
  return CUDA_SUCCESS;
}
