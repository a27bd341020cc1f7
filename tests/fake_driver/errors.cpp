// SPDX-License-Identifier: Apache-2.0
// cuGetErrorName / cuGetErrorString: usable before cuInit, as in the real driver.
#include "tests/fake_driver/state.h"

namespace {

struct ErrorText {
  CUresult code;
  const char* name;
  const char* text;
};

#define FAKE_ERR(code, text) {code, #code, text}
constexpr ErrorText kErrors[] = {
    FAKE_ERR(CUDA_SUCCESS, "no error"),
    FAKE_ERR(CUDA_ERROR_INVALID_VALUE, "invalid argument"),
    FAKE_ERR(CUDA_ERROR_OUT_OF_MEMORY, "out of memory"),
    FAKE_ERR(CUDA_ERROR_NOT_INITIALIZED, "initialization error"),
    FAKE_ERR(CUDA_ERROR_DEINITIALIZED, "driver shutting down"),
    FAKE_ERR(CUDA_ERROR_NO_DEVICE, "no CUDA-capable device is detected"),
    FAKE_ERR(CUDA_ERROR_INVALID_DEVICE, "invalid device ordinal"),
    FAKE_ERR(CUDA_ERROR_INVALID_IMAGE, "device kernel image is invalid"),
    FAKE_ERR(CUDA_ERROR_INVALID_CONTEXT, "invalid device context"),
    FAKE_ERR(CUDA_ERROR_CONTEXT_ALREADY_CURRENT, "context already current"),
    FAKE_ERR(CUDA_ERROR_INVALID_HANDLE, "invalid resource handle"),
    FAKE_ERR(CUDA_ERROR_NOT_FOUND, "named symbol not found"),
    FAKE_ERR(CUDA_ERROR_NOT_READY, "device not ready"),
    FAKE_ERR(CUDA_ERROR_LAUNCH_FAILED, "unspecified launch failure"),
    FAKE_ERR(CUDA_ERROR_CONTEXT_IS_DESTROYED, "context is destroyed"),
    FAKE_ERR(CUDA_ERROR_NOT_SUPPORTED, "operation not supported"),
    FAKE_ERR(CUDA_ERROR_NOT_PERMITTED, "operation not permitted"),
    FAKE_ERR(CUDA_ERROR_OPERATING_SYSTEM, "OS call failed or operation not supported on this OS"),
    FAKE_ERR(CUDA_ERROR_ILLEGAL_ADDRESS, "an illegal memory access was encountered"),
    FAKE_ERR(CUDA_ERROR_ALREADY_MAPPED, "resource already mapped"),
    FAKE_ERR(CUDA_ERROR_NOT_MAPPED, "resource not mapped"),
    FAKE_ERR(CUDA_ERROR_STUB_LIBRARY, "CUDA driver is a stub library"),
    FAKE_ERR(CUDA_ERROR_ALREADY_ACQUIRED, "resource already acquired"),
    FAKE_ERR(CUDA_ERROR_ILLEGAL_STATE, "the operation cannot be performed in the present state"),
    FAKE_ERR(CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES, "too many resources requested for launch"),
    FAKE_ERR(CUDA_ERROR_LAUNCH_TIMEOUT, "the launch timed out and was terminated"),
    FAKE_ERR(CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE, "too many blocks in cooperative launch"),
    FAKE_ERR(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "operation not permitted when stream is capturing"),
    FAKE_ERR(CUDA_ERROR_STREAM_CAPTURE_INVALIDATED, "operation failed due to a previous error during capture"),
    FAKE_ERR(CUDA_ERROR_STREAM_CAPTURE_UNJOINED,
             "capture sequence contains a fork that was not joined to the primary stream"),
    FAKE_ERR(CUDA_ERROR_INVALID_CLUSTER_SIZE, "invalid cluster size"),
    FAKE_ERR(CUDA_ERROR_UNKNOWN, "unknown error"),
};
#undef FAKE_ERR

const ErrorText* lookup(CUresult code) {
  for (const ErrorText& e : kErrors) {
    if (e.code == code) return &e;
  }
  return nullptr;
}

}  // namespace

FAKE_API CUresult cuGetErrorName(CUresult error, const char** pstr) {
  if (pstr == nullptr) return CUDA_ERROR_INVALID_VALUE;
  const ErrorText* e = lookup(error);
  *pstr = e != nullptr ? e->name : nullptr;
  return e != nullptr ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

FAKE_API CUresult cuGetErrorString(CUresult error, const char** pstr) {
  if (pstr == nullptr) return CUDA_ERROR_INVALID_VALUE;
  const ErrorText* e = lookup(error);
  *pstr = e != nullptr ? e->text : nullptr;
  return e != nullptr ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}
