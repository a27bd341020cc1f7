// SPDX-License-Identifier: Apache-2.0
// The driver's launch callback and launch descriptors, as gpushare's SM partitions use them on
// the H100 (../shared/docs/gpu-facts.md): cuGetExportTable with the callback table's id gives a
// table whose slot 3 subscribes one callback (a second subscriber gets
// CUDA_ERROR_ALREADY_ACQUIRED) and slot 6 enables domain 0xb id 1. Each launch builds a fresh
// descriptor (version byte at +72, TPC-disable mask in words 76..79, valid bit word 0 bit 31),
// fires the callback with it, and runs the kernel on the SMs the mask leaves enabled. A launch
// whose mask leaves no live TPC fails with CUDA_ERROR_LAUNCH_TIMEOUT, where a GPU would hang.
//
// The SM map: GPUSHARE_FAKE_TPC_BITS lists the live mask bits ("0-7,9"; default: the H100's 66
// live bits of 128); each holds 2 SMs, the k-th live bit SMs k and k + live count (bits are not
// SM ids). GPUSHARE_FAKE_QMD_VERSION sets the version byte (default 0x40);
// GPUSHARE_FAKE_PROFILER=1 takes the callback slot before anyone else (as CUPTI would).
// GPCs: GPUSHARE_FAKE_GPCS lists each GPC's bits, GPCs separated by '/' ("0-7/8-15"); bits it
// leaves out, and all bits without it, are in GPC b / 9 below 72 and GPC 0 above.
// GPUSHARE_FAKE_UNCLUSTERED_BITS (default "75,78,81,83", as measured on the H100; "" for none):
// TPCs that never run blocks of a thread block cluster (their SMs report GPC kUnclustered).
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "tests/fake_driver/fake_cuda_control.h"
#include "tests/fake_driver/state.h"

