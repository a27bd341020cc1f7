#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The exporter checked by Prometheus' own tools, over ledgers with live tenants (the library on
the fake driver): `promtool check metrics` on what it serves, then a real `prometheus` server on
127.0.0.1 (a free port, a 1 s scrape of the exporter, its data in a temp dir) queried over its
HTTP API for a tenant's used bytes, a device's usable bytes and a counter that moved, compared with
`gpushare-smi --json`; HAMi's names through queries written for HAMi; and every query of
deploy/grafana-dashboard.json returning data. Everything it starts is stopped by pid.

  prometheus_round_trip.py --exporter E --smi S --client C --preload LIB --fake-dir D --dashboard J
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "deploy"))
import check_dashboard  # noqa: E402  (the dashboard's queries and its variables)

GIB = 1 << 30
POD = ("team-a", "serve-0", "vllm")
POD_TENANT = "/".join(POD)
DEADLINE_S = 50  # the whole test; CI's budget is one minute


class Failed(Exception):
    pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read().decode()


def wait_for(what, probe, timeout_s):
    """probe() until it returns something true; Failed naming `what` and the last value after timeout_s."""
    end = time.monotonic() + timeout_s
    last = None
    while True:
        try:
            last = probe()
        except (OSError, ValueError) as e:
            last = e
        if last and not isinstance(last, Exception):
            return last
        if time.monotonic() > end:
            raise Failed(f"{what}: still {last!r} after {timeout_s} s")
        time.sleep(0.2)


