// SPDX-License-Identifier: Apache-2.0
#include "hooks/caller_scope.h"

#include <dlfcn.h>
#include <link.h>

#include <string>
#include <vector>

#include "src/real_driver.h"

namespace gpushare {
namespace {

link_map* ObjectContaining(const void* address) {
  Dl_info info{};
  link_map* map = nullptr;
  if (dladdr1(address, &info, reinterpret_cast<void**>(&map), RTLD_DL_LINKMAP) == 0) return nullptr;
  return map;
}

link_map* NamespaceHead(link_map* map) {
  while (map->l_prev != nullptr) map = map->l_prev;
  return map;
}

struct ObjectsAfter {
  link_map* caller = nullptr;
  link_map* ours = nullptr;
  bool same_namespace = false;
  std::vector<std::string> names;
};

// Reads the whole list in the first call: dl_iterate_phdr holds the lock under which dlclose
// unlinks an object, so the list cannot change meanwhile. No dl* call is made here (dlopen takes
// the loader's other lock, and another thread may hold that one while waiting for this one).
int ReadObjectsAfter(dl_phdr_info*, size_t, void* data) {
  auto* objects = static_cast<ObjectsAfter*>(data);
  objects->same_namespace = NamespaceHead(objects->caller) == NamespaceHead(objects->ours);
  if (!objects->same_namespace) return 1;
  for (const link_map* map = objects->caller->l_next; map != nullptr; map = map->l_next)
    if (map->l_name != nullptr && map->l_name[0] != '\0') objects->names.emplace_back(map->l_name);
  return 1;
}

// The definition of `symbol` in the object named `name` itself, not in one of its dependencies.
// A handle from dlopen(RTLD_NOLOAD) is how to search one object with public interfaces; an
// object unloaded since the list was read is skipped.
void* DefinitionIn(const std::string& name, const char* symbol) {
  void* handle = dlopen(name.c_str(), RTLD_NOLOAD | RTLD_LAZY);
  if (handle == nullptr) return nullptr;
  void* found = RealDlsym()(handle, symbol);
  link_map* map = nullptr;
  if (found != nullptr && (dlinfo(handle, RTLD_DI_LINKMAP, &map) != 0 || ObjectContaining(found) != map))
    found = nullptr;
  dlclose(handle);
  return found;
}

}  // namespace

NextDefinition FindNextDefinition(const void* caller_address, const char* symbol) {
  static const char kOurs = 0;
  ObjectsAfter objects;
  objects.caller = ObjectContaining(caller_address);
  objects.ours = ObjectContaining(&kOurs);
  NextDefinition next;
  if (objects.ours == nullptr) return next;
  // Code in no object (generated at run time) is the main program's to glibc too.
  if (objects.caller == nullptr) objects.caller = NamespaceHead(objects.ours);
  dl_iterate_phdr(ReadObjectsAfter, &objects);
  next.in_our_namespace = objects.same_namespace;
  for (const std::string& name : objects.names) {
    next.address = DefinitionIn(name, symbol);
    if (next.address != nullptr) break;
  }
  return next;
}

}  // namespace gpushare
