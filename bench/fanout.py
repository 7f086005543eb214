"""Fan-out over SSH: `mgmt run --remote` beside pyinfra and Ansible, on the same hosts.

For N = 1, 10, 30 and 100 throw-away hosts (network namespaces with their own sshd
and a clean shell, tests/support/hosts.py), each tool writes the same two files
on every host:

- mgmt: one graph per host with two file resources, --converged-timeout 1
  (the second of idleness it waits for is taken off); cold = bundle copied,
  warm = cached;
- pyinfra: two files.put operations (--parallel N);
- Ansible: a playbook with two copy tasks (forks = N, pipelining on, no facts).

The warm runs of mgmt and pyinfra alternate (--repeat rounds, medians printed
at the end), so that load from elsewhere on a shared machine falls on both;
their ratio is also printed round by round (each pair ran back to back), which
holds better than a ratio of medians when the machine's speed drifts.
Reported per run: seconds until every host has applied, bytes sent to each host
(veth counters), CPU seconds of the initiator (with its children: etcd, ssh) and
of the whole machine, and the initiator's peak RSS. Then, at N = 10 and 100, the
time from saving a graph edit to the file changed on all hosts (mgmt re-copies
the graph and applies the difference; the others must re-run everything: their
warm time is the comparison).

--sudo (target: warm N = 30 through sudo at most 1.15x the same run as root):
the same graphs run as root and, side by side in the same rounds, as a NOPASSWD
user with --sudo (tests/support/users.py makes it, and removes it), beside
pyinfra as that user with _sudo=True. Run: bench/fanout.py --sudo --sizes 30.

Needs root. pyinfra and ansible-core are installed into their own venv under
~/.cache/mgmt-bench/ (they pin versions of paramiko that ours must not share).
Run: .venv/bin/python bench/fanout.py [--sizes 1,10,30] [--no-peers]
Quick iterations on one number: --sizes 30 --runs warm,pyinfra --repeat 3 (a
cold run still goes first, unreported, to fill the hosts' cache).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from support.hosts import HostPool, ssh_hosts  # noqa: E402

PEERS_VENV = Path.home() / ".cache" / "mgmt-bench" / "venv"
CONTENT = {"/tmp/bench-1": "first file\n", "/tmp/bench-2": "second file\n"}
CONVERGED = 1.0
EDITS = 7
# Sizes at which the time from saving a graph to applied on every host is taken.
EDIT_SIZES = (10, 100)


class Measure:
    """Wall time, CPU and peak RSS of one initiator process, and the machine's CPU."""

    def __init__(self, argv: List[str], env: Dict[str, str], cwd: Path):
        self.argv, self.env, self.cwd = argv, env, cwd

    def run(self, timeout: float = 600) -> dict:
        machine_before = _machine_cpu()
        started = time.monotonic()
        proc = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=self.cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - started
        if proc.returncode != 0:
            raise RuntimeError(f"{self.argv[0]} failed ({proc.returncode}):\n{out[-3000:]}")
        return {
            "wall": wall,
            "cpu": usage.ru_utime + usage.ru_stime,
            "machine_cpu": _machine_cpu() - machine_before,
            "rss_mb": usage.ru_maxrss / 1024,
            "out": out,
        }


def _machine_cpu() -> float:
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    busy = sum(int(x) for i, x in enumerate(fields) if i not in (3, 4))  # not idle, iowait
    return busy / os.sysconf("SC_CLK_TCK")


def _sent(pool: HostPool) -> int:
    return sum(int(Path(f"/sys/class/net/{h.veth}/statistics/tx_bytes").read_text()) for h in pool)


def _applied(pool: HostPool, content: Dict[str, str]) -> bool:
    """Whether every host has ``content`` (``pool``: any iterable of hosts, as
    bench/hierarchy.py passes its leaves)."""
    return all(_has(host, content) for host in pool)


def _has(host, content: Dict[str, str]) -> bool:
    """Whether ``host`` has ``content``, read through its sshd's root (its own mount
    namespace)."""
    for path, text in content.items():
        try:
            if Path(f"/proc/{host.pid}/root{path}").read_text() != text:
                return False
        except OSError:
            return False
    return True


def _reset(pool: HostPool, cache: bool) -> None:
    for host in pool:
        host.run("rm -f /tmp/bench-*" + ("" if cache else "; rm -rf /root/.cache/mgmt"))


# -- the tools ------------------------------------------------------------------


def _graph(host: str, content: Dict[str, str]) -> str:
    lines = ["graph: bench", "resources:", "  file:"]
    for i, (path, text) in enumerate(content.items(), 1):
        lines += [f"  - name: bench-{i}", f"    path: {path}", f"    content: {json.dumps(text)}"]
    return "\n".join([*lines, f"remote: {host}", ""])


