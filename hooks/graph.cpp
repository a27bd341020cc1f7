// SPDX-License-Identifier: Apache-2.0
// Graph allocation nodes: a node that cannot fit is refused when added; the memory graphs
// really hold is re-read from the driver after each launch and trim.
#include "hooks/launch_entry.h"
#include "quota/memory_accounting.h"
#include "quota/pool_accounting.h"

using gpushare::Real;
namespace quota = gpushare::quota;

namespace {

void SyncAllGraphMemory() {
  if (quota::GraphMemoryInUse()) quota::ForEachQuota([](quota::DeviceQuota& q) { quota::SyncGraphMemory(q); });
}

}  // namespace

GS_EXPORT CUresult cuGraphAddMemAllocNode(CUgraphNode* phGraphNode, CUgraph hGraph,
                                          const CUgraphNode* dependencies, size_t numDependencies,
                                          CUDA_MEM_ALLOC_NODE_PARAMS* nodeParams) {
  GS_ENSURE_INIT();
  // Arguments the driver refuses are its to answer, before any quota decision.
  const bool well_formed = phGraphNode != nullptr && hGraph != nullptr && nodeParams != nullptr &&
                           nodeParams->bytesize != 0 && (numDependencies == 0 || dependencies != nullptr);
  if (well_formed && nodeParams->poolProps.location.type == CU_MEM_LOCATION_TYPE_DEVICE) {
    if (quota::DeviceQuota* q = quota::QuotaFor(nodeParams->poolProps.location.id)) {
      quota::NoteGraphMemoryUse();
      if (nodeParams->bytesize > q->headroom_bytes())
        return quota::Deny(*q, nodeParams->bytesize, "graph allocation node");
    }
  }
  return Real().cuGraphAddMemAllocNode(phGraphNode, hGraph, dependencies, numDependencies, nodeParams);
}

// Graph launches are kernel launches (hooks/launch_entry.h): a server that only replays graphs
// is busy, gated by the compute turn, and held while swap moves its memory.
GS_EXPORT CUresult cuGraphLaunch(CUgraphExec hGraphExec, CUstream hStream) {
  const CUresult rc = gpushare::EnterStreamWork<gpushare::StreamWork::kKernels>(
      hStream, false, [=] { return Real().cuGraphLaunch(hGraphExec, hStream); });
  SyncAllGraphMemory();
  return rc;
}

GS_EXPORT CUresult cuGraphLaunch_ptsz(CUgraphExec hGraphExec, CUstream hStream) {
  const CUresult rc = gpushare::EnterStreamWork<gpushare::StreamWork::kKernels>(
      hStream, true, [=] { return Real().cuGraphLaunch_ptsz(hGraphExec, hStream); });
  SyncAllGraphMemory();
  return rc;
}

GS_EXPORT CUresult cuDeviceGraphMemTrim(CUdevice device) {
  GS_ENSURE_INIT();
  const CUresult rc = Real().cuDeviceGraphMemTrim(device);
  SyncAllGraphMemory();
  return rc;
}
