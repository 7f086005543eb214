"""`mgmt-pkg fake-rpm` beside bare rpmbuild (-bs then -bb) on the same spec.

Issue 2's target: fake-rpm takes at most 2x bare rpmbuild. For a phony spec
rpmbuild itself needs ~0.1 s, so Python's start-up and imports dominate; this
prints both in the same run, on the same machine, and their ratio.

    .venv/bin/python bench/fake_rpm.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, List

EXAMPLE = ["-n", "vagrant-libvirt", "-v", "0.0.24", "--iteration", "noop", "-d", "vagrant >= 1.6.5"]


def timed(actions: List[Callable[[], None]], runs: int) -> List[List[float]]:
    """Time each action ``runs`` times, alternating them so that load from
    elsewhere on the machine falls on both alike."""
    times: List[List[float]] = [[] for _ in actions]
    for _ in range(runs):
        for action, spent in zip(actions, times):
            start = time.perf_counter()
            action()
            spent.append(time.perf_counter() - start)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    runs = parser.parse_args().runs
    mgmt_pkg = Path(sys.executable).with_name("mgmt-pkg")
    rpmbuild = shutil.which("rpmbuild")
    if rpmbuild is None or not mgmt_pkg.exists():
        print("needs rpmbuild and the venv's mgmt-pkg (make venv deps)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="bench-fake-rpm-") as temporary:
        work = Path(temporary)
        # As a user runs it: with bytecode. Some shells (CI images, tool sandboxes) set
        # PYTHONDONTWRITEBYTECODE, and then every run recompiles the project's modules.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        quiet = {
            "check": True,
            "stdout": subprocess.DEVNULL,
            "stderr": subprocess.DEVNULL,
            "env": env,
        }
        subprocess.run([mgmt_pkg, "fake-rpm", *EXAMPLE, "--spec-only", "-o", work], **quiet)
        spec = work / "vagrant-libvirt.spec"

        def fake_rpm() -> None:
            subprocess.run([mgmt_pkg, "fake-rpm", *EXAMPLE, "-o", work / "out"], **quiet)

        def bare() -> None:
            for stage in ("-bs", "-bb"):
                subprocess.run(
                    [rpmbuild, stage, "--define", f"_topdir {work / 'top'}", spec], **quiet
                )

        fake_rpm(), bare()  # warm the page cache for both
        ours, theirs = timed([fake_rpm, bare], runs)
    rows = [
        ("mgmt-pkg fake-rpm (spec + SRPM + RPM)", statistics.median(ours), min(ours)),
        ("rpmbuild -bs + rpmbuild -bb", statistics.median(theirs), min(theirs)),
    ]
    print(f"{'what':<40} {'median s':>9} {'best s':>8}   ({runs} runs each)")
    for what, median, best in rows:
        print(f"{what:<40} {median:>9.3f} {best:>8.3f}")
    ratio = (rows[0][1] / rows[1][1], rows[0][2] / rows[1][2])
    print(f"{'ratio (target <= 2.0)':<40} {ratio[0]:>9.2f} {ratio[1]:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
