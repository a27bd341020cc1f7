// SPDX-License-Identifier: Apache-2.0
// A second interposer for tests/gpu/dlsym.sh, as a profiler or another shim would be: it wraps
// pthread_create and cuMemAlloc_v2 and forwards each through dlsym(RTLD_NEXT). Handed its own
// function back (dlsym answered relative to another object), it says so and aborts rather than
// recursing. At exit it prints what dlsym(RTLD_NEXT) answered it and how often it forwarded.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

typedef int (*CreateFn)(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*);
typedef int (*AllocFn)(unsigned long long*, size_t);

static atomic_long g_creates, g_allocs;
static void* g_next_alloc_at_load;

static const char* ObjectOf(void* p) {
  Dl_info info;
  return p != NULL && dladdr(p, &info) != 0 && info.dli_fname != NULL ? info.dli_fname : "(none)";
}

__attribute__((visibility("hidden"))) int shim_pthread_create(pthread_t* t, const pthread_attr_t* a,
                                                              void* (*fn)(void*), void* arg) {
  CreateFn next = (CreateFn)dlsym(RTLD_NEXT, "pthread_create");
  if (next == NULL || next == &shim_pthread_create) {
    fprintf(stderr, "SHIM FAIL pthread_create: dlsym(RTLD_NEXT) answered %s\n", next ? "the shim itself" : "NULL");
    abort();
  }
  atomic_fetch_add(&g_creates, 1);
  return next(t, a, fn, arg);
}

__attribute__((visibility("hidden"))) int shim_cuMemAlloc_v2(unsigned long long* dptr, size_t bytes) {
  AllocFn next = (AllocFn)dlsym(RTLD_NEXT, "cuMemAlloc_v2");
  if (next == NULL || next == &shim_cuMemAlloc_v2) {
    fprintf(stderr, "SHIM FAIL cuMemAlloc_v2: dlsym(RTLD_NEXT) answered %s\n", next ? "the shim itself" : "NULL");
    abort();
  }
  atomic_fetch_add(&g_allocs, 1);
  return next(dptr, bytes);
}

int pthread_create(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*)
    __attribute__((alias("shim_pthread_create")));
int cuMemAlloc_v2(unsigned long long*, size_t) __attribute__((alias("shim_cuMemAlloc_v2")));

__attribute__((constructor)) static void shim_load(void) { g_next_alloc_at_load = dlsym(RTLD_NEXT, "cuMemAlloc_v2"); }

__attribute__((destructor)) static void shim_report(void) {
  fprintf(stderr, "SHIM next cuMemAlloc_v2 at load: %s\n", ObjectOf(g_next_alloc_at_load));
  fprintf(stderr, "SHIM next cuMemAlloc_v2 now: %s\n", ObjectOf(dlsym(RTLD_NEXT, "cuMemAlloc_v2")));
  fprintf(stderr, "SHIM forwarded pthread_create=%ld cuMemAlloc_v2=%ld\n", atomic_load(&g_creates),
          atomic_load(&g_allocs));
}
