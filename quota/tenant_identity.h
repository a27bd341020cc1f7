// SPDX-License-Identifier: Apache-2.0
// Who this process is, for the ledger: a default tenant name and the container id recorded in
// its process slot, both derived from /proc/self/cgroup, else (a private cgroup namespace, where
// cgroup v2 shows only "0::/") from the mounts the runtime made for the container in
// /proc/self/mountinfo (GPUSHARE_TENANT, handled by the caller, overrides the name).
#pragma once
#include <string>
#include <string_view>

namespace gpushare::quota {

struct CgroupIdentity {
  std::string pod_uid;       // Kubernetes pod UID (dashes), empty outside kubepods
  std::string container_id;  // 64 hex (docker, containerd, cri-o), empty if none
  std::string container_name;  // the Kubernetes container's name, from kubelet's mounts only
};

// Parses the text of a /proc/<pid>/cgroup file (v1 or v2). Recognises, e.g.
//   /kubepods/burstable/pod<uid>/<64hex>
//   /kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod<uid_>.slice/cri-containerd-<64hex>.scope
//   /system.slice/docker-<64hex>.scope, /docker/<64hex>, .../crio-<64hex>.scope
CgroupIdentity ParseCgroupIdentity(std::string_view cgroup_text);
// Parses the text of a /proc/<pid>/mountinfo file: the mount roots of the files the runtime put
// into the container, e.g. kubelet's /var/lib/kubelet/pods/<uid>/containers/<name>/<id>
// (/dev/termination-log) and /var/lib/kubelet/pods/<uid>/etc-hosts, docker's
// /var/lib/docker/containers/<64hex>/hostname.
CgroupIdentity ParseMountinfoIdentity(std::string_view mountinfo_text);
// The cgroup file's identity; where it names neither pod nor container, the identity of the
// mountinfo file beside it (same /proc/<pid>/ folder).
CgroupIdentity ReadCgroupIdentity(const std::string& cgroup_file = "/proc/self/cgroup");

// "pod<uid>/<first 12 hex of the container id>" in Kubernetes ("pod<uid>/<container name>" when
// only kubelet's mounts tell), "ctr-<12 hex>" in a plain
// container, else "pid-<pid>@<hostname>" (a tenant of one process). Always in the tenant
// alphabet (src/tenant_name.h): the uid and the id are hex, the hostname is sanitised.
std::string DefaultTenantName(const std::string& cgroup_file = "/proc/self/cgroup");

// "pid-<pid>@<host>", bytes outside the alphabet made '_' (cut to 127 bytes).
std::string ProcessTenantName(int pid, std::string_view host);

}  // namespace gpushare::quota
