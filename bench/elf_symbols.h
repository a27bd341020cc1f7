// SPDX-License-Identifier: Apache-2.0
// Finding a loaded library's own definition of a symbol WITHOUT dlsym.
//
// gpushare exports a dlsym that answers cu* look-ups with its wrappers, so the benchmark cannot
// ask dlsym for the real driver functions. Instead: locate the library's load bias and path with
// dl_iterate_phdr, then read its dynamic symbol table two independent ways and add the bias:
//   * FromFile:   the ELF file on disk, section headers -> SHT_DYNSYM + its string table (+
//                 SHT_GNU_versym to prefer the default version of a versioned name);
//   * FromMemory: the mapped image, PT_DYNAMIC -> DT_SYMTAB / DT_STRTAB / DT_VERSYM, the symbol
//                 count from DT_GNU_HASH (or DT_HASH).
// Only dl_iterate_phdr, open/mmap and dladdr are used; none of them is interposed by gpushare.
// Header-only; compiled into launch_alloc_bench and into elf_symbols_selftest.cpp.
#pragma once

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace elfsym {

struct Segment {
  uintptr_t lo = 0, hi = 0;  // absolute [lo, hi)
  bool exec = false;
};

struct Module {
  std::string path;  // dlpi_name
  uintptr_t bias = 0;  // dlpi_addr: runtime address = bias + st_value
  std::vector<Segment> segments;  // PT_LOAD, absolute
  const ElfW(Dyn)* dynamic = nullptr;  // PT_DYNAMIC, absolute

  bool Contains(const void* p, bool need_exec) const {
    auto a = reinterpret_cast<uintptr_t>(p);
    for (const Segment& s : segments)
      if (a >= s.lo && a < s.hi && (!need_exec || s.exec)) return true;
    return false;
  }
  uintptr_t Lo() const {
    uintptr_t lo = UINTPTR_MAX;
    for (const Segment& s : segments) lo = s.lo < lo ? s.lo : lo;
    return segments.empty() ? 0 : lo;
  }
  uintptr_t Hi() const {
    uintptr_t hi = 0;
    for (const Segment& s : segments) hi = s.hi > hi ? s.hi : hi;
    return hi;
  }
};

inline const char* BaseName(const char* p) {
  const char* s = std::strrchr(p, '/');
  return s ? s + 1 : p;
}

// The first loaded object whose file name (basename) starts with `prefix`, e.g. "libcuda.so"
// (which does not match libcudart.so) or "libc.so".
inline bool FindModule(const char* prefix, Module* out) {
  struct Ctx {
    const char* prefix;
    Module* out;
    bool found;
  } ctx{prefix, out, false};
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* data) -> int {
        auto* c = static_cast<Ctx*>(data);
        if (info->dlpi_name == nullptr || info->dlpi_name[0] == '\0') return 0;
        const char* base = BaseName(info->dlpi_name);
        if (std::strncmp(base, c->prefix, std::strlen(c->prefix)) != 0) return 0;
        Module m;
        m.path = info->dlpi_name;
        m.bias = info->dlpi_addr;
        for (int i = 0; i < info->dlpi_phnum; ++i) {
          const ElfW(Phdr)& ph = info->dlpi_phdr[i];
          if (ph.p_type == PT_LOAD)
            m.segments.push_back({m.bias + ph.p_vaddr, m.bias + ph.p_vaddr + ph.p_memsz,
                                  (ph.p_flags & PF_X) != 0});
          else if (ph.p_type == PT_DYNAMIC)
            m.dynamic = reinterpret_cast<const ElfW(Dyn)*>(m.bias + ph.p_vaddr);
        }
        *c->out = std::move(m);
        c->found = true;
        return 1;
      },
      &ctx);
  return ctx.found;
}

struct Symbol {
  uintptr_t addr = 0;  // bias + st_value
  uint64_t value = 0;  // st_value
  uint64_t size = 0;
  int type = 0;  // STT_*
  int definitions = 0;  // defined entries with this name (versions)
};

