// SPDX-License-Identifier: Apache-2.0
// Shared by every hooks/*.cpp: the export attribute and the wrappers' declarations (cuda.h
// declares them by their exported names; see src/cuda_api.h).
#pragma once
#include "src/cuda_api.h"
#include "src/real_driver.h"
#include "src/runtime.h"

#define GS_EXPORT extern "C" __attribute__((visibility("default")))

namespace gpushare {
enum StreamFlavour { kAnyStream, kLegacy, kPerThread };
}
