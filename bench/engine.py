"""Engine bench: graphs of 1,000 and 10,000 file resources (issue 3, item 11).

Each size runs in a child process (so peak RSS is its own) on real files in a
temp dir, with the same engine, watcher and file kind the agent uses:

  first converge   parse the graph + create every file, until the engine is idle
  idle re-check    every resource checked again with nothing to change
  edit -> restore  an external write to one file until the agent has put it back
                   (median and p90 of 50 edits)
  peak RSS         of the child process

Beside the converge time it prints the floor: the same files written with the
same atomic write (temp file, fsync, link) by a bare thread pool, no engine,
so a slow or busy disk shows as such.

Targets: 10,000 files converge in at most 5 s; an edit is restored in at most
50 ms at the median. Run: .venv/bin/python bench/engine.py [--sizes 1000,10000]

A second table (bench/engine_kinds.py, as root) has issue 15's rows: 100 pkg
resources in one dnf transaction beside one `dnf install` of the same 100
(target <= 1.3x), and a killed service running again (target <= 0.5 s at the
median) beside systemd's own Restart=always.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SIZES = (1000, 10000)
EDITS = 50
SUBDIRS = 10


def write_graph(folder: Path, count: int) -> Path:
    lines = ["graph: bench", "resources:", "  file:"]
    for i in range(count):
        lines += [
            f"  - name: f{i}",
            f"    path: {folder}/d{i % SUBDIRS}/f{i}",
            f'    content: "file number {i}\\n"',
        ]
    graph = folder / "graph.yaml"
    graph.write_text("\n".join(lines) + "\n")
    return graph


def child(count: int) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from mgmt.engine.scheduler import Engine
    from mgmt.engine.watcher import FileWatcher
    from mgmt.graph import load_graph
    from mgmt.resources.base import Init

    with tempfile.TemporaryDirectory(prefix="mgmt-bench-") as tmp:
        folder = Path(tmp)
        graph_path = write_graph(folder, count)
        watcher = FileWatcher()
        state = folder / "state"
        stopping = threading.Event()

        def make_init(spec, logger, event):
            return Init("bench", logger, state / spec.name, watcher, event, None, stopping)

        engine = Engine(make_init)
        try:
            started = time.perf_counter()
            graph = load_graph(graph_path)
            parsed = time.perf_counter()
            engine.update(graph.local(), graph.edges)
            if not engine.wait_idle(120):
                raise SystemExit("did not converge")
            converged = time.perf_counter()
            # Let the events of our own writes drain before the idle re-check.
            time.sleep(0.5)
            engine.wait_idle(30)
            runs_before = engine.runs
            t0 = time.perf_counter()
            engine.poke_all()
            engine.wait_idle(60)
            recheck = time.perf_counter() - t0
            assert engine.runs - runs_before >= count
            latencies = []
            rng = random.Random(42)
            for _ in range(EDITS):
                i = rng.randrange(count)
                path = folder / f"d{i % SUBDIRS}" / f"f{i}"
                wanted = f"file number {i}\n".encode()
                t0 = time.perf_counter()
                with open(path, "wb") as handle:
                    handle.write(b"tampered\n")
                while True:
                    try:
                        if path.read_bytes() == wanted:
                            break
                    except FileNotFoundError:
                        pass
                    if time.perf_counter() - t0 > 5:
                        raise SystemExit(f"edit of {path} not restored in 5 s")
                    time.sleep(0.0002)
                latencies.append(time.perf_counter() - t0)
                time.sleep(0.01)
            failed = engine.failed()
        finally:
            engine.stop()
            watcher.close()
    latencies.sort()
    return {
        "count": count,
        "parse": parsed - started,
        "converge": converged - started,
        "recheck": recheck,
        "restore_median": statistics.median(latencies),
        "restore_p90": latencies[int(len(latencies) * 0.9)],
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "failed": len(failed),
        "threads": threading.active_count(),
    }


def floor(count: int) -> float:
    """The disk's share: the same files written the same way by a bare thread pool."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from concurrent.futures import ThreadPoolExecutor

    from mgmt.engine.scheduler import default_workers
    from mgmt.resources.file import atomic_write

    with tempfile.TemporaryDirectory(prefix="mgmt-bench-floor-") as tmp:
        for d in range(SUBDIRS):
            os.mkdir(f"{tmp}/d{d}")

        def write(i: int) -> None:
            atomic_write(f"{tmp}/d{i % SUBDIRS}/f{i}", f"file number {i}\n".encode(), 0o644)

        started = time.perf_counter()
        with ThreadPoolExecutor(default_workers()) as pool:
            list(pool.map(write, range(count)))
        return time.perf_counter() - started


def run_child(count: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(count)],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"bench child for {count} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument(
        "--no-kinds", action="store_true", help="skip the pkg and svc rows (they need root)"
    )
    args = parser.parse_args()
    if args.child:
        result = child(args.child)
        result["floor"] = floor(args.child)
        print(json.dumps(result))
        return
    load = os.getloadavg()[0]
    results = [run_child(int(n)) for n in args.sizes.split(",")]
    rows = [
        ("parse graph", "parse", "s", "{:.2f}", ""),
        ("first converge (parse + apply)", "converge", "s", "{:.2f}", "<= 5 s at 10,000"),
        ("  same writes, bare thread pool", "floor", "s", "{:.2f}", "(the disk's share)"),
        ("idle re-check of all", "recheck", "s", "{:.2f}", ""),
        ("edit -> restore, median", "restore_median", "ms", "{:.1f}", "<= 50 ms"),
        ("edit -> restore, p90", "restore_p90", "ms", "{:.1f}", ""),
        ("peak RSS", "rss_mb", "MB", "{:.0f}", ""),
        ("failed resources", "failed", "", "{}", "0"),
    ]
    header = ["metric"] + [f"{r['count']:,} files" for r in results] + ["target"]
    table = [header]
    for label, key, unit, fmt, target in rows:
        scale = 1000 if unit == "ms" else 1
        cells = [(fmt.format(r[key] * scale) + (f" {unit}" if unit else "")) for r in results]
        table.append([label, *cells, target])
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    print(
        f"engine bench on {os.cpu_count()} CPU(s), load average {load:.1f} at start, "
        f"files under {tempfile.gettempdir()} (each write fsynced)"
    )
    for n, row in enumerate(table):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)))
        if n == 0:
            print("  ".join("-" * w for w in widths))
    if not args.no_kinds:
        kinds_table()


def kinds_table() -> None:
    """pkg and svc against their peers (bench/engine_kinds.py), on throw-away hosts."""
    if os.geteuid() != 0:
        print("\npkg and svc rows skipped: they need root (namespaces)")
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from engine_kinds import print_table

    print()
    print_table()


if __name__ == "__main__":
    main()