namespace detail {

constexpr uint16_t kVersymHidden = 0x8000;

// Picks, among the defined entries named `name`, the default version (versym without the hidden
// bit), as dlsym does; counts the definitions.
template <typename At>
bool Pick(size_t count, At at, const char* name, uintptr_t bias, Symbol* out, std::string* err) {
  bool have = false, have_default = false;
  Symbol best;
  int defs = 0;
  for (size_t i = 1; i < count; ++i) {
    const ElfW(Sym)* s;
    const char* n;
    int versym;
    if (!at(i, &s, &n, &versym)) continue;
    if (s->st_shndx == SHN_UNDEF || std::strcmp(n, name) != 0) continue;
    const int type = ELF64_ST_TYPE(s->st_info);
    if (type != STT_FUNC && type != STT_GNU_IFUNC && type != STT_OBJECT) continue;
    ++defs;
    const bool is_default = versym < 0 || (versym & kVersymHidden) == 0;
    if (!have || (is_default && !have_default)) {
      best.value = s->st_value;
      best.addr = bias + s->st_value;
      best.size = s->st_size;
      best.type = type;
      have = true;
      have_default = is_default;
    }
  }
  if (!have) {
    *err = std::string(name) + " not defined in the dynamic symbol table";
    return false;
  }
  best.definitions = defs;
  *out = best;
  return true;
}

}  // namespace detail

// From the file on disk (section headers).
inline bool FromFile(const Module& m, const char* name, Symbol* out, std::string* err) {
  int fd = open(m.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *err = "open " + m.path + ": " + std::strerror(errno);
    return false;
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || st.st_size < static_cast<off_t>(sizeof(ElfW(Ehdr)))) {
    close(fd);
    *err = "stat/size of " + m.path;
    return false;
  }
  const size_t size = static_cast<size_t>(st.st_size);
  void* map = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (map == MAP_FAILED) {
    *err = "mmap " + m.path + ": " + std::strerror(errno);
    return false;
  }
  const auto* base = static_cast<const unsigned char*>(map);
  auto in = [&](uint64_t off, uint64_t len) { return off <= size && len <= size - off; };
  bool ok = false;
  do {
    const auto* eh = reinterpret_cast<const ElfW(Ehdr)*>(base);
    if (std::memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64) {
      *err = m.path + ": not a 64-bit ELF file";
      break;
    }
    if (eh->e_shoff == 0 || eh->e_shnum == 0 || eh->e_shentsize != sizeof(ElfW(Shdr)) ||
        !in(eh->e_shoff, uint64_t{eh->e_shnum} * sizeof(ElfW(Shdr)))) {
      *err = m.path + ": no usable section headers";
      break;
    }
    const auto* sh = reinterpret_cast<const ElfW(Shdr)*>(base + eh->e_shoff);
    int dynsym = -1, versym = -1;
    for (int i = 0; i < eh->e_shnum; ++i) {
      if (sh[i].sh_type == SHT_DYNSYM && dynsym < 0) dynsym = i;
    }
    if (dynsym < 0) {
      *err = m.path + ": no SHT_DYNSYM section";
      break;
    }
    for (int i = 0; i < eh->e_shnum; ++i)
      if (sh[i].sh_type == SHT_GNU_versym && sh[i].sh_link == static_cast<unsigned>(dynsym)) versym = i;
    const ElfW(Shdr)& sy = sh[dynsym];
    if (sy.sh_link >= eh->e_shnum || sy.sh_entsize != sizeof(ElfW(Sym)) || !in(sy.sh_offset, sy.sh_size)) {
      *err = m.path + ": malformed .dynsym";
      break;
    }
    const ElfW(Shdr)& str = sh[sy.sh_link];
    if (!in(str.sh_offset, str.sh_size)) {
      *err = m.path + ": malformed .dynstr";
      break;
    }
    const auto* syms = reinterpret_cast<const ElfW(Sym)*>(base + sy.sh_offset);
    const size_t count = sy.sh_size / sizeof(ElfW(Sym));
    const char* strs = reinterpret_cast<const char*>(base + str.sh_offset);
    const uint16_t* vs = nullptr;
    if (versym >= 0 && in(sh[versym].sh_offset, count * sizeof(uint16_t)))
      vs = reinterpret_cast<const uint16_t*>(base + sh[versym].sh_offset);
    auto at = [&](size_t i, const ElfW(Sym)** s, const char** n, int* v) {
      *s = &syms[i];
      if ((*s)->st_name >= str.sh_size) return false;
      *n = strs + (*s)->st_name;
      if (std::memchr(*n, '\0', str.sh_size - (*s)->st_name) == nullptr) return false;
      *v = vs ? vs[i] : -1;
      return true;
    };
    ok = detail::Pick(count, at, name, m.bias, out, err);
  } while (false);
  munmap(map, size);
  return ok;
}