namespace fakecuda {
namespace {

using Callback = void (*)(void*, uint32_t, uint32_t, const void*);

constexpr unsigned char kCallbackTableId[16] = {0x2c, 0x8e, 0x0a, 0xd8, 0x07, 0x10, 0xab, 0x4e,
                                                0x90, 0xdd, 0x54, 0x71, 0x9f, 0xe5, 0xf7, 0x4b};
constexpr int kAlreadyAcquired = 210;
constexpr uint32_t kValidBit = 1u << 31;

struct LaunchState {
  std::atomic<Callback> callback{nullptr};
  void* userdata = nullptr;
  bool subscribed = false;
  std::atomic<bool> enabled{false};
  uint8_t qmd_version = 0x40;
  bool profiler = false;
  std::vector<unsigned> live_bits;         // ascending
  std::vector<std::vector<unsigned>> sms;  // per live bit (index as live_bits)
  std::vector<unsigned> gpc_of_sm;
  uint64_t launches = 0, masked = 0;
  uint32_t last_disable[4] = {};
  bool last_masked = false;
  unsigned last_sms = 0;
  bool configured = false;
};

LaunchState& ls() {
  static auto* s = new LaunchState;
  return *s;
}

std::mutex& callback_mu() {
  static auto* m = new std::mutex;
  return *m;
}

bool parse_bits(const char* text, std::vector<unsigned>* bits) {
  std::string s = text;
  size_t start = 0;
  bool seen[128] = {};
  while (start < s.size()) {
    size_t comma = s.find(',', start);
    if (comma == std::string::npos) comma = s.size();
    const std::string item = s.substr(start, comma - start);
    unsigned lo = 0, hi = 0;
    char extra = 0;
    if (std::sscanf(item.c_str(), "%u-%u%c", &lo, &hi, &extra) == 2) {
    } else if (std::sscanf(item.c_str(), "%u%c", &lo, &extra) == 1) {
      hi = lo;
    } else {
      return false;
    }
    if (lo > hi || hi >= 128) return false;
    for (unsigned b = lo; b <= hi; ++b) seen[b] = true;
    start = comma + 1;
  }
  for (unsigned b = 0; b < 128; ++b)
    if (seen[b]) bits->push_back(b);
  return !bits->empty();
}

void configure() {
  LaunchState& s = ls();
  if (s.configured) return;
  s.configured = true;
  s.live_bits.clear();
  const char* bits = std::getenv("GPUSHARE_FAKE_TPC_BITS");
  if (bits == nullptr || !parse_bits(bits, &s.live_bits)) {
    if (bits != nullptr) std::fprintf(stderr, "fake libcuda: bad GPUSHARE_FAKE_TPC_BITS '%s'\n", bits);
    s.live_bits.clear();
    // The H100's: dead bits 4-8, 17, 26, 35, 44, 53 inside 0..71; live 75, 78, 81, 83 above.
    parse_bits("0-3,9-16,18-25,27-34,36-43,45-52,54-71,75,78,81,83", &s.live_bits);
  }
  const unsigned n = static_cast<unsigned>(s.live_bits.size());
  s.sms.assign(n, {});
  for (unsigned k = 0; k < n; ++k) s.sms[k] = {k, k + n};
  unsigned gpc_of_bit[128];
  for (unsigned b = 0; b < 128; ++b) gpc_of_bit[b] = b < 72 ? b / 9 : 0;
  if (const char* gpcs = std::getenv("GPUSHARE_FAKE_GPCS"); gpcs != nullptr) {
    std::string text = gpcs;
    unsigned gpc = 0;
    for (size_t start = 0; start <= text.size(); ++gpc) {
      size_t slash = text.find('/', start);
      if (slash == std::string::npos) slash = text.size();
      std::vector<unsigned> bits;
      if (!parse_bits(text.substr(start, slash - start).c_str(), &bits))
        std::fprintf(stderr, "fake libcuda: bad GPUSHARE_FAKE_GPCS '%s'\n", gpcs);
      for (unsigned b : bits) gpc_of_bit[b] = gpc;
      start = slash + 1;
    }
  }
  const char* unclustered = std::getenv("GPUSHARE_FAKE_UNCLUSTERED_BITS");
  std::vector<unsigned> no_clusters;
  if (unclustered == nullptr) {
    no_clusters = {75, 78, 81, 83};
  } else if (*unclustered != '\0' && !parse_bits(unclustered, &no_clusters)) {
    std::fprintf(stderr, "fake libcuda: bad GPUSHARE_FAKE_UNCLUSTERED_BITS '%s'\n", unclustered);
  }
  for (unsigned b : no_clusters) gpc_of_bit[b] = kUnclustered;
  s.gpc_of_sm.assign(2 * n, 0);
  for (unsigned k = 0; k < n; ++k)
    for (unsigned sm : s.sms[k]) s.gpc_of_sm[sm] = gpc_of_bit[s.live_bits[k]];
  const char* version = std::getenv("GPUSHARE_FAKE_QMD_VERSION");
  s.qmd_version = version != nullptr ? static_cast<uint8_t>(std::strtoul(version, nullptr, 0)) : 0x40;
  const char* profiler = std::getenv("GPUSHARE_FAKE_PROFILER");
  s.profiler = profiler != nullptr && std::strcmp(profiler, "1") == 0;
}

int subscribe(void** handle, Callback cb, void* userdata) {
  std::lock_guard<std::mutex> lock(callback_mu());
  configure();
  LaunchState& s = ls();
  if (handle == nullptr || cb == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (s.subscribed || s.profiler) return kAlreadyAcquired;
  s.subscribed = true;
  s.userdata = userdata;
  s.callback.store(cb);
  *handle = reinterpret_cast<void*>(uintptr_t{1});
  return CUDA_SUCCESS;
}

int enable(uint32_t on, void* handle, uint32_t domain, uint32_t cbid) {
  std::lock_guard<std::mutex> lock(callback_mu());
  if (handle != reinterpret_cast<void*>(uintptr_t{1}) || !ls().subscribed) return CUDA_ERROR_INVALID_HANDLE;
  if (domain != 0xb || cbid != 1) return CUDA_ERROR_INVALID_VALUE;
  ls().enabled.store(on != 0);
  return CUDA_SUCCESS;
}

int unused_slot() { return CUDA_ERROR_NOT_SUPPORTED; }

// Slot 0: the table's size (0x60, as measured); 3: subscribe; 6: enable.
void* const kCallbackTable[12] = {
    reinterpret_cast<void*>(uintptr_t{0x60}), reinterpret_cast<void*>(&unused_slot),
    reinterpret_cast<void*>(&unused_slot),    reinterpret_cast<void*>(&subscribe),
    reinterpret_cast<void*>(&unused_slot),    reinterpret_cast<void*>(&unused_slot),
    reinterpret_cast<void*>(&enable),         reinterpret_cast<void*>(&unused_slot),
    reinterpret_cast<void*>(&unused_slot),    reinterpret_cast<void*>(&unused_slot),
    reinterpret_cast<void*>(&unused_slot),    reinterpret_cast<void*>(&unused_slot)};

// The callback's parameters: size word first, descriptor in pointer slot 4 (0x58 bytes).
struct LaunchParams {
  uint32_t size = sizeof(LaunchParams);
  uint32_t pad = 0;
  void* unknown[3] = {};
  void* descriptor = nullptr;
  void* rest[6] = {};
};
static_assert(sizeof(LaunchParams) == 0x58);

}  // namespace

const void* launch_callback_table(const CUuuid* id) {
  return std::memcmp(id->bytes, kCallbackTableId, sizeof kCallbackTableId) == 0 ? kCallbackTable : nullptr;
}

void launch_config_init() {
  std::lock_guard<std::mutex> lock(callback_mu());
  configure();
}

unsigned fake_sm_count() {
  std::lock_guard<std::mutex> lock(callback_mu());
  configure();
  return static_cast<unsigned>(ls().live_bits.size() * 2);
}

LaunchMask fire_launch_callback() {
  uint8_t version = 0;
  void* userdata = nullptr;
  {
    std::lock_guard<std::mutex> lock(callback_mu());
    configure();
    version = ls().qmd_version;
    userdata = ls().userdata;
  }
  LaunchMask m;
  uint32_t words[80] = {};  // the descriptor: 320 bytes
  words[0] = 2u << 23;      // QMD_TYPE: an ordinary grid
  reinterpret_cast<uint8_t*>(words)[72] = version;
  Callback cb = ls().enabled.load() ? ls().callback.load() : nullptr;
  if (cb != nullptr) {
    LaunchParams p;
    p.descriptor = words;
    cb(userdata, 0xb, 1, &p);
  }
  // Hopper applies the mask only with the valid bit, and only in a V04_00 descriptor.
  m.masked = (words[0] & kValidBit) != 0 && version == 0x40;
  if (m.masked) std::memcpy(m.disable, words + 76, sizeof m.disable);
  return m;
}

unsigned fake_gpc_of_sm(unsigned sm) {
  std::lock_guard<std::mutex> lock(callback_mu());
  configure();
  return sm < ls().gpc_of_sm.size() ? ls().gpc_of_sm[sm] : 0;
}

std::vector<unsigned> enabled_sms(const LaunchMask& m) {
  std::lock_guard<std::mutex> lock(callback_mu());
  configure();
  std::vector<unsigned> out;
  const LaunchState& s = ls();
  for (size_t k = 0; k < s.live_bits.size(); ++k) {
    const unsigned b = s.live_bits[k];
    if (m.masked && ((m.disable[b / 32] >> (b % 32)) & 1u)) continue;
    out.insert(out.end(), s.sms[k].begin(), s.sms[k].end());
  }
  return out;
}

void note_launch(const LaunchMask& m, unsigned sms) {
  std::lock_guard<std::mutex> lock(callback_mu());
  LaunchState& s = ls();
  ++s.launches;
  if (m.masked) ++s.masked;
  s.last_masked = m.masked;
  std::memcpy(s.last_disable, m.disable, sizeof s.last_disable);
  s.last_sms = sms;
}

void launch_reset() {
  std::lock_guard<std::mutex> lock(callback_mu());
  LaunchState& s = ls();
  s.launches = s.masked = 0;
  s.last_sms = 0;
  s.last_masked = false;
  s.configured = false;  // the environment is read again (the subscription stays, as in a process)
}

}  // namespace fakecuda

using namespace fakecuda;

FAKE_API uint64_t fakecuda_launches(void) {
  std::lock_guard<std::mutex> lock(callback_mu());
  return ls().launches;
}

FAKE_API uint64_t fakecuda_masked_launches(void) {
  std::lock_guard<std::mutex> lock(callback_mu());
  return ls().masked;
}

FAKE_API int fakecuda_last_launch_mask(uint32_t disable[4]) {
  std::lock_guard<std::mutex> lock(callback_mu());
  std::memcpy(disable, ls().last_disable, sizeof ls().last_disable);
  return ls().last_masked ? 1 : 0;
}

FAKE_API unsigned fakecuda_last_launch_sms(void) {
  std::lock_guard<std::mutex> lock(callback_mu());
  return ls().last_sms;
}

FAKE_API int fakecuda_launch_callback_subscribed(void) {
  std::lock_guard<std::mutex> lock(callback_mu());
  return ls().subscribed && ls().enabled ? 1 : 0;
}
