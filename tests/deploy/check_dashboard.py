#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Checks deploy/grafana-dashboard.json: it is a Grafana dashboard whose every panel has queries,
and every metric those queries name is one the exporter serves (its # TYPE lines, read from the
real binary over an empty ledger directory). The Prometheus round trip
(tests/tools/prometheus_round_trip.py) then runs each query against a real Prometheus.

  check_dashboard.py DASHBOARD EXPORTER
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.request

METRIC = re.compile(r"\b(?:gpushare|hami)_[a-zA-Z0-9_]+\b")
# What Grafana substitutes before a query reaches Prometheus, and what the checks put instead.
VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$device_uuid": ".*", "$tenant": ".*"}


def load(path):
    """The dashboard, or an exception saying what is wrong with it."""
    with open(path) as f:
        dash = json.load(f)
    for key in ("title", "uid", "panels", "templating", "schemaVersion"):
        if key not in dash:
            raise ValueError(f"{path}: no '{key}': not a Grafana dashboard")
    return dash


def panels(dash):
    """Every panel that is not a row, rows' collapsed children included."""
    for p in dash["panels"]:
        if p.get("type") == "row":
            yield from p.get("panels") or []
        else:
            yield p


def queries(dash):
    """(panel title, expr) of every panel target and every query variable."""
    for p in panels(dash):
        for t in p.get("targets") or []:
            yield p.get("title"), t.get("expr", "")
    for v in dash["templating"]["list"]:
        if v.get("type") == "query":
            q = v.get("query")
            q = q.get("query") if isinstance(q, dict) else q
            m = re.fullmatch(r"label_values\((.*),\s*\w+\)", q or "")
            yield f"variable {v.get('name')}", m.group(1) if m else q


def substitute(expr):
    for name, value in VARIABLES.items():
        expr = expr.replace(name, value)
    return expr


def served_names(exporter):
    """The metric families the exporter serves with its default names, from its # TYPE lines."""
    with tempfile.TemporaryDirectory() as empty:
        proc = subprocess.Popen([exporter, "--listen", "127.0.0.1:0", "--ledger-dir", empty],
                                stdout=subprocess.PIPE, text=True)
        try:
            line = proc.stdout.readline()
            port = int(re.search(r":(\d+)/metrics", line).group(1))
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
                text = r.read().decode()
        finally:
            proc.kill()
            proc.wait()
    return {m.group(1) for m in re.finditer(r"^# TYPE (\S+) ", text, re.M)}


def problems(dash, served):
    found = []
    seen_panels = 0
    for p in panels(dash):
        seen_panels += 1
        if not any((t.get("expr") or "").strip() for t in p.get("targets") or []):
            found.append(f"panel '{p.get('title')}' has no query")
        if not p.get("datasource"):
            found.append(f"panel '{p.get('title')}' names no datasource")
    if seen_panels == 0:
        found.append("no panels")
    for where, expr in queries(dash):
        names = set(METRIC.findall(expr))
        if not names:
            found.append(f"{where}: '{expr}' names no gpushare metric")
        for name in sorted(names - served):
            found.append(f"{where}: '{name}' is not a metric the exporter serves")
        if "$" in substitute(expr):
            found.append(f"{where}: '{expr}' uses a variable the dashboard does not define")
    return found


def main(argv):
    if len(argv) != 3:
        print(__doc__)
        return 2
    try:
        dash = load(argv[1])
    except (OSError, ValueError) as e:
        print(f"FAIL: {e}")
        return 1
    served = served_names(argv[2])
    found = problems(dash, served)
    # Self-test: a misspelt metric and an empty panel are caught.
    broken = json.loads(json.dumps(dash))
    first = next(panels(broken))
    first["targets"][0]["expr"] = first["targets"][0]["expr"].replace("gpushare_", "gpushare_no_such_", 1)
    if not any("is not a metric the exporter serves" in p for p in problems(broken, served)):
        found.append("self-test: a misspelt metric was not reported")
    first["targets"] = []
    if not any("has no query" in p for p in problems(broken, served)):
        found.append("self-test: a panel without a query was not reported")
    for p in found:
        print(f"FAIL: {p}")
    if not found:
        n = sum(1 for _ in queries(dash))
        print(f"OK: {sum(1 for _ in panels(dash))} panels, {n} queries, every metric served ({len(served)} families)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
