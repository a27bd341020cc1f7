// SPDX-License-Identifier: Apache-2.0
// The real NVML for the NVML hooks: every function of hooks/nvml_table.inc and src/nvml_calls.inc,
// resolved once from dlopen("libnvidia-ml.so.1") with a handle-scoped dlsym, which never sees
// our own exported wrappers. (src/nvml.cpp, gpushare's own NVML use, resolves its functions the
// same way.)
#pragma once
#include "src/nvml_api.h"

namespace gpushare {

struct RealNvml {
#define GS_NVML_HOOK(symbol, pfn) pfn symbol;
#include "hooks/nvml_table.inc"
#undef GS_NVML_HOOK
#define GS_NVML_CALL(symbol, pfn) pfn symbol;
#include "src/nvml_calls.inc"
#undef GS_NVML_CALL
};

// nullptr when libnvidia-ml.so.1 cannot be loaded; a member is nullptr when this NVML lacks it.
const RealNvml* RealNvmlApi();

}  // namespace gpushare
