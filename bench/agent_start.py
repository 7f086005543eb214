"""Bench the remote agent's start: CPU from exec to converged exit, beside a bare python3.

Target (issue 11): at most 30 ms of CPU, python start included, median of many
starts, on this machine's python3. The agent runs from the extracted bundle as
a warm start on a host does (the launcher imports mgmt.cli.run_remote_agent
from shiv's unpacked copy; settings as a JSON line on stdin), on a graph of one
file, converged at once (converged_timeout 0). Side by side in the same run:

- python3 -S -c pass: the floor, what any Python agent pays;
- python3 -I -c pass: the same with site (what `python3 script` costs);
- the agent, graph sent as JSON (what the initiator sends) and as YAML (a graph
  without a JSON form: PyYAML's import on top);
- the agent on a graph that exports a resource: it connects to etcd (a local
  embedded one here), so the etcd client's import and first calls are on top;
- the agent through the bundle's shiv bootstrap (a host's first start, once
  unpacked; warm starts skip it);
- the launcher itself (what START runs) on a cached bundle, cold and warm: cold
  has nothing unpacked (removed before each start, outside the measure), so
  the launcher unpacks the bundle and the agent compiles what it imports;
  warm runs from that copy and its bytecode;
- sh -c true: pyinfra's side of a host. pyinfra runs no agent: each operation
  is shell commands over SSH, so its per-host start is a shell's.

CPU is the children's user+sys time (getrusage), so other work on the machine
only adds noise, not cost; the table also gives the wall-clock median.

    .venv/bin/python bench/agent_start.py [--runs N] [--importtime]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Tuple

from mgmt.remote.orchestration.bundlefile import shiv_build_id
from mgmt.remote.protocol.programs import LAUNCHER
from mgmt.world.server import EmbeddedEtcd
from mgmt_pkg.bundle import build_bundle

SYSTEM_PYTHON = "/usr/bin/python3"
TARGET_MS = 30.0
GRAPH = {
    "graph": "bench",
    "resources": {"file": [{"name": "f", "path": "OUT/f", "content": "x\n", "state": "exists"}]},
}
EXPORT_GRAPH = {
    "graph": "bench",
    "resources": {"file": [{"name": "@@f", "path": "OUT/exported", "content": "x\n"}]},
}
YAML_GRAPH = """\
graph: bench
resources:
  file:
  - name: f
    path: OUT/f
    content: "x\\n"
    state: exists
