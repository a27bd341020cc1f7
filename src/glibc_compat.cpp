// SPDX-License-Identifier: Apache-2.0
// Keeps libgpushare.so loadable with glibc 2.35 (Ubuntu 22.04 images): the static libstdc++
// links std::random_device (pulled in by its COW-string instantiations, unused by us), which
// calls arc4random, new in glibc 2.36. This hidden definition satisfies that reference instead
// of libc's; tests/check_library.sh fails if a newer glibc symbol creeps in again.
#include <sys/random.h>

#include <cstdint>
#include <ctime>

extern "C" __attribute__((visibility("hidden"))) uint32_t arc4random(void) {
  uint32_t value = 0;
  if (getrandom(&value, sizeof value, 0) == static_cast<ssize_t>(sizeof value)) return value;
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint32_t>(ts.tv_nsec) ^ static_cast<uint32_t>(ts.tv_sec);
}
