"""Bench the agent bundle: size and `mgmt --version` start-up, with and without shiv's pyc.

Targets (issue 11): at most 300 kB (853 kB with etcd3gw and its nine
dependencies); `dist/mgmt --version` once extracted as fast as with them or
faster (this machine, that bundle, this bench: 0.062 s wall median). Both variants are
built in this run and measured side by side with the system python3 (-I, a
clean HOME), as a bare remote host would run them. The remote agent's own
start is bench/agent_start.py.

    .venv/bin/python bench/bundle.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mgmt_pkg.bundle import build_bundle

SYSTEM_PYTHON = "/usr/bin/python3"
SIZE_TARGET = 300_000
# `--version` warm median of the 853 kB bundle (etcd3gw 2.5.0) in this bench.
WARM_BEFORE = 0.062
HEAVY_MODULES = ("yaml", "http.client")


def _run_version(bundle: Path, home: Path, importtime: bool = False) -> tuple:
    command = [SYSTEM_PYTHON, "-I", *(["-X", "importtime"] if importtime else []), str(bundle)]
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    start = time.perf_counter()
    done = subprocess.run(
        [*command, "--version"], capture_output=True, text=True, env=env, check=False
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"bench: {bundle} --version failed: {done.stderr.strip()}")
    return elapsed, done.stderr


def _measure(bundle: Path, runs: int, work: Path) -> dict:
    home = Path(tempfile.mkdtemp(prefix="home-", dir=work))
    first, _ = _run_version(bundle, home)  # extracts to ~/.shiv (and compiles, if asked)
    warm = [_run_version(bundle, home)[0] for _ in range(runs)]
    _, trace = _run_version(bundle, home, importtime=True)
    imported = sorted(
        {m for m in HEAVY_MODULES for line in trace.splitlines() if line.endswith(f"| {m}")}
    )
    return {
        "size": bundle.stat().st_size,
        "first": first,
        "warm": statistics.median(warm),
        "warm_max": max(warm),
        "heavy": ",".join(imported) or "none",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="warm runs per variant")
    args = parser.parse_args()
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        sys.exit(f"bench: {SYSTEM_PYTHON} not found")
    with tempfile.TemporaryDirectory(prefix="bench-bundle-") as tmp:
        work = Path(tmp)
        rows = []
        for label, compile_pyc in (("default (no pyc)", False), ("--compile-pyc", True)):
            info = build_bundle(work / ("pyc" if compile_pyc else "plain") / "mgmt",
                                compile_pyc=compile_pyc)  # fmt: skip
            rows.append((label, info.sha256[:12], _measure(info.path, args.runs, work)))

    print(f"system python: {subprocess.check_output([SYSTEM_PYTHON, '-V'], text=True).strip()}")
    header = ("variant", "sha256", "size", "first run (extract)", "--version warm median",
              "warm max", "heavy imports at --version")  # fmt: skip
    table = [header]
    for label, digest, m in rows:
        table.append((
            label, digest, f"{m['size'] / 1e3:.0f} kB", f"{m['first']:.3f} s",
            f"{m['warm']:.3f} s", f"{m['warm_max']:.3f} s", m["heavy"],
        ))  # fmt: skip
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)))
    best = rows[0][2]  # the default build, what `mgmt-pkg bundle` makes
    print(
        f"targets: size <= {SIZE_TARGET / 1e3:.0f} kB: "
        f"{'met' if best['size'] <= SIZE_TARGET else 'MISSED'}; "
        f"--version warm <= {WARM_BEFORE} s (before): "
        f"{'met' if best['warm'] <= WARM_BEFORE else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
