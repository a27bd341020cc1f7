// SPDX-License-Identifier: Apache-2.0
// The launch-descriptor TPC mask: one subscription to the driver's launch callback, which writes
// each confined device's disable mask into every launch's descriptor (runtime and driver
// launches, cuLaunchKernelEx, cooperative launches, memsets, graphs at their first launch, from
// any thread and stream; under MPS too, since the callback runs in the client).
//
// The callback is the hot path: no lock, allocation, logging or system call; one acquire load
// of the published mask table, a version-byte compare and five stores.
#pragma once
#include <cstdint>
#include <string>

#include "sm_partition/slice.h"

namespace gpushare::sm {

enum class Subscription { kOk, kNoTable, kTaken, kFailed };
const char* DescribeSubscription(Subscription s);

// Takes the driver's single launch-callback slot (once; later calls return the first result).
Subscription SubscribeLaunchCallback();

// From now on, launches on `device` carry this disable mask (~enabled). Refused (false) when
// `enabled` holds no live bit of `live`: such a mask hangs every kernel.
bool PublishDeviceMask(int device, const TpcMask& enabled, const TpcMask& live);

// While mapping: every launch of this process (one device, nothing else launching yet) carries
// `disabled` instead. Cleared with ClearSweepMask.
void SetSweepMask(const TpcMask& disabled);
void ClearSweepMask();

// What the callback saw: the version byte of the latest descriptor (0 before any), and how many
// launches it left untouched because their layout is unknown.
uint32_t LastDescriptorVersion();
uint64_t ForeignDescriptorLaunches();

}  // namespace gpushare::sm
