// SPDX-License-Identifier: Apache-2.0
// HAMi-core's own grammars for the variables HAMi injects (Project-HAMi/HAMi-core), so that a pod
// HAMi placed means under gpushare what it means under libvgpu.so:
// - CUDA_DEVICE_MEMORY_LIMIT[_<i>]: get_limit_from_env, src/multiprocess/multiprocess_memory_limit.c,
//   whose accepted and refused spellings are pinned by test/test_env_limit_parsing.c and
//   test/test_limit_env_parsing.c;
// - CUDA_DEVICE_SM_LIMIT[_<i>]: the same function; do_init_device_sm_limits and rate_limiter
//   (src/multiprocess/multiprocess_utilization_watcher.c) give 0 and 100 or more "no limit";
// - GPU_CORE_UTILIZATION_POLICY: set_env_utilization_switch and get_utilization_switch;
// - CUDA_TASK_PRIORITY: atoi in try_create_shrreg.
// Where HAMi-core reads a refused value as "no limit" (it returns 0), gpushare refuses it instead,
// naming the variable: a typo never removes a limit.
#pragma once
#include <cstdint>
#include <optional>
#include <string_view>

namespace gpushare {

// Bytes: a base-10 number, a fraction only with a unit ("1.5g"; the result rounds down to a byte),
// then an optional unit K, M or G, binary, with an optional "i" and an optional "B", in either case
// ("4g", "4Gi", "4GiB", "4gb", "50KiB"); blanks around the value and between number and unit.
// 0 (however written) is HAMi-core's "no limit". nullopt for anything else: "-1", "0x10G", "4GQ",
// "4T", "50%", "4.5" (a fraction of a byte), "", or more than 2^64-1 bytes.
std::optional<uint64_t> ParseHamiBytes(std::string_view text);

// A whole percent: the same number, blanks, then an optional "%" ("50", "50%", "50 %"); a
// fraction is dropped ("50.5" is 50), as HAMi-core stores an integer. No unit. The caller reads
// 0, and 100 or more, as no limit.
std::optional<uint64_t> ParseHamiPercent(std::string_view text);

// CUDA_TASK_PRIORITY: a whole number, blanks around it; 0 is the highest priority.
std::optional<uint32_t> ParseHamiPriority(std::string_view text);

// GPU_CORE_UTILIZATION_POLICY: exactly "force"/"FORCE" or "disable"/"DISABLE"; HAMi-core reads
// every other value as the default policy, and so does gpushare (`recognised` says whether the
// value was one of those or "default"/"DEFAULT", so a caller can say how it was read).
enum class HamiCorePolicy { kDefault, kForce, kDisable };
HamiCorePolicy ParseHamiCorePolicy(std::string_view text, bool* recognised = nullptr);

}  // namespace gpushare
