// SPDX-License-Identifier: Apache-2.0
#include "compute/compute.h"

#include <array>
#include <memory>

#include "compute/event_tracker.h"
#include "src/options.h"
#include "src/real_driver.h"

namespace gpushare::compute {
namespace detail {
std::atomic<bool> g_enabled{false};
}  // namespace detail

namespace {

struct Registry {
  std::array<std::atomic<Gate*>, kMaxDevices> gates{};
  std::atomic<Gate*> only{nullptr};  // set while exactly one device has a gate
  int count = 0;
};

Registry& TheRegistry() {
  static Registry* registry = new Registry;  // leaked: launches may come from exit handlers
  return *registry;
}

}  // namespace

Gate* detail::GateForCurrentContext() {
  Registry& reg = TheRegistry();
  if (Gate* only = reg.only.load(std::memory_order_acquire)) return only;
  CUdevice dev = 0;
  if (Real().cuCtxGetDevice(&dev) != CUDA_SUCCESS || dev < 0 || dev >= kMaxDevices) return nullptr;
  return reg.gates[static_cast<size_t>(dev)].load(std::memory_order_acquire);
}

void AttachDevice(int ordinal, quota::LedgerSession& session, const GateConfig& config) {
  if (ordinal < 0 || ordinal >= kMaxDevices || session.tenant()->compute_share_bp == 0) return;
  Registry& reg = TheRegistry();
  // Leaked with the registry: the keeper runs for the life of the process.
  auto* gate = new Gate(std::make_unique<Turn>(&session, config.turn), MakeEventTracker(), config);
  gate->StartKeeper();
  reg.gates[static_cast<size_t>(ordinal)].store(gate, std::memory_order_release);
  reg.count += 1;
  reg.only.store(reg.count == 1 ? gate : nullptr, std::memory_order_release);
  detail::g_enabled.store(true, std::memory_order_release);
}

void ForgetContext(CUcontext ctx) {
  if (!detail::g_enabled.load(std::memory_order_acquire) || ctx == nullptr) return;
  for (const auto& slot : TheRegistry().gates)
    if (Gate* gate = slot.load(std::memory_order_acquire)) gate->ContextGone(ctx);
}

}  // namespace gpushare::compute
