// SPDX-License-Identifier: Apache-2.0
// Graphs with memory nodes. An alloc node gets its device address (a PROT_NONE reservation) when
// added; the first launch of an executable graph charges the physical memory, which stays
// reserved while the exec exists, until cuDeviceGraphMemTrim finds it unused or the exec is
// destroyed. The address is accessible from the alloc node until a free node, cuMemFree or
// cuMemFreeAsync frees it.
#include "tests/fake_driver/state.h"

#include <sys/mman.h>

#include <algorithm>

namespace fakecuda {

struct GraphAlloc {
  int device = 0;
  uintptr_t va = 0;
  size_t size = 0;       // requested
  size_t reserved = 0;   // size rounded up to 2 MiB: what is charged
  bool charged = false;
  bool live = false;     // allocated: accessible, counted as used
  bool orphan = false;   // its exec is gone: uncharge as soon as it is freed
  ~GraphAlloc() { munmap(reinterpret_cast<void*>(va), reserved); }
};

namespace {

enum class NodeType { kAlloc, kFree, kKernel };

struct Node {
  NodeType type = NodeType::kAlloc;
  std::shared_ptr<GraphAlloc> alloc;  // kAlloc
  CUdeviceptr free_ptr = 0;           // kFree
  CUfunction func = nullptr;          // kKernel
  unsigned grid[3] = {}, block[3] = {}, shared_bytes = 0;
  void** params = nullptr;            // caller keeps the argument array alive
  bool described = false;             // kKernel in an exec: its descriptor was built at the first
  LaunchMask mask;                    // launch (the callback fired then); replays reuse it
};

struct Graph {
  std::vector<std::unique_ptr<Node>> nodes;
  int execs = 0;
};

struct Exec {
  Graph* graph = nullptr;  // null once the graph is destroyed
  Context* ctx = nullptr;
  bool auto_free = false;
  std::vector<Node> nodes;
};

struct GraphState {
  std::map<const Graph*, std::unique_ptr<Graph>> graphs;
  std::map<const Exec*, std::unique_ptr<Exec>> execs;
};

GraphState& gs() {
  static auto* s = new GraphState;
  return *s;
}

Graph* find_graph(CUgraph g) {
  auto it = gs().graphs.find(reinterpret_cast<const Graph*>(g));
  return it == gs().graphs.end() ? nullptr : it->second.get();
}

Exec* find_exec(CUgraphExec e) {
  auto it = gs().execs.find(reinterpret_cast<const Exec*>(e));
  return it == gs().execs.end() ? nullptr : it->second.get();
}

void uncharge(GraphAlloc& a) {
  if (!a.charged) return;
  phys_release(a.device, a.reserved);
  a.charged = false;
}

void make_live(GraphAlloc& a, const std::shared_ptr<GraphAlloc>& owner, Context* ctx) {
  mprotect(reinterpret_cast<void*>(a.va), a.reserved, PROT_READ | PROT_WRITE);
  a.live = true;
  Range r;
  r.base = a.va;
  r.size = a.size;
  r.kind = RangeKind::kGraphAlloc;
  r.ctx = ctx;
  r.device = a.device;
  r.prot = PROT_READ | PROT_WRITE;
  r.graph = owner;
  drv().ranges.emplace(r.base, r);
}

void destroy_exec(Exec* e) {
  for (Node& n : e->nodes) {
    if (n.type != NodeType::kAlloc) continue;
    if (n.alloc->live) n.alloc->orphan = true;
    else uncharge(*n.alloc);
  }
  if (e->graph != nullptr) --e->graph->execs;
  gs().execs.erase(e);
}

CUresult add_node(CUgraphNode* ph, CUgraph graph, const CUgraphNode* deps, size_t ndeps,
                  std::unique_ptr<Node> node) {
  Graph* g = find_graph(graph);
  if (ph == nullptr || g == nullptr || (ndeps > 0 && deps == nullptr)) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  *ph = reinterpret_cast<CUgraphNode>(node.get());
  g->nodes.push_back(std::move(node));
  return CUDA_SUCCESS;
}

// Runs the exec's nodes in insertion order (a valid topological order: dependencies must exist
// before the nodes that name them).
CUresult run(Exec& e) {
  std::vector<GraphAlloc*> newly;
  for (Node& n : e.nodes) {
    if (n.type != NodeType::kAlloc) continue;
    GraphAlloc& a = *n.alloc;
    if (a.live && !e.auto_free) return CUDA_ERROR_INVALID_VALUE;
    if (a.charged) continue;
    if (!phys_charge(a.device, a.reserved)) {
      for (GraphAlloc* p : newly) uncharge(*p);
      return CUDA_ERROR_OUT_OF_MEMORY;
    }
    a.charged = true;
    newly.push_back(&a);
  }
  for (Node& n : e.nodes) {
    switch (n.type) {
      case NodeType::kAlloc:
        if (n.alloc->live) graph_free_alloc(drv().ranges.at(n.alloc->va));
        make_live(*n.alloc, n.alloc, e.ctx);
        break;
      case NodeType::kFree:
        if (Range* r = find_range_base(n.free_ptr); r && r->kind == RangeKind::kGraphAlloc) {
          graph_free_alloc(*r);
        }
        break;
      case NodeType::kKernel:
        if (!n.described) n.mask = fire_launch_callback(), n.described = true;
        FAKE_TRY(launch_function(n.func, n.grid, n.block, n.shared_bytes, n.params, n.mask));
        break;
    }
  }
  return CUDA_SUCCESS;
}

}  // namespace

void graph_free_alloc(Range& r) {
  std::shared_ptr<GraphAlloc> a = r.graph;
  drv().ranges.erase(r.base);
  mprotect(reinterpret_cast<void*>(a->va), a->reserved, PROT_NONE);
  a->live = false;
  if (a->orphan) uncharge(*a);
}

void graph_release_context(Context* ctx) {
  std::vector<Exec*> doomed;
  for (const auto& [h, e] : gs().execs) {
    if (e->ctx == ctx) doomed.push_back(e.get());
  }
  for (Exec* e : doomed) destroy_exec(e);
  std::vector<uintptr_t> live;
  for (const auto& [base, r] : drv().ranges) {
    if (r.kind == RangeKind::kGraphAlloc && r.ctx == ctx) live.push_back(base);
  }
  for (uintptr_t base : live) graph_free_alloc(drv().ranges.at(base));
}

void graph_reset() {
  while (!gs().execs.empty()) destroy_exec(gs().execs.begin()->second.get());
  std::vector<uintptr_t> live;
  for (const auto& [base, r] : drv().ranges) {
    if (r.kind == RangeKind::kGraphAlloc) live.push_back(base);
  }
  for (uintptr_t base : live) graph_free_alloc(drv().ranges.at(base));
  gs().graphs.clear();
}

uint64_t graph_mem(int device, bool reserved) {
  uint64_t sum = 0;
  auto add = [&](const GraphAlloc& a) {
    if (a.device == device && (reserved ? a.charged : a.live)) sum += a.reserved;
  };
  for (const auto& [h, e] : gs().execs) {
    for (const Node& n : e->nodes) {
      if (n.type == NodeType::kAlloc) add(*n.alloc);
    }
  }
  for (const auto& [base, r] : drv().ranges) {
    if (r.kind == RangeKind::kGraphAlloc && r.graph->orphan) add(*r.graph);
  }
  return sum;
}

}  // namespace fakecuda

