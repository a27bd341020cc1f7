// SPDX-License-Identifier: Apache-2.0
// The Tracker of a real (or fake) driver: after each launch, an event recorded on the launch's
// stream (one event per thread and stream, reused); drained when every such event completed.
// Never touches a stream that is capturing a graph (its launches run no work; an event query
// there would invalidate the capture), and the keeper thread queries in relaxed capture mode,
// so an application thread's global-mode capture is not disturbed. No cuCtxSynchronize.
#pragma once
#include <memory>

#include "compute/gate.h"

namespace gpushare::compute {

std::unique_ptr<Tracker> MakeEventTracker();

}  // namespace gpushare::compute
