// SPDX-License-Identifier: Apache-2.0
// The one way library code includes the driver API. __CUDA_API_VERSION_INTERNAL makes cuda.h
// declare every exported variant by its real symbol name (cuMemAlloc_v2, cuLaunchKernel_ptsz,
// legacy cuLaunchKernel), so our wrappers are type-checked against NVIDIA's declarations.
#pragma once
#ifndef __CUDA_API_VERSION_INTERNAL
#define __CUDA_API_VERSION_INTERNAL 1
#endif
#include <cuda.h>
#include <cudaTypedefs.h>
