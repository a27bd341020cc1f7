// SPDX-License-Identifier: Apache-2.0
// Checks bench/elf_symbols.h against dlsym on libraries gpushare does not interpose (libc, libm):
// the address computed from the ELF tables must equal dlsym's answer. Run without LD_PRELOAD.
//   g++ -std=c++17 -O2 bench/elf_symbols_selftest.cpp -o /tmp/elf_selftest -ldl && /tmp/elf_selftest
#include <cmath>
#include <cstdio>

#include "elf_symbols.h"

int main() {
  volatile double keep = std::cos(0.5);  // make sure libm is loaded
  (void)keep;
  struct Case {
    const char* lib;
    const char* sym;
  } cases[] = {{"libc.so", "malloc"}, {"libc.so", "free"},       {"libc.so", "calloc"},
               {"libc.so", "realpath"},  // two versions: @GLIBC_2.2.5 and @@GLIBC_2.3
               {"libc.so", "pthread_cond_wait"},  // two versions as well
               {"libc.so", "dl_iterate_phdr"}};
  int bad = 0;
  for (const Case& c : cases) {
    elfsym::Module m;
    if (!elfsym::FindModule(c.lib, &m)) {
      std::printf("FAIL %s: module %s not loaded\n", c.sym, c.lib);
      ++bad;
      continue;
    }
    void* want = dlsym(RTLD_DEFAULT, c.sym);
    elfsym::Symbol f, g, s;
    std::string ef, eg, e, how;
    bool okf = elfsym::FromFile(m, c.sym, &f, &ef);
    bool okg = elfsym::FromMemory(m, c.sym, &g, &eg);
    bool ok = elfsym::Lookup(m, c.sym, &s, &how, &e);
    bool pass = okf && okg && ok && f.addr == reinterpret_cast<uintptr_t>(want) &&
                g.addr == f.addr && m.Contains(reinterpret_cast<void*>(s.addr), true);
    std::printf("%s %-18s in %s (bias %#lx): dlsym %p file %#lx (%d defs) mem %#lx %s%s%s\n",
                pass ? "PASS" : "FAIL", c.sym, m.path.c_str(), static_cast<unsigned long>(m.bias), want,
                static_cast<unsigned long>(f.addr), f.definitions, static_cast<unsigned long>(g.addr),
                how.c_str(), okf ? "" : (" fileerr=" + ef).c_str(), okg ? "" : (" memerr=" + eg).c_str());
    bad += !pass;
  }
  // An IFUNC (libm's cos on x86-64): the table holds the resolver, not what dlsym returns; the
  // lookup must report the type so that callers (the benchmark) can refuse it.
  {
    elfsym::Module lm;
    elfsym::Symbol s;
    std::string how, e;
    bool found = elfsym::FindModule("libm.so", &lm) && elfsym::Lookup(lm, "cos", &s, &how, &e);
    bool pass = found && (s.type == STT_GNU_IFUNC ? s.addr != reinterpret_cast<uintptr_t>(dlsym(RTLD_DEFAULT, "cos"))
                                                  : s.addr == reinterpret_cast<uintptr_t>(dlsym(RTLD_DEFAULT, "cos")));
    std::printf("%s cos in libm: type %s, table %#lx, dlsym %p\n", pass ? "PASS" : "FAIL",
                s.type == STT_GNU_IFUNC ? "IFUNC (resolver)" : "FUNC", static_cast<unsigned long>(s.addr),
                dlsym(RTLD_DEFAULT, "cos"));
    bad += !pass;
  }
  // A name that is not there.
  elfsym::Module m;
  elfsym::FindModule("libc.so", &m);
  elfsym::Symbol s;
  std::string how, e;
  bool absent = !elfsym::Lookup(m, "no_such_symbol_xyz", &s, &how, &e);
  std::printf("%s absent symbol reported: %s\n", absent ? "PASS" : "FAIL", e.c_str());
  bad += !absent;
  std::printf("%s\n", bad ? "SELFTEST FAILED" : "SELFTEST OK");
  return bad ? 1 : 0;
}