// From the mapped image (PT_DYNAMIC). glibc relocates DT_SYMTAB & co. in place on x86-64;
// an entry still below the bias is an unrelocated offset and gets the bias added.
inline bool FromMemory(const Module& m, const char* name, Symbol* out, std::string* err) {
  if (m.dynamic == nullptr) {
    *err = m.path + ": no PT_DYNAMIC";
    return false;
  }
  uintptr_t symtab = 0, strtab = 0, strsz = 0, gnu_hash = 0, hash = 0, versym = 0;
  for (const ElfW(Dyn)* d = m.dynamic; d->d_tag != DT_NULL; ++d) {
    switch (d->d_tag) {
      case DT_SYMTAB: symtab = d->d_un.d_ptr; break;
      case DT_STRTAB: strtab = d->d_un.d_ptr; break;
      case DT_STRSZ: strsz = d->d_un.d_val; break;
      case DT_GNU_HASH: gnu_hash = d->d_un.d_ptr; break;
      case DT_HASH: hash = d->d_un.d_ptr; break;
      case DT_VERSYM: versym = d->d_un.d_ptr; break;
      default: break;
    }
  }
  auto fix = [&](uintptr_t p) { return p != 0 && p < m.bias ? p + m.bias : p; };
  symtab = fix(symtab);
  strtab = fix(strtab);
  gnu_hash = fix(gnu_hash);
  hash = fix(hash);
  versym = fix(versym);
  if (symtab == 0 || strtab == 0 || (gnu_hash == 0 && hash == 0)) {
    *err = m.path + ": dynamic section lacks DT_SYMTAB/DT_STRTAB/hash";
    return false;
  }
  size_t count = 0;
  if (gnu_hash != 0) {
    // nbuckets, symoffset, bloom_size, bloom_shift, bloom[bloom_size], buckets[nbuckets], chain[]
    const auto* h = reinterpret_cast<const uint32_t*>(gnu_hash);
    const uint32_t nbuckets = h[0], symoffset = h[1], bloom_size = h[2];
    const auto* buckets =
        reinterpret_cast<const uint32_t*>(reinterpret_cast<const ElfW(Addr)*>(h + 4) + bloom_size);
    const uint32_t* chain = buckets + nbuckets;
    uint32_t last = 0;
    for (uint32_t b = 0; b < nbuckets; ++b) last = buckets[b] > last ? buckets[b] : last;
    if (last < symoffset) {
      count = symoffset;
    } else {
      while ((chain[last - symoffset] & 1u) == 0) ++last;
      count = last + 1;
    }
  } else {
    count = reinterpret_cast<const uint32_t*>(hash)[1];  // nchain
  }
  const auto* syms = reinterpret_cast<const ElfW(Sym)*>(symtab);
  const char* strs = reinterpret_cast<const char*>(strtab);
  const auto* vs = reinterpret_cast<const uint16_t*>(versym);
  auto at = [&](size_t i, const ElfW(Sym)** s, const char** n, int* v) {
    *s = &syms[i];
    if (strsz != 0 && (*s)->st_name >= strsz) return false;
    *n = strs + (*s)->st_name;
    *v = vs ? vs[i] : -1;
    return true;
  };
  return detail::Pick(count, at, name, m.bias, out, err);
}

// Both ways; they must agree. On success *how says which were used.
inline bool Lookup(const Module& m, const char* name, Symbol* out, std::string* how, std::string* err) {
  Symbol f, g;
  std::string ef, eg;
  const bool okf = FromFile(m, name, &f, &ef);
  const bool okg = FromMemory(m, name, &g, &eg);
  if (okf && okg) {
    if (f.addr != g.addr) {
      char buf[160];
      std::snprintf(buf, sizeof buf, "file and memory tables disagree: %#lx vs %#lx",
                    static_cast<unsigned long>(f.addr), static_cast<unsigned long>(g.addr));
      *err = std::string(name) + ": " + buf;
      return false;
    }
    *out = f;
    *how = "file .dynsym == PT_DYNAMIC";
    return true;
  }
  if (okf) {
    *out = f;
    *how = "file .dynsym (PT_DYNAMIC failed: " + eg + ")";
    return true;
  }
  if (okg) {
    *out = g;
    *how = "PT_DYNAMIC (file failed: " + ef + ")";
    return true;
  }
  *err = ef + "; " + eg;
  return false;
}

}  // namespace elfsym