using namespace fakecuda;

FAKE_API CUresult cuGraphCreate(CUgraph* graph, unsigned int flags) {
  FAKE_ENTER();
  if (graph == nullptr || flags != 0) return CUDA_ERROR_INVALID_VALUE;
  auto g = std::make_unique<Graph>();
  *graph = reinterpret_cast<CUgraph>(g.get());
  gs().graphs.emplace(g.get(), std::move(g));
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuGraphDestroy(CUgraph graph) {
  FAKE_ENTER();
  if (find_graph(graph) == nullptr) return CUDA_ERROR_INVALID_VALUE;
  for (auto& [h, e] : gs().execs) {
    if (e->graph == reinterpret_cast<Graph*>(graph)) e->graph = nullptr;
  }
  gs().graphs.erase(reinterpret_cast<const Graph*>(graph));
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuGraphAddMemAllocNode(CUgraphNode* ph, CUgraph graph, const CUgraphNode* deps,
                                         size_t ndeps, CUDA_MEM_ALLOC_NODE_PARAMS* params) {
  FAKE_ENTER();
  if (params == nullptr || params->bytesize == 0 ||
      params->poolProps.allocType != CU_MEM_ALLOCATION_TYPE_PINNED ||
      params->poolProps.location.type != CU_MEM_LOCATION_TYPE_DEVICE) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  if (!valid_device(params->poolProps.location.id)) return CUDA_ERROR_INVALID_DEVICE;
  if (find_graph(graph) == nullptr || ph == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (params->bytesize > kMaxRequest) return CUDA_ERROR_OUT_OF_MEMORY;
  auto a = std::make_shared<GraphAlloc>();
  a->device = params->poolProps.location.id;
  a->size = params->bytesize;
  a->reserved = round_up(params->bytesize, kGranularity);
  void* va = map_region(a->reserved, kGranularity, PROT_NONE);
  if (va == nullptr) {
    a->reserved = 0;
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  a->va = reinterpret_cast<uintptr_t>(va);
  auto node = std::make_unique<Node>();
  node->type = NodeType::kAlloc;
  node->alloc = a;
  FAKE_TRY(add_node(ph, graph, deps, ndeps, std::move(node)));
  params->dptr = a->va;
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuGraphAddMemFreeNode(CUgraphNode* ph, CUgraph graph, const CUgraphNode* deps,
                                        size_t ndeps, CUdeviceptr dptr) {
  FAKE_ENTER();
  Graph* g = find_graph(graph);
  if (g == nullptr) return CUDA_ERROR_INVALID_VALUE;
  const bool known = std::any_of(g->nodes.begin(), g->nodes.end(), [dptr](const auto& n) {
    return n->type == NodeType::kAlloc && n->alloc->va == dptr;
  });
  const Range* r = find_range_base(dptr);
  if (!known && (r == nullptr || r->kind != RangeKind::kGraphAlloc)) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  auto node = std::make_unique<Node>();
  node->type = NodeType::kFree;
  node->free_ptr = dptr;
  return add_node(ph, graph, deps, ndeps, std::move(node));
}

FAKE_API CUresult cuGraphAddKernelNode_v2(CUgraphNode* ph, CUgraph graph, const CUgraphNode* deps,
                                          size_t ndeps, const CUDA_KERNEL_NODE_PARAMS* params) {
  FAKE_ENTER();
  if (params == nullptr) return CUDA_ERROR_INVALID_VALUE;
  const unsigned grid[3] = {params->gridDimX, params->gridDimY, params->gridDimZ};
  const unsigned block[3] = {params->blockDimX, params->blockDimY, params->blockDimZ};
  FAKE_TRY(check_launch(params->func, grid, block));
  auto node = std::make_unique<Node>();
  node->type = NodeType::kKernel;
  node->func = params->func;
  std::copy(grid, grid + 3, node->grid);
  std::copy(block, block + 3, node->block);
  node->shared_bytes = params->sharedMemBytes;
  node->params = params->kernelParams;
  return add_node(ph, graph, deps, ndeps, std::move(node));
}

FAKE_API CUresult cuGraphAddKernelNode(CUgraphNode* ph, CUgraph graph, const CUgraphNode* deps,
                                       size_t ndeps, const CUDA_KERNEL_NODE_PARAMS_v1* params) {
  if (params == nullptr) return cuGraphAddKernelNode_v2(ph, graph, deps, ndeps, nullptr);
  CUDA_KERNEL_NODE_PARAMS v2{};
  v2.func = params->func;
  v2.gridDimX = params->gridDimX;
  v2.gridDimY = params->gridDimY;
  v2.gridDimZ = params->gridDimZ;
  v2.blockDimX = params->blockDimX;
  v2.blockDimY = params->blockDimY;
  v2.blockDimZ = params->blockDimZ;
  v2.sharedMemBytes = params->sharedMemBytes;
  v2.kernelParams = params->kernelParams;
  v2.extra = params->extra;
  return cuGraphAddKernelNode_v2(ph, graph, deps, ndeps, &v2);
}

FAKE_API CUresult cuGraphInstantiateWithFlags(CUgraphExec* exec, CUgraph graph,
                                              unsigned long long flags) {
  FAKE_ENTER();
  Graph* g = find_graph(graph);
  if (exec == nullptr || g == nullptr) return CUDA_ERROR_INVALID_VALUE;
  Context* c = nullptr;
  FAKE_TRY(current_context(&c));
  const bool has_alloc = std::any_of(g->nodes.begin(), g->nodes.end(),
                                     [](const auto& n) { return n->type == NodeType::kAlloc; });
  // As the real driver: a graph with memory nodes may have one executable graph at a time.
  if (has_alloc && g->execs > 0) return CUDA_ERROR_NOT_SUPPORTED;
  auto e = std::make_unique<Exec>();
  e->graph = g;
  e->ctx = c;
  e->auto_free = (flags & CUDA_GRAPH_INSTANTIATE_FLAG_AUTO_FREE_ON_LAUNCH) != 0;
  for (const auto& n : g->nodes) {
    e->nodes.push_back(*n);
    if (n->type == NodeType::kAlloc) n->alloc->orphan = false;  // this exec owns it now
  }
  ++g->execs;
  *exec = reinterpret_cast<CUgraphExec>(e.get());
  gs().execs.emplace(e.get(), std::move(e));
  return CUDA_SUCCESS;
}

namespace {

CUresult graph_launch(CUgraphExec exec, CUstream stream) {
  Exec* e = find_exec(exec);
  if (e == nullptr) return CUDA_ERROR_INVALID_VALUE;
  Context* c = nullptr;
  FAKE_TRY(stream_context(stream, &c));
  FAKE_TRY(c->sticky);
  const CUresult rc = run(*e);
  if (rc == CUDA_ERROR_ILLEGAL_ADDRESS) c->sticky = rc;
  return rc;
}

}  // namespace

FAKE_API CUresult cuGraphLaunch(CUgraphExec exec, CUstream stream) {
  FAKE_ENTER();
  return graph_launch(exec, stream);
}

FAKE_API CUresult cuGraphLaunch_ptsz(CUgraphExec exec, CUstream stream) {
  FAKE_ENTER();
  return graph_launch(exec, stream);
}

FAKE_API CUresult cuGraphExecDestroy(CUgraphExec exec) {
  FAKE_ENTER();
  Exec* e = find_exec(exec);
  if (e == nullptr) return CUDA_ERROR_INVALID_VALUE;
  destroy_exec(e);
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuDeviceGraphMemTrim(CUdevice device) {
  FAKE_ENTER();
  if (!valid_device(device)) return CUDA_ERROR_INVALID_DEVICE;
  for (const auto& [h, e] : gs().execs) {
    for (Node& n : e->nodes) {
      if (n.type == NodeType::kAlloc && n.alloc->device == device && !n.alloc->live) {
        uncharge(*n.alloc);
      }
    }
  }
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuDeviceGetGraphMemAttribute(CUdevice device, CUgraphMem_attribute attr,
                                               void* value) {
  FAKE_ENTER();
  if (value == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (!valid_device(device)) return CUDA_ERROR_INVALID_DEVICE;
  auto* out = static_cast<cuuint64_t*>(value);
  switch (attr) {
    case CU_GRAPH_MEM_ATTR_USED_MEM_CURRENT:
    case CU_GRAPH_MEM_ATTR_USED_MEM_HIGH: *out = graph_mem(device, false); break;
    case CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT:
    case CU_GRAPH_MEM_ATTR_RESERVED_MEM_HIGH: *out = graph_mem(device, true); break;
    default: return CUDA_ERROR_INVALID_VALUE;
  }
  return CUDA_SUCCESS;
}
