"""`mgmt-pkg fake-rpm` and `mgmt-pkg rpm` beside bare rpmbuild (-bs then -bb).

Issue 2's target: fake-rpm takes at most 2x bare rpmbuild on the same spec.
For a phony spec rpmbuild itself needs ~0.1 s, so Python's start-up and
imports dominate. Issue 16's target: `mgmt-pkg rpm` of a 1,000-file tree takes
at most 1.5x bare rpmbuild -bs + -bb of the same spec and Source0 tarball
(which mgmt-pkg rpm itself made). Both pairs run in the same run, alternating,
on the same machine; the table prints them and their ratios.

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
from typing import Callable, List, Tuple

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


Action = Callable[[], None]


def phony_pair(mgmt_pkg: Path, rpmbuild: str, work: Path, quiet: dict) -> Tuple[Action, Action]:
    work.mkdir()
    subprocess.run([mgmt_pkg, "fake-rpm", *EXAMPLE, "--spec-only", "-o", work], **quiet)
    spec = work / "vagrant-libvirt.spec"

    def ours() -> None:
        subprocess.run([mgmt_pkg, "fake-rpm", *EXAMPLE, "-o", work / "out"], **quiet)

    def bare() -> None:
        for stage in ("-bs", "-bb"):
            subprocess.run([rpmbuild, stage, "--define", f"_topdir {work / 'top'}", spec], **quiet)

    return ours, bare


def files_pair(mgmt_pkg: Path, rpmbuild: str, work: Path, quiet: dict) -> Tuple[Action, Action]:
    """A tree of 1,000 files (40 folders of 25, a few KB each), and for bare
    rpmbuild the spec and Source0 that mgmt-pkg rpm made from it."""
    tree = work / "tree"
    for number in range(1000):
        path = tree / f"dir{number // 25:02d}" / f"file{number:04d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"line {number}\n".encode() * (number % 200 + 1))
    args = ["rpm", "-n", "tree", "-v", "1.0", f"{tree}/=/usr/share/tree"]
    subprocess.run([mgmt_pkg, *args, "--srpm-only", "-o", work / "srpm"], **quiet)
    sources = work / "top" / "SOURCES"
    sources.mkdir(parents=True)
    subprocess.run(f"rpm2cpio {work / 'srpm' / 'tree-1.0-1.src.rpm'} | cpio -id --quiet",
                   shell=True, cwd=sources, **quiet)  # fmt: skip
    spec = work / "srpm" / "tree.spec"

    def ours() -> None:
        subprocess.run([mgmt_pkg, *args, "-o", work / "out"], **quiet)

    def bare() -> None:
        for stage in ("-bs", "-bb"):
            subprocess.run([rpmbuild, stage, "--define", f"_topdir {work / 'top'}", spec], **quiet)

    return ours, bare


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
        quiet = {"check": True, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL,
                 "env": env}  # fmt: skip
        pairs = [
            phony_pair(mgmt_pkg, rpmbuild, work / "phony", quiet),
            files_pair(mgmt_pkg, rpmbuild, work / "files", quiet),
        ]
        for ours, bare in pairs:
            ours(), bare()  # warm the page cache for both
        times = timed([action for pair in pairs for action in pair], runs)
    rows = [
        ("mgmt-pkg fake-rpm (spec + SRPM + RPM)", times[0], 2.0),
        ("  rpmbuild -bs + -bb, same spec", times[1], None),
        ("mgmt-pkg rpm, 1,000 files (all three)", times[2], 1.5),
        ("  rpmbuild -bs + -bb, same spec+tarball", times[3], None),
    ]
    print(f"{'what':<42} {'median s':>9} {'best s':>8}   ({runs} runs each)")
    for index, (what, spent, target) in enumerate(rows):
        print(f"{what:<42} {statistics.median(spent):>9.3f} {min(spent):>8.3f}")
        if target is not None:
            continue
        ours = times[index - 1]
        ratio = (statistics.median(ours) / statistics.median(spent), min(ours) / min(spent))
        label = f"  ratio (target <= {rows[index - 1][2]})"
        print(f"{label:<42} {ratio[0]:>9.2f} {ratio[1]:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
