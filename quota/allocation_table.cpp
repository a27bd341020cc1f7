// SPDX-License-Identifier: Apache-2.0
#include "quota/allocation_table.h"

#include <mutex>
#include <unordered_map>

#include "quota/device_quota.h"

namespace gpushare::quota {
namespace {

struct Key {
  HandleKind kind;
  uint64_t handle;
  bool operator==(const Key&) const = default;
};

struct KeyHash {
  size_t operator()(const Key& k) const {
    return std::hash<uint64_t>()(k.handle * 8 + static_cast<uint64_t>(k.kind));
  }
};

struct Table {
  std::mutex mu;
  std::unordered_map<Key, Allocation, KeyHash> entries;
};

Table& TheTable() {
  static Table* table = new Table;  // outlives static destructors: frees may run during exit
  return *table;
}

void Uncharge(HandleKind kind, const Allocation& a) {
  DeviceQuota* q = QuotaFor(a.device);
  if (q == nullptr) return;
  q->Uncharge(a.bytes);
  if (kind == HandleKind::kContext && q->session() != nullptr) q->session()->SubtractProcessContextBytes(a.bytes);
}

}  // namespace

void Record(HandleKind kind, uint64_t handle, const Allocation& allocation) {
  Table& t = TheTable();
  std::lock_guard lock(t.mu);
  auto [it, inserted] = t.entries.try_emplace(Key{kind, handle}, allocation);
  if (!inserted) {
    // The handle was freed by a path we do not see; its old charge is stale.
    Uncharge(kind, it->second);
    it->second = allocation;
  }
}

bool Forget(HandleKind kind, uint64_t handle) {
  Allocation found{};
  {
    Table& t = TheTable();
    std::lock_guard lock(t.mu);
    auto it = t.entries.find(Key{kind, handle});
    if (it == t.entries.end()) return false;
    found = it->second;
    t.entries.erase(it);
  }
  Uncharge(kind, found);
  return true;
}

void ForgetContext(CUcontext context, bool keep_overhead) {
  Table& t = TheTable();
  std::lock_guard lock(t.mu);
  for (auto it = t.entries.begin(); it != t.entries.end();) {
    const bool owned = it->second.context == context;
    const bool overhead = it->first.kind == HandleKind::kContext;
    if (owned && !(overhead && keep_overhead)) {
      Uncharge(it->first.kind, it->second);
      it = t.entries.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace gpushare::quota