def mgmt_argv(
    pool: HostPool, work: Path, timeout: Optional[float], login: Optional[str] = None
) -> List[str]:
    """``login``: log in as this user and run the agents through sudo (--sudo)."""
    argv = [str(REPO / ".venv" / "bin" / "mgmt"), "run", "--tmp-prefix", "-q"]
    if timeout is not None:
        argv.append(f"--converged-timeout={int(timeout)}")
    if login is not None:
        argv.append("--sudo")
        work = work / "sudo"
        work.mkdir(exist_ok=True)
    for host in pool:
        graph = work / f"{host.name}.yaml"
        remote = host.name if login is None else f"{login}@{host.address}"
        graph.write_text(_graph(remote, CONTENT))
        argv += ["--remote", str(graph)]
    return argv


def pyinfra_argv(pool: HostPool, work: Path, login: Optional[str] = None) -> List[str]:
    """``login``: log in as this user, every operation with ``_sudo=True``."""
    name = "" if login is None else "-sudo"
    inventory = work / f"inventory{name}.py"
    hosts = ", ".join(
        f"({h.address!r}, {{'ssh_user': {login or 'root'!r}, 'ssh_key': {str(pool.identity)!r}, "
        f"'ssh_known_hosts_file': {str(pool.known_hosts)!r}}})"
        for h in pool
    )
    inventory.write_text(f"hosts = [{hosts}]\n")
    deploy = work / f"deploy{name}.py"
    ops = ["from io import StringIO", "from pyinfra.operations import files"]
    sudo = "" if login is None else ", _sudo=True"
    for i, (path, text) in enumerate(CONTENT.items(), 1):
        ops.append(f"files.put(name='bench-{i}', src=StringIO({text!r}), dest={path!r}{sudo})")
    deploy.write_text("\n".join(ops) + "\n")
    return [str(PEERS_VENV / "bin" / "pyinfra"), "-y", "--parallel", str(len(pool)),
            str(inventory), str(deploy)]  # fmt: skip


def ansible_argv(pool: HostPool, work: Path) -> List[str]:
    inventory = work / "hosts.ini"
    inventory.write_text(
        "[bench]\n"
        + "".join(f"{h.name} ansible_host={h.address}\n" for h in pool)
        + "[bench:vars]\nansible_user=root\nansible_python_interpreter=/usr/bin/python3\n"
        + f"ansible_ssh_private_key_file={pool.identity}\n"
        + f"ansible_ssh_common_args='-o UserKnownHostsFile={pool.known_hosts}'\n"
    )
    (work / "ansible.cfg").write_text(
        f"[defaults]\nforks = {len(pool)}\ninventory = {inventory}\n"
        "[ssh_connection]\npipelining = True\n"
    )
    tasks = "".join(
        f"    - copy:\n        dest: {path}\n        content: {json.dumps(text)}\n"
        for path, text in CONTENT.items()
    )
    playbook = work / "play.yml"
    playbook.write_text(f"- hosts: bench\n  gather_facts: false\n  tasks:\n{tasks}")
    return [str(PEERS_VENV / "bin" / "ansible-playbook"), str(playbook)]


def peers_available() -> bool:
    if (PEERS_VENV / "bin" / "pyinfra").exists() and (
        PEERS_VENV / "bin" / "ansible-playbook"
    ).exists():
        return True
    print(f"(installing pyinfra and ansible-core into {PEERS_VENV})", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True)
        subprocess.run(
            [str(PEERS_VENV / "bin" / "pip"), "install", "-q", "ansible-core", "pyinfra"],
            check=True,
        )
    except (subprocess.CalledProcessError, OSError) as err:
        print(f"(peers unavailable: {err})")
        return False
    return True


# -- running ----------------------------------------------------------------------


def measure(name: str, pool: HostPool, argv: List[str], env, cwd: Path, minus: float = 0):
    before = _sent(pool)
    result = Measure(argv, env, cwd).run()
    if not _applied(pool, CONTENT):
        raise RuntimeError(f"{name}: files missing on some host:\n{result['out'][-2000:]}")
    result["sent_kib"] = (_sent(pool) - before) / len(pool) / 1024
    result["time"] = result["wall"] - minus
    return result


