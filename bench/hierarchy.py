"""Hosts behind secondaries: `via:` beside a ProxyJump and direct logins, on the same run.

N leaves behind K secondaries (throw-away namespace hosts, tests/support/hosts.py:
a leaf's only link goes into its secondary's namespace), each applying the same
two-file graph as bench/fanout.py, reached three ways:

- via: each leaf's graph names its secondary in ``via:``; the initiator copies the
  bundle and the graphs once per secondary, which runs the fan-out to its leaves;
- ProxyJump: each leaf's ssh_config alias has ``ProxyJump <its secondary>``: the
  initiator logs in to every leaf itself, one tunnel per leaf through the secondary;
- direct: N other hosts on this machine's own link, for the baseline.

Reported per run, cold (bundles copied) and warm (cached; --repeat rounds, the
three alternating, medians): seconds until every leaf applied its graph (the one
idle second --converged-timeout waits is taken off), bytes sent over the
initiator's own link (the veths on this machine: for via: and ProxyJump the
secondaries', for direct the hosts'), per leaf; the initiator's CPU seconds
(with its children: etcd, ssh) and peak RSS.

Needs root. Run: .venv/bin/python bench/hierarchy.py [--leaves 60 --secondaries 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

from fanout import CONTENT, CONVERGED, Measure, _applied, _graph  # noqa: E402

from support.hosts import HostPool, ssh_hosts  # noqa: E402
from support.sshagent import ssh_agent  # noqa: E402


def link_bytes(pool: HostPool) -> int:
    """Bytes this machine sent into the pool: only hosts on its own link have a veth here."""
    total = 0
    for host in pool:
        if host.jump is None:
            total += int(Path(f"/sys/class/net/{host.veth}/statistics/tx_bytes").read_text())
    return total


def graphs(leaves: List, work: Path, how: str) -> List[str]:
    argv = []
    for leaf in leaves:
        path = work / f"{how}-{leaf.name}.yaml"
        if how == "via":
            text = _graph(f"ssh://root@{leaf.address}", CONTENT) + f"via: {leaf.jump.name}\n"
        else:  # proxyjump and direct: the alias (with its ProxyJump, if any)
            text = _graph(leaf.name, CONTENT)
        path.write_text(text)
        argv += ["--remote", str(path)]
    return argv


def run_once(name: str, pool: HostPool, leaves: List, argv: List[str], env, work: Path) -> Dict:
    for leaf in leaves:
        leaf.run("rm -f /tmp/bench-*")
    before = link_bytes(pool)
    result = Measure(argv, env, work).run()
    if not _applied(leaves, CONTENT):  # any iterable of hosts
        raise RuntimeError(f"{name}: files missing on some leaf:\n{result['out'][-2000:]}")
    result["sent_kib"] = (link_bytes(pool) - before) / len(leaves) / 1024
    result["time"] = result["wall"] - CONVERGED
    return result


def main() -> int:
    # As a user runs the tools: with bytecode. Some shells (CI images, tool sandboxes)
    # set PYTHONDONTWRITEBYTECODE, and then each run compiles again what changed.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leaves", type=int, default=12)
    parser.add_argument("--secondaries", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--ways",
        default="via:,ProxyJump,direct",
        help="which runs (quick iterations on the 1.2x target: --ways via:,direct --repeat 7)",
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/hierarchy.py: needs root (network namespaces)")
        return 0
    bundle = Path(tempfile.mkdtemp(prefix="bench-bundle-")) / "mgmt"
    subprocess.run([str(REPO / ".venv" / "bin" / "mgmt-pkg"), "bundle", "-o", str(bundle)],
                   check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    secondaries = [f"s{i + 1}" for i in range(args.secondaries)]
    leaves = [f"l{i + 1}" for i in range(args.leaves)]
    behind = {leaf: secondaries[i % len(secondaries)] for i, leaf in enumerate(leaves)}
    direct = [f"d{i + 1}" for i in range(args.leaves)]
    mgmt = [str(REPO / ".venv" / "bin" / "mgmt"), "run", "--tmp-prefix", "-q"]
    mgmt.append(f"--converged-timeout={int(CONVERGED)}")
    rows: Dict[str, List[Dict]] = {}
    with (
        ssh_hosts([*secondaries, *leaves, *direct], behind=behind) as pool,
        ssh_agent(pool.identity) as agent,
        tempfile.TemporaryDirectory(prefix="bench-") as tmp,
    ):
        work = Path(tmp)
        env = pool.env(MGMT_BUNDLE=str(bundle), SSH_AUTH_SOCK=agent)
        leaf_hosts = [pool[n] for n in leaves]
        direct_hosts = [pool[n] for n in direct]
        ways = {
            "via:": (leaf_hosts, mgmt + graphs(leaf_hosts, work, "via")),
            "ProxyJump": (leaf_hosts, mgmt + graphs(leaf_hosts, work, "proxyjump")),
            "direct": (direct_hosts, mgmt + graphs(direct_hosts, work, "direct")),
        }
        ways = {way: ways[way] for way in args.ways.split(",")}
        for host in pool:
            host.run("rm -rf /root/.cache/mgmt")
        for way, (hosts, argv) in ways.items():  # cold: every cache empty
            if way == "ProxyJump":  # via: left bundles on the leaves: empty them again
                for host in hosts:
                    host.run("rm -rf /root/.cache/mgmt")
            rows[f"{way} cold"] = [run_once(way, pool, hosts, argv, env, work)]
        for _ in range(args.repeat):  # warm, alternating
            for way, (hosts, argv) in ways.items():
                rows.setdefault(f"{way} warm", []).append(
                    run_once(way, pool, hosts, argv, env, work)
                )
    size = bundle.stat().st_size
    shutil.rmtree(bundle.parent, ignore_errors=True)
    print()
    print(f"{args.leaves} leaves behind {args.secondaries} secondaries (bundle {size} bytes)")
    header = ("run", "time s", "KiB/leaf on our link", "initiator CPU s", "initiator RSS MB")
    print("  ".join(h.ljust(20) for h in header))
    for label, results in rows.items():
        cells = [
            label,
            f"{statistics.median(r['time'] for r in results):.2f}",
            f"{statistics.median(r['sent_kib'] for r in results):.1f}",
            f"{statistics.median(r['cpu'] for r in results):.2f}",
            f"{statistics.median(r['rss_mb'] for r in results):.0f}",
        ]
        print("  ".join(c.ljust(20) for c in cells))
    if "via: warm" in rows and "direct warm" in rows:
        via, direct = (
            statistics.median(r["time"] for r in rows[f"{w} warm"]) for w in ("via:", "direct")
        )
        print(f"via: warm / direct warm = {via / direct:.2f}x (target <= 1.2x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
