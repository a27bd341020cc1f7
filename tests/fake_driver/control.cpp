// SPDX-License-Identifier: Apache-2.0
// The fakecuda_* test-control API (fake_cuda_control.h).
#include "tests/fake_driver/fake_cuda_control.h"

#include "tests/fake_driver/state.h"

using namespace fakecuda;

namespace {

std::lock_guard<std::recursive_mutex> lock_driver() {
  return std::lock_guard<std::recursive_mutex>(drv().mu);
}

bool known_device(int device) { return drv().initialized && valid_device(device); }

}  // namespace

FAKE_API uint64_t fakecuda_physical_used(int device) {
  auto lock = lock_driver();
  return known_device(device) ? phys_used_all(device) : 0;
}

FAKE_API uint64_t fakecuda_process_used(int device) {
  auto lock = lock_driver();
  return known_device(device) ? phys_used_process(device) : 0;
}

FAKE_API int fakecuda_live_allocations(void) {
  auto lock = lock_driver();
  if (!drv().initialized) return 0;
  return memory_live_count() + vmm_live_count() + array_live_count();
}

FAKE_API int fakecuda_live_contexts(void) {
  auto lock = lock_driver();
  int n = 0;
  for (const auto& c : drv().contexts) n += c->alive;
  return n;
}

FAKE_API int fakecuda_live_events(void) {
  auto lock = lock_driver();
  return drv().initialized ? stream_live_event_count() : 0;
}

FAKE_API uint64_t fakecuda_bad_event_calls(void) {
  auto lock = lock_driver();
  return stream_bad_event_calls();
}

FAKE_API uint64_t fakecuda_graph_reserved(int device) {
  auto lock = lock_driver();
  return known_device(device) ? graph_mem(device, true) : 0;
}

FAKE_API void fakecuda_reset(void) {
  auto lock = lock_driver();
  if (!drv().initialized) return;
  contexts_reset();  // frees every context's allocations, arrays, pool blocks, graph execs
  graph_reset();
  pools_reset();
  vmm_reset();
  array_reset();
  memory_reset();
  host_reset();
  module_reset();
  stream_reset();
  launch_reset();
  phys_shutdown();
  drv().devices.clear();
  drv().initialized = false;
}
