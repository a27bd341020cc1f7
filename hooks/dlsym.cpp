// SPDX-License-Identifier: Apache-2.0
// Our exported dlsym. Programs look the driver's entry points up on libcuda's (and NVML's) handle,
// which never sees an LD_PRELOADed definition (PyTorch, Triton and cudart do), so those look-ups
// are answered with our wrappers. Every other look-up is glibc's, answered as if we were absent.
//
// glibc answers RTLD_NEXT and RTLD_DEFAULT relative to the object that called dlsym, which it
// tells from dlsym's return address. Called from here, it would see us: a library that forwards
// to the next definition (a second interposer, libomp's ompt_start_tool) would get its own back
// and recurse, and a dlopened plugin would not see its local scope. So the entry point, below, is
// a few instructions that ask DlsymRoute and then either return its answer or *jump* into glibc's
// dlsym, the caller's return address still in place.
//
// The driver's entry points (hooks/hook_table.inc, hooks/nvml_table.inc) are answered here: the
// look-up glibc would make, then the driver's own function swapped for our wrapper; another
// object's definition of the name (an interposer's) is left as it is. A handle's look-up does
// not depend on the caller, and RTLD_DEFAULT's is the global scope's, where our exports are;
// RTLD_NEXT searches the objects after the caller's (hooks/caller_scope.h).
#include <dlfcn.h>

#include <cstring>

#include "hooks/caller_scope.h"
#include "hooks/proc_address.h"
#include "src/real_driver.h"

namespace gpushare {
namespace {

const char* DriverOf(const char* symbol) {
  return std::strncmp(symbol, "nvml", 4) == 0 ? "libnvidia-ml.so.1" : "libcuda.so.1";
}

// The driver's own definition of one of its entry points, if the driver is loaded.
void* DriversOwn(const char* symbol) {
  void* driver = dlopen(DriverOf(symbol), RTLD_NOLOAD | RTLD_LAZY);
  if (driver == nullptr) return nullptr;
  void* own = RealDlsym()(driver, symbol);
  dlclose(driver);
  return own;
}

// glibc leaves no error after a look-up that succeeds, and one naming the symbol after one that
// fails; the look-ups made on the way must not show. A failed look-up on libc's handle (libc
// defines no driver entry point) leaves that error. libc is never unloaded: its handle is kept.
void* Answer(void* found, const char* symbol) {
  static void* const libc = dlopen("libc.so.6", RTLD_NOLOAD | RTLD_LAZY);
  dlerror();
  if (found == nullptr && libc != nullptr) RealDlsym()(libc, symbol);
  return found;
}

void* Wrapped(void* found, const char* symbol, void* wrapper) {
  if (found != nullptr && found != wrapper && found == DriversOwn(symbol)) found = wrapper;
  return Answer(found, symbol);
}

}  // namespace
}  // namespace gpushare

// Returns 1 with *result the answer, or 0 with *result glibc's dlsym, to be entered by a jump.
extern "C" __attribute__((visibility("hidden"))) int gs_dlsym_route(void* handle, const char* symbol,
                                                                     const void* caller, void** result) noexcept {
  using namespace gpushare;
  const DlsymFn glibc = RealDlsym();
  void* wrapper = symbol != nullptr ? WrapperOfExport(symbol) : nullptr;
  if (glibc == nullptr) {
    *result = nullptr;
    return 1;
  }
  if (wrapper == nullptr) {
    *result = reinterpret_cast<void*>(glibc);
    return 0;
  }
  if (handle != RTLD_NEXT) {
    *result = Wrapped(glibc(handle, symbol), symbol, wrapper);
    return 1;
  }
  const NextDefinition next = FindNextDefinition(caller, symbol);
  if (!next.in_our_namespace) {
    *result = reinterpret_cast<void*>(glibc);  // the driver there is that namespace's own
    return 0;
  }
  // Nothing after the caller defines it, but glibc also searches a dlopened caller's own
  // dependencies, which may have been loaded before it (a plugin that needs libcuda): the loaded
  // driver's entry point stands for them (where glibc, for a plugin without libcuda, says NULL).
  *result = Wrapped(next.address != nullptr ? next.address : DriversOwn(symbol), symbol, wrapper);
  return 1;
}

// dlsym(handle, symbol): the caller's return address is at 0(%rsp) / in x30 on entry. The stack
// holds the arguments across the call and a slot for the result, 16-byte aligned at the call.
#if defined(__x86_64__)
asm(R"(
  .pushsection .text
  .globl dlsym
  .type dlsym, @function
  .p2align 4
dlsym:
  .cfi_startproc
  endbr64
  pushq %rdi
  .cfi_adjust_cfa_offset 8
  pushq %rsi
  .cfi_adjust_cfa_offset 8
  subq $24, %rsp
  .cfi_adjust_cfa_offset 24
  movq 40(%rsp), %rdx
  movq %rsp, %rcx
  call gs_dlsym_route
  movq (%rsp), %r11
  addq $24, %rsp
  .cfi_adjust_cfa_offset -24
  popq %rsi
  .cfi_adjust_cfa_offset -8
  popq %rdi
  .cfi_adjust_cfa_offset -8
  testl %eax, %eax
  jz 1f
  movq %r11, %rax
  ret
1:
  jmp *%r11
  .cfi_endproc
  .size dlsym, .-dlsym
  .popsection
)");
#elif defined(__aarch64__)
asm(R"(
  .pushsection .text
  .globl dlsym
  .type dlsym, %function
  .p2align 4
dlsym:
  .cfi_startproc
  hint #34
  stp x29, x30, [sp, #-48]!
  .cfi_def_cfa_offset 48
  .cfi_offset 29, -48
  .cfi_offset 30, -40
  mov x29, sp
  stp x0, x1, [sp, #16]
  mov x2, x30
  add x3, sp, #32
  bl gs_dlsym_route
  mov w17, w0
  ldr x16, [sp, #32]
  ldp x0, x1, [sp, #16]
  ldp x29, x30, [sp], #48
  .cfi_def_cfa_offset 0
  .cfi_restore 29
  .cfi_restore 30
  cbz w17, 1f
  mov x0, x16
  ret
1:
  br x16
  .cfi_endproc
  .size dlsym, .-dlsym
  .popsection
)");
#else
#error "hooks/dlsym.cpp: dlsym's entry is written for x86_64 and aarch64 only"
#endif