class Run:
    def __init__(self, args):
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix="gpushare-prom-")
        self.ledger = os.path.join(self.tmp, "ledger")
        self.procs = []  # everything started, stopped by pid at the end
        self.passed = 0

    def check(self, name, ok, detail=""):
        if not ok:
            raise Failed(f"{name}: {detail}")
        print(f"PASS {name}")
        self.passed += 1

    def start(self, argv, env=None, **kw):
        p = subprocess.Popen(argv, env=env, **kw)
        self.procs.append(p)
        return p

    def stop_all(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                os.kill(p.pid, signal.SIGTERM)
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    os.kill(p.pid, signal.SIGKILL)
                    p.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def tenant_env(self, name, request, limit):
        env = {k: v for k, v in os.environ.items() if not k.startswith("GPUSHARE_")}
        env.update(LD_PRELOAD=self.args.preload, LD_LIBRARY_PATH=self.args.fake_dir, GPUSHARE_FAKE_DEVICES="16Gi",
                   GPUSHARE_FAKE_STATE_DIR=self.tmp, GPUSHARE_LEDGER_DIR=self.ledger, GPUSHARE_TENANT=name,
                   GPUSHARE_MEM_REQUEST=request, GPUSHARE_MEM_LIMIT=limit)
        return env

    def hold(self, name, request, limit, nbytes):
        p = self.start([self.args.client, "link", "hold", str(nbytes)], self.tenant_env(name, request, limit),
                       stdout=subprocess.PIPE, text=True)
        for line in p.stdout:
            if line.startswith("held "):
                if int(line.split()[1]) != nbytes:
                    raise Failed(f"tenant {name} held {line.split()[1]} bytes, not {nbytes}")
                return p
        raise Failed(f"tenant {name} exited before holding its memory (rc {p.wait()})")

    def smi(self):
        out = subprocess.run([self.args.smi, "--json", "--ledger-dir", self.ledger], capture_output=True, text=True,
                             check=True).stdout
        ledgers = json.loads(out)["ledgers"]
        if len(ledgers) != 1:
            raise Failed(f"expected one ledger, gpushare-smi shows {len(ledgers)}")
        return ledgers[0]

    def query(self, expr):
        status, body = get(f"{self.prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        reply = json.loads(body)
        if reply.get("status") != "success":
            raise Failed(f"Prometheus refused '{expr}': {reply}")
        return reply["data"]["result"]

    def value(self, expr):
        """The one sample `expr` returns now, or None."""
        result = self.query(expr)
        if len(result) > 1:
            raise Failed(f"'{expr}' returned {len(result)} series, expected one: {result}")
        return float(result[0]["value"][1]) if result else None

    def equal_soon(self, name, expr, expected, timeout_s=10):
        """Prometheus' value of expr equals `expected` within timeout_s (the next scrapes)."""
        try:
            wait_for(name, lambda: self.value(expr) == expected, timeout_s)
        except Failed:
            raise Failed(f"{name}: Prometheus has {self.value(expr)} for '{expr}', gpushare-smi {expected}")
        self.check(name, True)

    def run(self):
        a = self.args
        for tool in ("promtool", "prometheus"):
            if shutil.which(tool) is None:
                raise Failed(f"{tool} not found: install Debian's 'prometheus' package (scripts/setup.sh does)")

        # Two tenants on one 16 GiB fake GPU: a Kubernetes container bursting past its request, and a plain one.
        self.hold(POD_TENANT, "2Gi", "6Gi", 4 * GIB)
        self.hold("batch", "4Gi", "4Gi", 1 * GIB)

        exporter = self.start([a.exporter, "--listen", "127.0.0.1:0", "--ledger-dir", self.ledger, "--names", "both"],
                              dict(os.environ, NODE_NAME="node-a"), stdout=subprocess.PIPE, text=True)
        port = int(exporter.stdout.readline().rsplit(":", 1)[1].split("/")[0])
        status, text = get(f"http://127.0.0.1:{port}/metrics")
        lint = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
        self.check("promtool check metrics (--names both)", lint.returncode == 0 and not lint.stdout + lint.stderr,
                   f"rc {lint.returncode}: {lint.stdout}{lint.stderr}")

        config = os.path.join(self.tmp, "prometheus.yml")
        with open(config, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    "scrape_configs:\n  - job_name: gpushare\n"
                    f"    static_configs:\n      - targets: ['127.0.0.1:{port}']\n")
        checked = subprocess.run(["promtool", "check", "config", config], capture_output=True, text=True)
        self.check("promtool check config", checked.returncode == 0, checked.stdout + checked.stderr)
        prom_port = free_port()
        self.prom = f"http://127.0.0.1:{prom_port}"
        with open(os.path.join(self.tmp, "prometheus.log"), "w") as log:
            server = self.start(["prometheus", f"--config.file={config}", f"--storage.tsdb.path={self.tmp}/data",
                                 f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"],
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for("Prometheus ready", lambda: server.poll() is None and get(f"{self.prom}/-/ready")[0] == 200, 20)
        except Failed:
            with open(os.path.join(self.tmp, "prometheus.log")) as log:
                raise Failed(f"Prometheus did not start (rc {server.poll()}):\n{log.read()}")
        wait_for("a first scrape", lambda: self.value('up{job="gpushare"}') == 1, 15)
        self.check("Prometheus scraped the exporter", True)

        snap = self.smi()
        pod = next(t for t in snap["tenants"] if t["name"] == POD_TENANT)
        self.equal_soon("a tenant's used bytes", f'gpushare_memory_used_bytes{{tenant="{POD_TENANT}"}}', pod["used_bytes"])
        self.equal_soon("a device's usable bytes", f'gpushare_device_memory_usable_bytes{{device_uuid="{snap["uuid"]}"}}',
                        snap["usable_bytes"])
        self.equal_soon("no OOM denial yet", f'gpushare_oom_denials_total{{tenant="{POD_TENANT}"}}', pod["oom_denials"])

        # A second process of the pod fills its limit: the allocation past it is refused, one denial.
        filled = subprocess.run([a.client, "link", "fill"], env=self.tenant_env(POD_TENANT, "2Gi", "6Gi"),
                                capture_output=True, text=True, timeout=20)
        if "fill_stop_rc 2" not in filled.stdout:
            raise Failed(f"the fill was not refused with CUDA_ERROR_OUT_OF_MEMORY:\n{filled.stdout}{filled.stderr}")
        pod = next(t for t in self.smi()["tenants"] if t["name"] == POD_TENANT)
        self.check("gpushare-smi counts the denial", pod["oom_denials"] >= 1, str(pod["oom_denials"]))
        self.equal_soon("the counter moved in Prometheus", f'gpushare_oom_denials_total{{tenant="{POD_TENANT}"}}',
                        pod["oom_denials"])
        self.check("changes() sees it move", (self.value(f'changes(gpushare_oom_denials_total{{tenant="{POD_TENANT}"}}[1m])')
                                             or 0) >= 1)
        self.equal_soon("used bytes after the fill", f'gpushare_memory_used_bytes{{tenant="{POD_TENANT}"}}',
                        pod["used_bytes"])

        # HAMi's names, through queries written for HAMi (its metrics reference's examples).
        ns, name, container = POD
        hami = f'namespace="{ns}",pod="{name}",container="{container}"'
        self.equal_soon("hami_vgpu_memory_used_bytes", f"hami_vgpu_memory_used_bytes{{{hami}}}", pod["used_bytes"])
        self.equal_soon("hami_vgpu_memory_used_bytes / hami_vgpu_memory_limit_bytes",
                        f"hami_vgpu_memory_used_bytes{{{hami}}} / hami_vgpu_memory_limit_bytes{{{hami}}}",
                        pod["used_bytes"] / pod["limit_bytes"])
        self.equal_soon("sum by (namespace) (hami_vgpu_memory_used_bytes)",
                        f'sum by (namespace) (hami_vgpu_memory_used_bytes{{namespace="{ns}"}})', pod["used_bytes"])
        snap = self.smi()
        self.equal_soon("hami_host_gpu_memory_used_bytes",
                        f'hami_host_gpu_memory_used_bytes{{device_uuid="{snap["uuid"]}",node="node-a"}}',
                        snap["sum_used_bytes"] + snap["hidden_bytes"])
        self.check("only Kubernetes containers under HAMi's names",
                   len(self.query("hami_vgpu_memory_used_bytes")) == 1 and len(self.query("gpushare_memory_used_bytes")) == 2)

        # Every query of the dashboard returns data once rates have two samples.
        dash = check_dashboard.load(a.dashboard)
        for where, expr in check_dashboard.queries(dash):
            promql = check_dashboard.substitute(expr)
            wait_for(f"dashboard '{where}': {promql}", lambda: self.query(promql), 10)
        self.check("every dashboard query returns data", True)


def main():
    parser = argparse.ArgumentParser()
    for flag in ("--exporter", "--smi", "--client", "--preload", "--fake-dir", "--dashboard"):
        parser.add_argument(flag, required=True)
    run = Run(parser.parse_args())
    signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(Failed(f"over {DEADLINE_S} s")))
    signal.alarm(DEADLINE_S)
    start = time.monotonic()
    try:
        run.run()
        failed = 0
    except (Failed, subprocess.SubprocessError, OSError, StopIteration) as e:
        print(f"FAIL {e}")
        failed = 1
    finally:
        signal.alarm(0)
        run.stop_all()
    print(f"prometheus round trip: {run.passed} passed, {failed} failed ({time.monotonic() - start:.1f} s)")
    return failed


if __name__ == "__main__":
    sys.exit(main())