"""
# What the initiator sends (mgmt.remote), plus converged_timeout 0 so it exits.
SETTINGS = {
    "hostname": "bench", "no_server": True, "seeds": ["http://127.0.0.1:9"],
    "converged_stdout": True, "converged_timeout": 0, "noop": False, "no_watch": False,
    "verbosity": 0,
}  # fmt: skip
# The launcher's warm path, reduced to what the agent's start costs.
DRIVER = """\
import gc;gc.disable()
import os,sys
site,graph,state=sys.argv[1:4]
sys.argv=['mgmt',graph,state]
del sys.path[0]
sys.path.insert(0,site)
from mgmt.cli import run_remote_agent
code=run_remote_agent()
sys.stdout.flush();sys.stderr.flush();os._exit(code)
"""


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Variant(NamedTuple):
    label: str
    argv: List[str]
    env: Dict[str, str]
    stdin: str
    fresh: Optional[Path] = None  # removed before each start (a cold start's unpacked copy)


def _once(
    argv: List[str], env: Dict[str, str], stdin: Optional[str], fresh: Optional[Path] = None
) -> Tuple[float, float]:
    """CPU and wall seconds of one run of ``argv``; ``fresh`` is removed first, unmeasured."""
    if fresh is not None:
        shutil.rmtree(fresh, ignore_errors=True)
    cpu, wall = _cpu(), time.perf_counter()
    done = subprocess.run(
        argv, input=stdin, capture_output=True, text=True, env=env, check=False, timeout=60
    )
    wall, cpu = time.perf_counter() - wall, _cpu() - cpu
    if done.returncode != 0:
        sys.exit(f"bench: {' '.join(argv[:3])} failed: {done.stderr.strip()[-500:]}")
    if fresh is not None and not fresh.is_dir():  # it ran from the zip: not a cold start
        sys.exit(f"bench: {' '.join(argv[:3])} did not make {fresh}")
    return cpu, wall


def _variants(work: Path, site: Path, bundle: Path, etcd_url: str) -> List[Variant]:
    out = work / "out"
    out.mkdir()
    json_graph, yaml_graph = work / "graph.json", work / "graph.yaml"
    json_graph.write_text(json.dumps(GRAPH).replace("OUT", str(out)))
    yaml_graph.write_text(YAML_GRAPH.replace("OUT", str(out)))
    export_graph = work / "export.json"
    export_graph.write_text(json.dumps(EXPORT_GRAPH).replace("OUT", str(out)))
    with_etcd = json.dumps({**SETTINGS, "seeds": [etcd_url]}) + "\n"
    env = {"HOME": str(work), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    settings = json.dumps(SETTINGS) + "\n"
    state = str(work / "state")
    agent = [SYSTEM_PYTHON, "-S", "-c", DRIVER, str(site)]
    shiv_env = {**env, "SHIV_ENTRY_POINT": "mgmt.cli:run_remote_agent"}
    # START's layout of a cached bundle; the graph line is empty (copied apart).
    cache = work / "cache"
    (cache / "bundles").mkdir(parents=True)
    (cache / "shiv").mkdir()  # START makes both; the launcher unpacks into the second
    cached = cache / "bundles" / "bench.pyz"
    shutil.copy(bundle, cached)
    unpacked = cache / "shiv" / f"{cached.name}_{shiv_build_id(cached)}"
    launcher = [SYSTEM_PYTHON, "-S", "-c", LAUNCHER, str(unpacked / "site-packages"), str(cached),
                str(json_graph), state]  # fmt: skip
    launcher_env = {**env, "SHIV_ROOT": str(cache / "shiv")}
    return [Variant(*variant) for variant in [
        ("python3 -S -c pass", [SYSTEM_PYTHON, "-S", "-c", "pass"], env, ""),
        ("python3 -I -c pass", [SYSTEM_PYTHON, "-I", "-c", "pass"], env, ""),
        ("agent, JSON graph", [*agent, str(json_graph), state], env, settings),
        ("agent, YAML graph", [*agent, str(yaml_graph), state], env, settings),
        ("agent, graph that exports (etcd)", [*agent, str(export_graph), state], env, with_etcd),
        ("agent via shiv bootstrap",
         [SYSTEM_PYTHON, "-S", str(bundle), str(json_graph), state], shiv_env, settings),
        ("launcher, cold (unpacks, compiles)", launcher, launcher_env, "\n" + settings, unpacked),
        ("launcher, warm", launcher, launcher_env, "\n" + settings),
        ("sh -c true (pyinfra's host side)", ["/bin/sh", "-c", "true"], env, ""),
    ]]  # fmt: skip


def _importtime(variant: Variant, top: int) -> str:
    """The ``top`` largest self times of one start of ``variant`` (python -X importtime)."""
    argv, env, stdin = variant.argv, variant.env, variant.stdin
    done = subprocess.run(
        [argv[0], "-X", "importtime", *argv[1:]], input=stdin, capture_output=True, text=True,
        env=env, check=False,
    )  # fmt: skip
    rows = []
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "self [us]" not in line:
            _, own, total, name = (part.strip() for part in line.replace(":", "|", 1).split("|"))
            rows.append((int(own), int(total), name))
    rows.sort(reverse=True)
    return "\n".join(f"  {own / 1000:6.2f} ms self {total / 1000:7.2f} ms cum  {name}"
                     for own, total, name in rows[:top])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40, help="starts per variant")
    parser.add_argument("--importtime", action="store_true", help="where the agent's start goes")
    args = parser.parse_args()
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        sys.exit(f"bench: {SYSTEM_PYTHON} not found")
    with (
        tempfile.TemporaryDirectory(prefix="bench-agent-start-") as tmp,
        EmbeddedEtcd(Path(tmp) / "etcd") as etcd,
    ):
        work = Path(tmp)
        info = build_bundle(work / "mgmt")
        env = {"HOME": str(work), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
        _once([SYSTEM_PYTHON, "-I", str(info.path), "--version"], env, None)  # unpack it
        [site] = (work / ".shiv").glob("mgmt_*/site-packages")
        variants = _variants(work, site, info.path, etcd.client_url)
        for variant in variants:  # warm up: pyc written, caches filled
            _once(variant.argv, variant.env, variant.stdin, variant.fresh)
        samples: Dict[str, List[Tuple[float, float]]] = {v.label: [] for v in variants}
        for _ in range(args.runs):  # interleaved, so that load on the machine hits all alike
            for variant in variants:
                samples[variant.label].append(
                    _once(variant.argv, variant.env, variant.stdin, variant.fresh)
                )
        trace = _importtime(variants[2], 15) if args.importtime else ""

    version = subprocess.check_output([SYSTEM_PYTHON, "-V"], text=True).strip()
    print(f"{version}, {args.runs} starts each, bundle {info.size / 1000:.0f} kB")
    header = ("variant", "CPU median", "CPU min", "wall median")
    table = [header]
    for label, runs in samples.items():
        cpu = [c * 1000 for c, _ in runs]
        wall = [w * 1000 for _, w in runs]
        table.append((label, f"{statistics.median(cpu):.1f} ms", f"{min(cpu):.1f} ms",
                      f"{statistics.median(wall):.1f} ms"))  # fmt: skip
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)))
    agent = statistics.median(c * 1000 for c, _ in samples["agent, JSON graph"])
    print(f"target: agent start <= {TARGET_MS:.0f} ms CPU: "
          f"{'met' if agent <= TARGET_MS else 'MISSED'} ({agent:.1f} ms)")  # fmt: skip
    if trace:
        print("largest imports of one agent start (python -X importtime, self time):")
        print(trace)


if __name__ == "__main__":
    main()
