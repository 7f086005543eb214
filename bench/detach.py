"""Detached clusters (issue 14): drift undone and exports exchanged, detached vs attached.

Three throw-away hosts on one bridge (tests/support/hosts.py), the write-up's
graphs on a and b and one like them on c. Each mode runs the same graphs:

- detached: `mgmt run --remote ... --detach` (the cluster's etcd on the hosts,
  3 members), measured after the initiator has exited, then `mgmt stop`;
- attached: `mgmt run --remote ...` (the initiator's etcd, reached through the
  SSH tunnels), measured while it runs, then ^C.

Measured from this machine through /proc/<pid>/root of each host (its own /tmp),
polling every 0.2 ms:

- restore: /tmp/file1a replaced on a (as an editor saves), until the agent
  has put it back;
- export: the graph a's agent runs edited in place (its exported file2a
  changes), until b and c both hold the new content.

Targets (issue 14): restore <= 50 ms and export <= 0.2 s at the median, detached.
Needs root. Run: .venv/bin/python bench/detach.py [--repeat 21]
"""

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from support.hosts import HostPool, ssh_hosts  # noqa: E402

MGMT = [sys.executable, "-m", "mgmt"]
DETACHED_DIR = "root/.local/state/mgmt/detached"
POLL = 0.0002
TIMEOUT = 10.0
TARGETS = {"restore": "50 ms", "export": "200 ms"}


def graph(host: str) -> str:
    return f"""\
graph: mygraph
comment: remote example, host {host}
resources:
  file:
  - name: file1{host}
    path: "/tmp/file1{host}"
    content: |
      i am file1{host}
    state: exists
  - name: "@@file2{host}"
    path: "/tmp/file2{host}"
    content: |
      i am file2{host}, exported from host {host}
    state: exists
collect:
- kind: file
  pattern: "/tmp/"
edges: []
remote: {host}
"""


def root(pool: HostPool, name: str) -> Path:
    return Path(f"/proc/{pool[name].pid}/root")


def wait(predicate: Callable[[], bool], what: str) -> float:
    """Seconds until ``predicate()`` holds (polled every POLL)."""
    started = time.perf_counter()
    while True:
        try:
            if predicate():
                return time.perf_counter() - started
        except OSError:
            pass
        if time.perf_counter() - started > TIMEOUT:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(POLL)


def read(path: Path) -> str:
    return path.read_text()


def measure_restore(pool: HostPool, repeat: int) -> List[float]:
    target = root(pool, "a") / "tmp/file1a"
    found = []
    for _ in range(repeat):
        wait(lambda: read(target) == "i am file1a\n", "file1a in place")
        temp = target.with_name(".file1a.bench")
        temp.write_text("tampered\n")
        started = time.perf_counter()
        os.replace(temp, target)  # as an editor saves: one whole change
        wait(lambda: read(target) == "i am file1a\n", "file1a restored")
        found.append(time.perf_counter() - started)
    return found


def measure_export(pool: HostPool, graph_path: Path, repeat: int) -> List[float]:
    others = [root(pool, n) / "tmp/file2a" for n in ("b", "c")]
    found = []
    for i in range(repeat):
        mark = f"edit {i} {time.monotonic_ns()}"
        text = graph("a").replace("exported from host a", mark)
        temp = graph_path.with_name("." + graph_path.name + ".bench")
        temp.write_text(text)
        started = time.perf_counter()
        os.replace(temp, graph_path)
        wait(lambda m=mark: all(m in read(p) for p in others), "the export on b and c")
        found.append(time.perf_counter() - started)
    return found


def run_detached(pool: HostPool, env: Dict[str, str], graphs: List[Path], repeat: int) -> dict:
    remotes = [x for g in graphs for x in ("--remote", str(g))]
    done = subprocess.run([*MGMT, "run", "--tmp-prefix", "--detach", *remotes], env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"--detach failed:\n{done.stdout}{done.stderr}")
    try:
        return {
            "restore": measure_restore(pool, repeat),
            "export": measure_export(pool, root(pool, "a") / DETACHED_DIR / "a.yaml", repeat),
        }
    finally:
        subprocess.run([*MGMT, "stop", *remotes], env=env, capture_output=True, check=False)


def run_attached(pool: HostPool, env: Dict[str, str], graphs: List[Path], repeat: int) -> dict:
    remotes = [x for g in graphs for x in ("--remote", str(g))]
    for name in ("a", "b", "c"):  # what the detached run left: the exchange must happen anew
        for old in (root(pool, name) / "tmp").glob("file*"):
            old.unlink()
    proc = subprocess.Popen([*MGMT, "run", "--tmp-prefix", *remotes], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        for name in ("a", "b", "c"):
            for other in ("a", "b", "c"):
                exchanged = root(pool, name) / f"tmp/file2{other}"
                wait(exchanged.exists, "the exchange")
        run_dirs = list((root(pool, "a") / "tmp").glob("mgmt-*/a.yaml"))
        return {
            "restore": measure_restore(pool, repeat),
            "export": measure_export(pool, run_dirs[0], repeat),
        }
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)


def main() -> int:
    # As a user runs the tools: with bytecode. Some shells (CI images, tool sandboxes)
    # set PYTHONDONTWRITEBYTECODE, and then each run compiles again what changed.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=21)
    args = parser.parse_args()
    from mgmt_pkg.bundle import build_bundle

    with tempfile.TemporaryDirectory(prefix="bench-detach-") as tmp:
        bundle = build_bundle(Path(tmp) / "mgmt.pyz").path
        graphs = []
        for name in ("a", "b", "c"):
            path = Path(tmp) / f"{name}.yaml"
            path.write_text(graph(name))
            graphs.append(path)
        results = {}
        with ssh_hosts(["a", "b", "c"], bridge=True) as pool:
            env = pool.env(MGMT_BUNDLE=str(bundle))
            results["detached"] = run_detached(pool, env, graphs, args.repeat)
            results["attached"] = run_attached(pool, env, graphs, args.repeat)
    print(f"3 hosts, {args.repeat} repeats, medians (p90) in ms")
    print(f"{'':34}{'detached':>18}{'attached':>18}{'target':>10}")
    for row, label in (("restore", "managed file restored"), ("export", "export seen on b and c")):
        cells = []
        for mode in ("detached", "attached"):
            values = sorted(results[mode][row])
            p90 = values[int(0.9 * (len(values) - 1))]
            cells.append(f"{statistics.median(values) * 1000:8.1f} ({p90 * 1000:6.1f})")
        print(f"{label:34}{cells[0]:>18}{cells[1]:>18}{TARGETS[row]:>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
