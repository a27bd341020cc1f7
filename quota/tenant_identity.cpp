// SPDX-License-Identifier: Apache-2.0
#include "quota/tenant_identity.h"

#include <unistd.h>

#include <cctype>
#include <fstream>
#include <sstream>

#include "src/tenant_name.h"

namespace gpushare::quota {

namespace {

bool IsHex(char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }

// The last run of exactly 64 hex digits in `path`, bounded by non-hex characters.
std::string LastContainerId(std::string_view path) {
  std::string found;
  size_t i = 0;
  while (i < path.size()) {
    if (!IsHex(path[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < path.size() && IsHex(path[j])) ++j;
    if (j - i == 64) found = std::string(path.substr(i, 64));
    i = j;
  }
  for (char& c : found) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return found;
}

// "pod" followed by a UUID whose separators are '-' (cgroupfs) or '_' (systemd).
std::string PodUid(std::string_view path) {
  static constexpr int kGroups[] = {8, 4, 4, 4, 12};
  for (size_t at = path.find("pod"); at != std::string_view::npos; at = path.find("pod", at + 1)) {
    std::string uid;
    size_t p = at + 3;
    bool ok = true;
    for (int g = 0; g < 5 && ok; ++g) {
      if (g > 0) {
        if (p >= path.size() || (path[p] != '-' && path[p] != '_')) ok = false;
        else uid += '-', ++p;
      }
      for (int k = 0; k < kGroups[g] && ok; ++k, ++p) {
        if (p >= path.size() || !IsHex(path[p])) ok = false;
        else uid += static_cast<char>(std::tolower(static_cast<unsigned char>(path[p])));
      }
    }
    if (ok && (p == path.size() || !IsHex(path[p]))) return uid;
  }
  return {};
}

// The next line of `text` from `*start` (without its newline), advancing `*start`; false at the end.
bool NextLine(std::string_view text, size_t* start, std::string_view* line) {
  if (*start >= text.size()) return false;
  size_t end = text.find('\n', *start);
  if (end == std::string_view::npos) end = text.size();
  *line = text.substr(*start, end - *start);
  *start = end + 1;
  return true;
}

}  // namespace

CgroupIdentity ParseCgroupIdentity(std::string_view text) {
  CgroupIdentity id;
  size_t start = 0;
  std::string_view line;
  while (NextLine(text, &start, &line)) {
    // hierarchy-ID:controller-list:path; the path may itself contain ':'.
    const size_t c1 = line.find(':');
    if (c1 == std::string_view::npos) continue;
    const size_t c2 = line.find(':', c1 + 1);
    if (c2 == std::string_view::npos) continue;
    const std::string_view path = line.substr(c2 + 1);
    if (id.container_id.empty()) id.container_id = LastContainerId(path);
    if (id.pod_uid.empty() && path.find("kubepods") != std::string_view::npos) id.pod_uid = PodUid(path);
    if (!id.container_id.empty() && !id.pod_uid.empty()) break;
  }
  return id;
}

CgroupIdentity ParseMountinfoIdentity(std::string_view text) {
  CgroupIdentity id;
  size_t start = 0;
  std::string_view line;
  while (NextLine(text, &start, &line)) {
    // mount-ID parent-ID major:minor root mount-point ...: the root is the 4th field.
    for (int field = 0; field < 3 && !line.empty(); ++field) {
      const size_t space = line.find(' ');
      line = space == std::string_view::npos ? std::string_view() : line.substr(space + 1);
    }
    const std::string_view root = line.substr(0, line.find(' '));
    if (const size_t pods = root.find("/pods/"); pods != std::string_view::npos) {
      const std::string_view rest = root.substr(pods + 6);
      const std::string uid = PodUid("pod" + std::string(rest.substr(0, rest.find('/'))));
      if (!uid.empty() && (id.pod_uid.empty() || id.pod_uid == uid)) {
        id.pod_uid = uid;
        constexpr std::string_view kContainers = "/containers/";
        const size_t c = rest.find(kContainers);
        if (c != std::string_view::npos && id.container_name.empty()) {
          const std::string_view name = rest.substr(c + kContainers.size());
          id.container_name = SanitizeTenantName(name.substr(0, name.find('/')));
        }
      }
    }
    if (id.container_id.empty() && root.find("/containers/") != std::string_view::npos &&
        root.find("/pods/") == std::string_view::npos)
      id.container_id = LastContainerId(root);
  }
  if (id.pod_uid.empty()) id.container_name.clear();
  return id;
}

namespace {

std::string ReadWhole(const std::string& path) {
  std::ifstream in(path);
  if (!in) return {};
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

CgroupIdentity ReadCgroupIdentity(const std::string& cgroup_file) {
  CgroupIdentity id = ParseCgroupIdentity(ReadWhole(cgroup_file));
  if (!id.pod_uid.empty() || !id.container_id.empty()) return id;
  const size_t slash = cgroup_file.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : cgroup_file.substr(0, slash);
  return ParseMountinfoIdentity(ReadWhole(dir + "/mountinfo"));
}

std::string DefaultTenantName(const std::string& cgroup_file) {
  const CgroupIdentity id = ReadCgroupIdentity(cgroup_file);
  const std::string short_id = id.container_id.substr(0, 12);
  if (!id.pod_uid.empty()) {
    const std::string& part = short_id.empty() ? id.container_name : short_id;
    return SanitizeTenantName("pod" + id.pod_uid + (part.empty() ? "" : "/" + part));
  }
  if (!short_id.empty()) return "ctr-" + short_id;
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  return ProcessTenantName(getpid(), host);
}

std::string ProcessTenantName(int pid, std::string_view host) {
  // A UTS namespace's hostname may hold any byte but '\0': sanitised, never refused.
  return SanitizeTenantName("pid-" + std::to_string(pid) + "@" + (host.empty() ? "localhost" : std::string(host)));
}

}  // namespace gpushare::quota