def edit_latency(pool: HostPool, work: Path, env) -> List[Tuple[float, float]]:
    """Seconds from saving every host's graph to the new content on all hosts, and
    the machine's CPU seconds meanwhile (on 2 shared cores, the hosts' work per
    edit is what the latency grows with)."""
    proc = subprocess.Popen(
        mgmt_argv(pool, work, None), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    samples = []
    try:
        deadline = time.monotonic() + 120
        while not _applied(pool, CONTENT):
            if time.monotonic() > deadline:
                raise RuntimeError("the run never applied the graphs")
            time.sleep(0.05)
        for edit in range(EDITS):
            content = dict(CONTENT, **{"/tmp/bench-1": f"edit {edit}\n"})
            time.sleep(0.3)
            saved, cpu = time.monotonic(), _machine_cpu()
            for host in pool:
                graph = work / f"{host.name}.yaml"
                temp = graph.with_suffix(".tmp")
                temp.write_text(_graph(host.name, content))
                os.replace(temp, graph)
            # A host that has the edit keeps it, so none is read again once it had it:
            # reading again every host before the first still waiting, every 5 ms,
            # took CPU from the hosts measured.
            waiting = collections.deque(pool)
            while True:
                while waiting and _has(waiting[0], content):
                    waiting.popleft()
                if not waiting:
                    break
                if time.monotonic() - saved > 30:
                    raise RuntimeError("an edit was not applied within 30 s")
                time.sleep(0.005)
            samples.append((time.monotonic() - saved, _machine_cpu() - cpu))
    finally:
        proc.send_signal(2)
        proc.wait(30)
    return samples


def sudo_rows(n: int, bundle: Path, repeat: int, peers: bool) -> list:
    """Warm runs as root and through sudo (and pyinfra's _sudo=True), alternating."""
    from support.users import sudo_users

    with ssh_hosts(n) as pool, tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        work = Path(tmp)
        with sudo_users(["nopasswd"], Path(str(pool.identity) + ".pub")) as users:
            login = users["nopasswd"].name
            env = pool.env(MGMT_BUNDLE=str(bundle))
            tools = [
                ("mgmt root", mgmt_argv(pool, work, CONVERGED), CONVERGED),
                ("mgmt sudo", mgmt_argv(pool, work, CONVERGED, login), CONVERGED),
            ]
            if peers:
                tools.append(("pyinfra sudo", pyinfra_argv(pool, work, login), 0.0))
            _reset(pool, cache=False)
            for name, argv, minus in tools:  # fills the hosts' cache; not reported
                _reset(pool, cache=True)
                measure(name, pool, argv, env, work, minus)
            rows = []
            for _ in range(repeat):
                for name, argv, minus in tools:
                    _reset(pool, cache=True)
                    rows.append((n, f"{name} warm", measure(name, pool, argv, env, work, minus)))
            return rows


def main() -> int:
    # As a user runs the tools: with bytecode. Some shells (CI images, tool sandboxes)
    # set PYTHONDONTWRITEBYTECODE, and then each run compiles again what changed.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1,10,30,100")
    parser.add_argument("--no-peers", action="store_true", help="mgmt only")
    parser.add_argument(
        "--runs",
        default="cold,warm,peers,edit",
        help="which of cold, warm, peers (pyinfra and Ansible), pyinfra (alone), edit to run"
        " (quick iterations: --sizes 30 --runs warm,pyinfra)",
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="warm runs per size of mgmt and pyinfra, alternating"
    )
    parser.add_argument(
        "--sudo", action="store_true", help="warm runs as root beside --sudo as a NOPASSWD user"
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/fanout.py: needs root (network namespaces)")
        return 0
    sizes = [int(x) for x in args.sizes.split(",")]
    runs = set(args.runs.split(","))
    peers = bool({"peers", "pyinfra"} & runs) and not args.no_peers and peers_available()
    ansible = peers and "peers" in runs
    # Always the agent of this tree: a dist/mgmt left from an older tree would
    # measure old code (the hosts' cache is keyed by the bundle's sha256).
    bundle = Path(tempfile.mkdtemp(prefix="bench-bundle-")) / "mgmt"
    subprocess.run([str(REPO / ".venv" / "bin" / "mgmt-pkg"), "bundle", "-o", str(bundle)],
                   check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    rows = []
    edits: Dict[int, List[Tuple[float, float]]] = {}
    if args.sudo:
        for n in sizes:
            rows += sudo_rows(n, bundle, args.repeat, not args.no_peers and peers_available())
            print(f"(N = {n} done)", flush=True)
        sizes = []
    for n in sizes:
        with ssh_hosts(n) as pool, tempfile.TemporaryDirectory(prefix="bench-") as tmp:
            work = Path(tmp)
            env = pool.env(MGMT_BUNDLE=str(bundle), ANSIBLE_CONFIG=str(work / "ansible.cfg"))
            tools = []
            if {"cold", "warm"} & runs:
                tools.append(("mgmt", mgmt_argv(pool, work, CONVERGED), CONVERGED))
            if peers:
                tools.append(("pyinfra", pyinfra_argv(pool, work), 0.0))
            # Cold first (mgmt copies its bundle); then the warm runs alternate
            # between the tools, so that whatever else the machine does (a
            # neighbour on the host, CPU steal) falls on each of them alike.
            for name, argv, minus in tools:
                _reset(pool, cache=name != "mgmt")  # mgmt's cold run copies the bundle
                result = measure(name, pool, argv, env, work, minus)
                if name != "mgmt" or "cold" in runs:
                    rows.append((n, f"{name} cold", result))
            # mgmt's warm runs only when asked for; pyinfra's whenever peers run.
            warm_tools = [t for t in tools if t[0] != "mgmt" or "warm" in runs]
            for _ in range(args.repeat if warm_tools else 0):
                for name, argv, minus in warm_tools:
                    _reset(pool, cache=True)
                    rows.append((n, f"{name} warm", measure(name, pool, argv, env, work, minus)))
            if ansible:  # ~10x slower than the others: once each
                for label in ("cold", "warm"):
                    _reset(pool, cache=True)
                    result = measure("ansible", pool, ansible_argv(pool, work), env, work)
                    rows.append((n, f"ansible {label}", result))
            if n in EDIT_SIZES and "edit" in runs:
                _reset(pool, cache=True)
                edits[n] = edit_latency(pool, work, env)
        print(f"(N = {n} done)", flush=True)
    shutil.rmtree(bundle.parent, ignore_errors=True)

    print()
    print(f"{'N':>3}  {'run':<17} {'applied s':>9} {'KiB/host':>9} {'init CPU s':>10} "
          f"{'machine CPU s':>13} {'init RSS MB':>11}")  # fmt: skip
    for n, name, r in rows:
        print(f"{n:>3}  {name:<17} {r['time']:>9.2f} {r['sent_kib']:>9.1f} {r['cpu']:>10.2f} "
              f"{r['machine_cpu']:>13.2f} {r['rss_mb']:>11.1f}")  # fmt: skip
    print("\nmgmt 'applied s' is the run's wall time minus the 1 s --converged-timeout wait.")
    medians: Dict[tuple, List[float]] = {}
    for n, name, r in rows:
        medians.setdefault((n, name), []).append(r["time"])
    repeated = {key: times for key, times in medians.items() if len(times) > 1}
    if repeated:
        print("medians of the repeated runs: " + ", ".join(
            f"N={n} {name} {statistics.median(times):.2f} s"
            for (n, name), times in repeated.items()
        ))  # fmt: skip
    for n, label, ratios in _ratios(rows):
        print(f"N={n} {label}, mgmt / pyinfra round by round: "
              + " ".join(f"{r:.2f}x" for r in ratios)
              + f" (median {statistics.median(ratios):.2f}x)")  # fmt: skip
    for n in {n for n, name, _ in rows if name.startswith("mgmt sudo")}:
        root, sudo = (statistics.median(medians[(n, f"mgmt {w} warm")]) for w in ("root", "sudo"))
        print(f"N={n}: mgmt warm through sudo / as root = {sudo / root:.2f}x (target <= 1.15x)")
    for n, samples in edits.items():
        times = [t for t, _ in samples]
        cpu_ms = statistics.median(c for _, c in samples) * 1000 / n
        print(
            f"graph edit -> applied on all {n} hosts: median {statistics.median(times):.3f} s "
            f"(min {min(times):.3f}, max {max(times):.3f}; {len(times)} edits, the first"
            f" included; machine CPU {cpu_ms:.1f} ms per host and edit); pyinfra/Ansible"
            f" re-run everything: see their warm rows at N = {n}"
        )
    return 0


def _ratios(rows: list) -> List[Tuple[int, str, List[float]]]:
    """mgmt's time over pyinfra's, per size, for the cold run and for each round of
    warm runs: each pair ran back to back, so a machine whose speed drifts during
    the bench (CPU steal on a shared host) weighs on both sides of each ratio."""
    found = []
    for n in sorted({n for n, _, _ in rows}):
        for label in ("cold", "warm"):
            mgmt, pyinfra = (
                [r["time"] for size, name, r in rows if size == n and name == f"{tool} {label}"]
                for tool in ("mgmt", "pyinfra")
            )
            ratios = [a / b for a, b in zip(mgmt, pyinfra) if b > 0]
            if ratios:
                found.append((n, label, ratios))
    return found


if __name__ == "__main__":
    sys.exit(main())
