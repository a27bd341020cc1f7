#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Checks deploy/'s manifests where no schema can: each kind at the API version Kubernetes serves
today, names Kubernetes accepts, volumes and mounts that resolve, and the DaemonSet, the Service
and the example pods agreeing with each other and with node-install.sh. Fields, types, enums,
required properties and unknown fields are checked against the Kubernetes API's schema by
validate_schema.mjs, and the YAML itself by yamllint (tests/CMakeLists.txt).

  validate_manifests.py DEPLOY_DIR      exit 0 when clean, 1 with one line per problem
  validate_manifests.py --self-test DEPLOY_DIR
        breaks the manifests in memory, one way at a time, and checks each is caught
"""
import copy
import glob
import os
import re
import sys

import yaml

LIB_DIR = "/opt/gpushare"
LEDGER_DIR = "/var/run/gpushare"
PRELOAD_FILE = LIB_DIR + "/etc/ld.so.preload"
LIBRARY = LIB_DIR + "/lib/libgpushare.so"
RUN = LIB_DIR + "/bin/gpushare-run"
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
API_VERSIONS = {"Namespace": "v1", "Pod": "v1", "Service": "v1", "ConfigMap": "v1", "DaemonSet": "apps/v1"}


def load(deploy_dir):
    """{file name: [documents]}; a YAML error is a problem of its own."""
    docs, problems = {}, []
    for path in sorted(glob.glob(os.path.join(deploy_dir, "**", "*.yaml"), recursive=True)):
        name = os.path.relpath(path, deploy_dir)
        try:
            with open(path) as f:
                docs[name] = [d for d in yaml.safe_load_all(f) if d is not None]
        except yaml.YAMLError as e:
            problems.append(f"{name}: does not parse: {e}")
    return docs, problems


def check_pod_spec(where, spec, problems):
    containers = spec.get("containers") or []
    volumes = {v.get("name"): v for v in spec.get("volumes") or []}
    names = set()
    for c in (spec.get("initContainers") or []) + containers:
        cname = c.get("name", "")
        if not DNS_LABEL.match(cname):
            problems.append(f"{where}: container name {cname!r} is not a DNS label")
        if cname in names:
            problems.append(f"{where}: two containers named {cname}")
        names.add(cname)
        if not c.get("image"):
            problems.append(f"{where}: container {cname} has no image")
        for m in c.get("volumeMounts") or []:
            if m.get("name") not in volumes:
                problems.append(f"{where}: container {cname} mounts undefined volume {m.get('name')!r}")
            if not str(m.get("mountPath", "")).startswith("/"):
                problems.append(f"{where}: container {cname} mounts at a relative path")
        for e in c.get("env") or []:
            if "name" not in e or ("value" not in e and "valueFrom" not in e):
                problems.append(f"{where}: container {cname} has an env entry without name and value")
    for v in volumes.values():
        hp = v.get("hostPath")
        if hp is not None and (not str(hp.get("path", "")).startswith("/") or "type" not in hp):
            problems.append(f"{where}: hostPath volume {v.get('name')} needs an absolute path and a type")
    return volumes


def mounts_host(container, volumes, host_path):
    """The mountPath at which `container` sees `host_path` of the node, or None."""
    for m in container.get("volumeMounts") or []:
        hp = (volumes.get(m.get("name")) or {}).get("hostPath") or {}
        if hp.get("path") == host_path:
            return m.get("mountPath")
    return None


def check_tenant_pod(where, pod, problems):
    spec = pod.get("spec") or {}
    volumes = check_pod_spec(where, spec, problems)
    for c in spec.get("containers") or []:
        if mounts_host(c, volumes, LEDGER_DIR) != LEDGER_DIR:
            problems.append(f"{where}: container {c['name']} does not mount the node's {LEDGER_DIR} at {LEDGER_DIR}")
        if mounts_host(c, volumes, LIB_DIR) != LIB_DIR:
            problems.append(f"{where}: container {c['name']} does not mount the node's {LIB_DIR} at {LIB_DIR}")
        preload_at = mounts_host(c, volumes, PRELOAD_FILE)
        command = c.get("command") or []
        env = {e["name"]: e for e in c.get("env") or [] if "name" in e}
        if preload_at is not None:
            if preload_at != "/etc/ld.so.preload":
                problems.append(f"{where}: {PRELOAD_FILE} must be mounted at /etc/ld.so.preload")
            vol = next(v for v in spec["volumes"] if (v.get("hostPath") or {}).get("path") == PRELOAD_FILE)
            if vol["hostPath"].get("type") != "File":
                problems.append(f"{where}: the ld.so.preload hostPath must be type File (else a missing file fails open)")
        elif not (command[:1] == [RUN] or LIBRARY in str(env.get("LD_PRELOAD", {}).get("value", ""))
                  or any(LIBRARY in str(a) for a in command + (c.get("args") or []))):
            problems.append(f"{where}: container {c['name']} loads gpushare neither by /etc/ld.so.preload, "
                            f"{RUN} nor LD_PRELOAD={LIBRARY}")
        if command[:1] == [RUN] and "--" not in command:
            problems.append(f"{where}: gpushare-run needs -- before the command")
        for var, field in (("POD_NAMESPACE", "metadata.namespace"), ("POD_NAME", "metadata.name")):
            got = ((env.get(var) or {}).get("valueFrom") or {}).get("fieldRef", {}).get("fieldPath")
            if got != field:
                problems.append(f"{where}: container {c['name']}: {var} must come from the downward API ({field})")
        if (env.get("CONTAINER_NAME") or {}).get("value") != c["name"]:
            problems.append(f"{where}: container {c['name']}: CONTAINER_NAME must be the container's name")


def check(docs, node_install):
    problems = []
    objects = []
    for name, documents in docs.items():
        for i, d in enumerate(documents):
            where = f"{name}[{i}]"
            if not isinstance(d, dict):
                problems.append(f"{where}: not a mapping")
                continue
            kind = d.get("kind")
            meta = d.get("metadata") or {}
            if kind not in API_VERSIONS:
                problems.append(f"{where}: unexpected kind {kind!r}")
                continue
            if d.get("apiVersion") != API_VERSIONS[kind]:
                problems.append(f"{where}: {kind} needs apiVersion {API_VERSIONS[kind]}")
            if not DNS_SUBDOMAIN.match(str(meta.get("name", ""))):
                problems.append(f"{where}: metadata.name {meta.get('name')!r} is missing or invalid")
            objects.append((f"{where} {kind}/{meta.get('name')}", d))

    daemonsets = [(w, d) for w, d in objects if d["kind"] == "DaemonSet"]
    services = [(w, d) for w, d in objects if d["kind"] == "Service"]
    pods = [(w, d) for w, d in objects if d["kind"] == "Pod"]
    if len(daemonsets) != 1:
        problems.append(f"expected one DaemonSet, found {len(daemonsets)}")
    for where, ds in daemonsets:
        spec = ds.get("spec") or {}
        template = spec.get("template") or {}
        labels = (template.get("metadata") or {}).get("labels") or {}
        selector = (spec.get("selector") or {}).get("matchLabels") or {}
        if not selector or any(labels.get(k) != v for k, v in selector.items()):
            problems.append(f"{where}: spec.selector.matchLabels must be non-empty and match the template's labels")
        pod = template.get("spec") or {}
        volumes = check_pod_spec(where, pod, problems)
        if not any(t.get("key") == "nvidia.com/gpu" for t in pod.get("tolerations") or []):
            problems.append(f"{where}: no toleration for nvidia.com/gpu taints")
        installs = [c for c in pod.get("initContainers") or [] if "node-install.sh" in " ".join(c.get("command") or [])]
        if not installs:
            problems.append(f"{where}: no init container runs node-install.sh")
        for c in installs:
            if mounts_host(c, volumes, LIB_DIR) != "/host" + LIB_DIR:
                problems.append(f"{where}: the installer must mount the node's {LIB_DIR} at /host{LIB_DIR}")
            if mounts_host(c, volumes, LEDGER_DIR) != "/host" + LEDGER_DIR:
                problems.append(f"{where}: the installer must mount the node's {LEDGER_DIR} at /host{LEDGER_DIR}")
        exporters = [c for c in pod.get("containers") or [] if "gpushare-exporter" in " ".join(c.get("command") or [])]
        if not exporters:
            problems.append(f"{where}: no container runs gpushare-exporter")
        for c in exporters:
            args = c.get("args") or []
            if "--ledger-dir" not in args or args[args.index("--ledger-dir") + 1:][:1] != [LEDGER_DIR]:
                problems.append(f"{where}: the exporter must read --ledger-dir {LEDGER_DIR}")
            if mounts_host(c, volumes, LEDGER_DIR) != LEDGER_DIR:
                problems.append(f"{where}: the exporter must mount the node's {LEDGER_DIR}")
            if not any(p.get("name") == "metrics" for p in c.get("ports") or []):
                problems.append(f"{where}: the exporter has no port named metrics")
        for svc_where, svc in services:
            sel = (svc.get("spec") or {}).get("selector") or {}
            if not sel or any(labels.get(k) != v for k, v in sel.items()):
                problems.append(f"{svc_where}: selector does not select the DaemonSet's pods")
            if svc.get("metadata", {}).get("namespace") != ds.get("metadata", {}).get("namespace"):
                problems.append(f"{svc_where}: not in the DaemonSet's namespace")
            ports = {p.get("name") for c in pod.get("containers") or [] for p in c.get("ports") or []}
            for p in (svc.get("spec") or {}).get("ports") or []:
                if p.get("targetPort") not in ports:
                    problems.append(f"{svc_where}: targetPort {p.get('targetPort')!r} is no container port of the DaemonSet")
    if not services:
        problems.append("no Service for the exporter")
    loaders = {"preload": 0, "entrypoint": 0}
    for where, pod in pods:
        check_tenant_pod(where, pod, problems)
        for c in (pod.get("spec") or {}).get("containers") or []:
            if any(m.get("mountPath") == "/etc/ld.so.preload" for m in c.get("volumeMounts") or []):
                loaders["preload"] += 1
            elif (c.get("command") or [])[:1] == [RUN]:
                loaders["entrypoint"] += 1
    for way, count in loaders.items():
        if count == 0:
            problems.append(f"no example pod loads gpushare by its {way}")
    for needed in (LIBRARY.replace(LIB_DIR, "$HOST_PREFIX"), "etc/ld.so.preload", "chmod 1777"):
        if needed not in node_install:
            problems.append(f"node-install.sh does not mention {needed!r}")
    return problems


def validate(deploy_dir):
    docs, problems = load(deploy_dir)
    with open(os.path.join(deploy_dir, "node-install.sh")) as f:
        node_install = f.read()
    return problems + check(docs, node_install)


def self_test(deploy_dir):
    """Each mutation must be reported, with the expected words."""
    docs, problems = load(deploy_dir)
    assert not problems, problems
    with open(os.path.join(deploy_dir, "node-install.sh")) as f:
        node_install = f.read()

    def first(kind, d):
        return next(x for docs_ in d.values() for x in docs_ if x.get("kind") == kind)

    def ds_pod(d):
        return first("DaemonSet", d)["spec"]["template"]["spec"]

    def preload_pod(d):
        return next(x for x in d["examples/pod-ld-so-preload.yaml"] if x["kind"] == "Pod")["spec"]

    mutations = {
        "selector does not select": lambda d: first("Service", d)["spec"].update(selector={"app": "other"}),
        "matchLabels must be non-empty": lambda d: first("DaemonSet", d)["spec"]["selector"].update(matchLabels={"x": "y"}),
        "mounts undefined volume": lambda d: ds_pod(d)["volumes"].pop(0),
        "no init container runs node-install.sh": lambda d: ds_pod(d).pop("initContainers"),
        "must read --ledger-dir": lambda d: ds_pod(d)["containers"][0].update(args=["--listen", ":9400"]),
        "targetPort 'web'": lambda d: first("Service", d)["spec"]["ports"][0].update(targetPort="web"),
        "must be type File": lambda d: next(v for v in preload_pod(d)["volumes"] if v["name"] == "ld-so-preload")["hostPath"].update(type="FileOrCreate"),
        "CONTAINER_NAME must be the container's name": lambda d: preload_pod(d)["containers"][0].update(name="other"),
        "POD_NAME must come from the downward API": lambda d: preload_pod(d)["containers"][0]["env"].__setitem__(
            3, {"name": "POD_NAME", "value": "fixed"}),
        "needs apiVersion apps/v1": lambda d: first("DaemonSet", d).update(apiVersion="extensions/v1beta1"),
        "no example pod loads gpushare by its preload": lambda d: [
            d.pop(k) for k in ("examples/pod-ld-so-preload.yaml", "examples/pod-hami.yaml")],
        "does not mount the node's /var/run/gpushare": lambda d: preload_pod(d)["containers"][0]["volumeMounts"].pop(),
        "loads gpushare neither": lambda d: next(x for x in d["examples/pod-entrypoint.yaml"])["spec"]["containers"][0].update(
            command=["python3", "serve.py"]),
    }
    failed = 0
    for expected, mutate in mutations.items():
        broken = copy.deepcopy(docs)
        mutate(broken)
        found = check(broken, node_install)
        if not any(expected in p for p in found):
            print(f"self-test FAIL: breaking it so should report '{expected}', got {found}")
            failed += 1
    if "chmod 1777" not in node_install or not any("chmod 1777" in p for p in check(docs, node_install.replace("chmod 1777", "chmod 755"))):
        print("self-test FAIL: node-install.sh without chmod 1777 is not reported")
        failed += 1
    with open(os.path.join(deploy_dir, "daemonset.yaml")) as f:
        text = f.read()
    try:
        list(yaml.safe_load_all(text.replace("  selector:", "  selector: [", 1)))
        print("self-test FAIL: broken YAML parsed")
        failed += 1
    except yaml.YAMLError:
        pass
    print(f"self-test: {len(mutations) + 2 - failed} passed, {failed} failed")
    return failed == 0


def main(argv):
    if len(argv) == 3 and argv[1] == "--self-test":
        return 0 if self_test(argv[2]) else 1
    if len(argv) != 2:
        print(__doc__)
        return 2
    problems = validate(argv[1])
    for p in problems:
        print(f"FAIL: {p}")
    if not problems:
        docs, _ = load(argv[1])
        print(f"OK: {sum(len(v) for v in docs.values())} objects in {len(docs)} files")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
