"""Running the real initiator (`mgmt run --remote`) against throw-away hosts."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path
from typing import Iterator, List, Optional

from support import require_root, require_tools
from support.hosts import Host, HostPool
from support.polling import wait_until  # noqa: F401  (re-exported for the remote tests)

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
MGMT = [sys.executable, "-m", "mgmt"]
# In the command line of a remote agent and of the sh wrapper that runs it.
AGENT_MARK = "run_remote_agent"

PATH_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
# Run inside a host (host.run): every python3 and python3.N on the PATH is an
# empty file there, as on a host with no Python (its private mounts only).
HIDE_PYTHONS = r"""
: > /tmp/.no-python && chmod 644 /tmp/.no-python
for dir in {dirs}; do
    for f in "$dir"/python3 "$dir"/python3.*; do
        case ${{f##*/}} in python3|python3.[0-9]|python3.[0-9][0-9]) ;; *) continue ;; esac
        [ -e "$f" ] && mount --bind /tmp/.no-python "$f"
    done
done
exit 0
""".format(dirs=" ".join(PATH_DIRS))


def graph_for(example: str, remote: str, directory: Path, name: Optional[str] = None) -> Path:
    """A copy of an example graph whose ``remote:`` names one of our hosts."""
    text = (EXAMPLES / example).read_text()
    text, count = re.subn(r"(?m)^remote:.*$", f"remote: {remote}", text)
    assert count == 1, f"{example} has no remote: line"
    path = directory / (name or example)
    path.write_text(text)
    return path


def file_graph(host: str, remote: str, directory: Path, content: str = "") -> Path:
    """A one-file graph: /tmp/only-<host> with a known content."""
    path = directory / f"only-{host}.yaml"
    path.write_text(
        "graph: only\n"
        "resources:\n"
        "  file:\n"
        f"  - name: only-{host}\n"
        f"    path: /tmp/only-{host}\n"
        f"    content: {content or 'i am ' + host!r}\n"
        "    state: exists\n"
        f"remote: {remote}\n"
    )
    return path


def mgmt_run(
    pool: HostPool,
    bundle: Path,
    graphs: List[Path],
    *flags: str,
    timeout=90,
    env=None,
    stdin: Optional[str] = None,
):
    """`mgmt run --remote ...` to completion; the CompletedProcess (``env``: added;
    ``stdin``: typed at a prompt, read from stdin in a session without a terminal)."""
    argv = [*MGMT, "run", "--tmp-prefix", *flags]
    for graph in graphs:
        argv += ["--remote", str(graph)]
    return subprocess.run(
        argv,
        env=pool.env(MGMT_BUNDLE=str(bundle), **(env or {})),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        start_new_session=stdin is not None,
    )


class Initiator:
    """`mgmt run --remote` in the background, its output collected line by line as it comes.

    Used as ``with Initiator(...) as run:``, it does not outlive the block (see
    :meth:`__exit__`); a test that checks how the run ends still ends it in the
    block itself (``run.interrupt()``, then ``run.wait()`` for its exit code)."""

    def __init__(
        self,
        pool: HostPool,
        bundle: Path,
        graphs: List[Path],
        *flags: str,
        stdin: Optional[str] = None,
        env=None,
    ):
        """``stdin``: typed at a prompt (a session of its own has no terminal, so
        getpass reads stdin)."""
        argv = [*MGMT, "run", "--tmp-prefix", *flags]
        for graph in graphs:
            argv += ["--remote", str(graph)]
        # Its --tmp-prefix dir goes in one of ours: a test that kills it with
        # SIGKILL leaves that dir behind, and wait() (kill() too) removes it.
        self._tmp = tempfile.mkdtemp(prefix="mgmt-initiator-")
        self.proc = subprocess.Popen(
            argv,
            env=pool.env(MGMT_BUNDLE=str(bundle), TMPDIR=self._tmp, **(env or {})),
            stdin=subprocess.PIPE if stdin is not None else None,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=stdin is not None,
        )
        if stdin is not None:
            self.proc.stdin.write(stdin)
            self.proc.stdin.close()
        self.lines: List[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()

    @property
    def output(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def wait_for_line(self, pattern: str, timeout: float = 30) -> str:
        """The first output line matching ``pattern``, as soon as it is printed."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines:
                    if regex.search(line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(f"no line matching {pattern!r} in:\n{self.output}")
                self._cond.wait(min(left, 0.2))

    def interrupt(self, sig: int = signal.SIGINT) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 30) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(5)
        shutil.rmtree(self._tmp, ignore_errors=True)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.wait()

    def __enter__(self) -> Initiator:
        return self

    def __exit__(self, *exc_info) -> None:
        """End the run if the block did not: ^C, as a user would, and 15 s for it
        to stop its hosts (their agents get 10 s, then SIGKILL); then kill it,
        whatever its state (and raise if it had not ended in time). Nothing may
        outlive a test: a run left going would hold agents, ports and files on
        the hosts that the next tests use."""
        try:
            if self.proc.poll() is None:
                self.interrupt()
                self.wait(15)
        finally:
            self.kill()


def big_bundle(path: Path, size: int, head: bytes = b"") -> Path:
    """A stand-in bundle of about ``size`` bytes, slow to copy: ``head``, zeros, then
    a zipapp of an empty __main__.py (the initiator sends only a zipapp). It never
    runs: a test stops its copy first."""
    with path.open("wb") as handle:
        handle.write(head)
        handle.truncate(size)
    with zipfile.ZipFile(path, "a") as archive:  # appended after what is not a zip
        archive.writestr("__main__.py", "")
    return path


def leftovers(host: Host) -> dict:
    """What a finished run must not leave on a host: agents, extra listeners, run dirs."""
    return {
        "processes": [cmd for cmd in host.processes().values() if "sshd" not in cmd],
        "listeners": [x for x in host.listeners() if x != f"{host.address}:{host.port}"],
        "run dirs": [d for d in host.listdir("/tmp") if d.startswith("mgmt-")],
        "temp bundles": [f for f in host.listdir("/root/.cache/mgmt/bundles") if f.startswith(".")],
    }


def assert_clean(host: Host, timeout: float = 5) -> None:
    """Nothing of the run left inside the host (sshd may take a moment to reap sessions)."""
    empty = {"processes": [], "listeners": [], "run dirs": [], "temp bundles": []}
    deadline = time.monotonic() + timeout
    while True:
        found = leftovers(host)
        if found == empty:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{host.name}: left behind: {found}")
        time.sleep(0.05)


def summary(output: str) -> dict:
    """host -> (result, bundle) from the summary table at the end of the output."""
    rows = {}
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^host\s+result\s+bundle\s+time", line):
            for row in lines[i + 1 :]:
                parts = row.split()
                if len(parts) >= 4:
                    rows[parts[0]] = (parts[1], parts[2], " ".join(parts[4:]))
    return rows


def need_hosts() -> None:
    """What every test with throw-away SSH hosts needs (skipped locally, failed in CI)."""
    require_root()
    require_tools(
        "ip", "unshare", "nsenter", "sshd", "ssh", "ssh-keygen", "etcd", "curl", "openssl"
    )


def host_fingerprint(host: Host) -> str:
    """The SHA256 fingerprint of a throw-away host's key, as ssh-keygen -l prints it."""
    out = subprocess.run(
        ["ssh-keygen", "-lf", str(host.state_dir / "host_key.pub")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.split()[1]


def login_umask(host: Host) -> int:
    """The umask a login on ``host`` starts with: its sshd's (no pam_umask there)."""
    status = Path(f"/proc/{host.pid}/status").read_text()
    found = re.search(r"^Umask:\s*([0-7]+)", status, re.M)
    assert found is not None, status
    return int(found.group(1), 8)


def has_file(host: Host, content: str) -> bool:
    """The host's one-file graph (:func:`file_graph`) applied with this content."""
    path = f"/tmp/only-{host.name}"
    return host.exists(path) and host.read_file(path) == content


def save_graph(path: Path, text: str) -> None:
    """Write a graph the way editors save: a new file renamed over the old one."""
    temp = path.with_suffix(".swp")
    temp.write_text(text)
    os.replace(temp, path)


def password_seen(password: bytes) -> List[str]:
    """Processes of this machine (the hosts' included: they share its /proc)
    showing ``password`` in their command line or environment."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        for what in ("cmdline", "environ"):
            try:
                if password in (entry / what).read_bytes():
                    found.append(f"{entry.name}/{what}")
            except OSError:
                pass
    return found


# The hosts' program (detached.py) runs as `PYTHON -S -c PROGRAM COMMAND`: this
# Python is slow to start the command its case names ("auth) sleep 30").
SLOW_PYTHON = """#!/bin/sh
for command; do :; done
case $command in %s ;; esac
exec python3 "$@"
"""
SLOW_ETCD = """#!/bin/sh
sleep 3
exec /tmp/real-etcd "$@"
"""


def slow_python(host: Host, graph: Path, case: str) -> None:
    """Make ``graph``'s host run the detached program on a Python slow to start the
    command in ``case`` (a `case` branch of sh: "agent) sleep 2")."""
    host.run("cat > /tmp/slow-python3 && chmod 755 /tmp/slow-python3", input=SLOW_PYTHON % case)
    graph.write_text(graph.read_text() + "python: /tmp/slow-python3\n")


@contextlib.contextmanager
def slow_etcd(host: Host) -> Iterator[None]:
    """Within the block, the host's etcd takes 3 s to start (its own /usr/bin/etcd,
    in its private mounts, is a script that waits, then runs the real one)."""
    host.run("touch /tmp/real-etcd && mount --bind /usr/bin/etcd /tmp/real-etcd")
    host.run("cat > /tmp/slow-etcd && chmod 755 /tmp/slow-etcd", input=SLOW_ETCD)
    host.run("mount --bind /tmp/slow-etcd /usr/bin/etcd")
    try:
        yield
    finally:
        host.run("umount /usr/bin/etcd; umount /tmp/real-etcd", check=False)


@contextlib.contextmanager
def thin_link(host: Host, rate: str = "300kbit") -> Iterator[None]:
    """Within the block, what this machine sends to ``host`` (a host on its link)
    goes at ``rate`` (a token bucket on this end of its veth): a thin link."""
    shape = ["tc", "qdisc", "replace", "dev", host.veth, "root", "tbf", "rate", rate]
    subprocess.run([*shape, "burst", "4kb", "latency", "2s"], check=True)
    try:
        yield
    finally:
        subprocess.run(["tc", "qdisc", "del", "dev", host.veth, "root"], check=False)


@contextlib.contextmanager
def sessions_frozen(host: Host) -> Iterator[None]:
    """Within the block, every process of the host but its sshd is stopped
    (SIGSTOP): what runs there hangs, its connections open but silent."""
    pids = [pid for pid, cmd in host.processes().items() if cmd and "sshd" not in cmd]
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def supervised_dir(folder: Path, argv: List[str], **spec: object) -> Path:
    """``folder`` made a detached cluster's DIR with the supervisor of ``argv`` as
    "agent" (supervise.py and agent.json, ``spec`` over the defaults); its path
    to supervise.py, which runs as ``python3 -S SUPERVISE agent``."""
    import json

    from mgmt.remote.orchestration.detach import SUPERVISOR

    folder.mkdir(exist_ok=True)
    (folder / "supervise.py").write_text(SUPERVISOR)
    defaults = {"argv": argv, "stdin": None, "env": {}, "stop_signal": "TERM", "umask": None}
    (folder / "agent.json").write_text(json.dumps({**defaults, **spec}))
    return folder / "supervise.py"


def cluster_command(pool, bundle, command: str, graphs, *flags: str) -> subprocess.CompletedProcess:
    """``mgmt COMMAND FLAGS --remote GRAPH...`` (run, status, stop) against ``pool``'s
    hosts with ``bundle``, its output captured."""
    argv = [*MGMT, command, *flags]
    for graph in graphs:
        argv += ["--remote", str(graph)]
    return subprocess.run(
        argv, env=pool.env(MGMT_BUNDLE=str(bundle)), capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
