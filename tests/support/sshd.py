"""One throw-away SSH host: its sshd, its private mounts, and ways to look inside.

A :class:`Host` runs ``sshd -D`` inside its network namespace (made by
:mod:`support.netns`) and a mount namespace of its own, where /tmp and root's
home are private tmpfs (its own /tmp, its own ~/.cache, a clean shell without
this machine's ~/.bashrc). The sshd listens only on the host's address, with
its own host key and authorized_keys, and optionally a private /etc/shadow
giving root a password.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

from support.netns import run_tool
from support.polling import wait_until

PRIVATE_DIRS = ("/tmp", "/root")
SSHD = "/usr/sbin/sshd"
START_TIMEOUT = 10.0

Command = Union[str, Sequence[str]]


@dataclass
class Host:
    """One throw-away host: its alias, address, sshd and ways to look inside."""

    name: str
    address: str
    port: int
    netns: str
    veth: str
    state_dir: Path
    identity: Path
    known_hosts: Path
    user: str = "root"
    password: Optional[str] = None
    jump: Optional[Host] = None  # reachable only through this host (ProxyJump)
    python3: Optional[str] = None  # the host's /usr/bin/python3 (say pyenv's 3.6)
    sshd: Optional[subprocess.Popen] = field(default=None, repr=False)
    # Its routes while its link is down (see link_down): `ip route` words, one list each.
    down_routes: List[List[str]] = field(default_factory=list, repr=False)

    # -- looking inside -------------------------------------------------

    @property
    def pid(self) -> int:
        """The sshd's pid: its namespaces are the host's."""
        if self.sshd is None or self.sshd.poll() is not None:
            raise RuntimeError(f"host {self.name}: sshd is not running")
        return self.sshd.pid

    def run(
        self, command: Command, check: bool = True, timeout: float = 30, input: Optional[str] = None
    ) -> subprocess.CompletedProcess:
        """Run a command inside the host (its network and mount namespaces)."""
        argv = ["sh", "-c", command] if isinstance(command, str) else list(command)
        return run_tool(
            ["nsenter", "-t", str(self.pid), "-m", "-n", "--", *argv],
            check=check,
            timeout=timeout,
            input=input,
        )

    def read_file(self, path: str) -> str:
        return self.run(["cat", path]).stdout

    def exists(self, path: str) -> bool:
        return self.run(["test", "-e", path], check=False).returncode == 0

    def listdir(self, path: str) -> List[str]:
        out = self.run(f"ls -A {shlex.quote(path)} 2>/dev/null || true").stdout
        return sorted(out.split())

    def processes(self) -> Dict[int, str]:
        """pid -> command line of every process in the host except its sshd."""
        out = run_tool(["ip", "netns", "pids", self.netns], check=False).stdout
        found = {}
        for word in out.split():
            pid = int(word)
            if self.sshd is not None and pid == self.sshd.pid:
                continue
            try:
                raw = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            found[pid] = raw.replace(b"\0", b" ").decode(errors="replace").strip()
        return found

    def listeners(self) -> List[str]:
        """Listening TCP sockets inside the host, as "addr:port" (sshd's included)."""
        out = run_tool(["ip", "netns", "exec", self.netns, "ss", "-Hltn"]).stdout
        return [line.split()[3] for line in out.splitlines() if line.strip()]

    # -- faults -----------------------------------------------------------

    def stop_sshd(self) -> None:
        """Make the host refuse SSH (connection refused) while keeping its namespaces."""
        # Keep a placeholder process in the namespaces so run() still works.
        if self.sshd is not None and self.sshd.poll() is None:
            self.sshd.send_signal(signal.SIGTERM)
            self.sshd.wait(5)

    def kill_sessions(self) -> None:
        """Drop every SSH session (as a host that goes away would) but keep sshd;
        returns once they are gone (a killed process is listed until it has exited,
        and a supervisor may start a process again before its own kill lands)."""

        def gone() -> bool:
            left = [pid for pid, command in self.processes().items() if command]  # not zombies
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            return not left

        wait_until(gone, 10, f"host {self.name}'s processes to end")

    def link_down(self) -> None:
        """Take the host's end of its veth down: every packet to and from it is lost,
        as when a cable is pulled (no reset, no FIN: the peer notices nothing)."""
        if self.jump is not None:
            raise RuntimeError(f"host {self.name}: link_down is for hosts on this machine's link")
        inside, link = ["ip", "-n", self.netns], f"{self.netns}b"
        # Its routes go with the link: to this machine, and to the other hosts of a bridge.
        shown = subprocess.run(
            [*inside, "-o", "route", "show", "dev", link],
            capture_output=True,
            text=True,
            check=True,
        )
        self.down_routes = [line.split() for line in shown.stdout.splitlines() if line.strip()]
        subprocess.run([*inside, "link", "set", link, "down"], check=True)

    def link_up(self) -> None:
        """Undo :meth:`link_down`: the link, and the routes that went with it."""
        inside, link = ["ip", "-n", self.netns], f"{self.netns}b"
        subprocess.run([*inside, "link", "set", link, "up"], check=True)
        for route in self.down_routes:
            subprocess.run([*inside, "route", "replace", *route, "dev", link], check=True)

    @property
    def url(self) -> str:
        auth = f"{self.user}:{self.password}" if self.password else self.user
        return f"ssh://{auth}@{self.address}:{self.port}"


def keygen(path: Path, comment: str) -> None:
    run_tool(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)])


def _shadow_with_password(password: str, dest: Path) -> None:
    """A copy of /etc/shadow where root's password is ``password`` (private to the host)."""
    hashed = run_tool(["openssl", "passwd", "-6", "-stdin"], input=password).stdout.strip()
    lines = []
    for line in Path("/etc/shadow").read_text().splitlines():
        parts = line.split(":")
        if parts[0] == "root":
            parts[1] = hashed
        lines.append(":".join(parts))
    dest.write_text("\n".join(lines) + "\n")
    dest.chmod(0o640)


def _sshd_config(host: Host, password: Optional[str]) -> str:
    lines = [
        f"ListenAddress {host.address}:{host.port}",
        f"HostKey {host.state_dir / 'host_key'}",
        # Root's key in the state dir; a test user's in its home (support.users):
        # sshd reads a user's keys as that user, who cannot enter the state dir.
        f"AuthorizedKeysFile {host.state_dir / 'authorized_keys'} .ssh/authorized_keys",
        "PidFile none",
        "UsePAM no",
        "PermitRootLogin yes" if password else "PermitRootLogin prohibit-password",
        f"PasswordAuthentication {'yes' if password else 'no'}",
        "KbdInteractiveAuthentication no",
        "AllowTcpForwarding yes",
        "GatewayPorts no",
        "Subsystem sftp internal-sftp",
        "LogLevel ERROR",
        "MaxStartups 100:30:200",
        "MaxSessions 50",
        "PermitUserEnvironment no",
    ]
    return "\n".join(lines) + "\n"


def _mask_script(
    state_dir: Path, private_dirs: Sequence[str], password: Optional[str], python3: Optional[str]
) -> str:
    """Shell run inside the new mount namespace before exec'ing sshd."""
    steps = []
    python = _python_mounts(state_dir, private_dirs, python3)
    steps += python[0]
    for path in private_dirs:
        mode = "1777" if path == "/tmp" else "0700"
        steps.append(f"mount -t tmpfs -o mode={mode} tmpfs {shlex.quote(path)}")
    if password:
        steps.append(f"mount --bind {shlex.quote(str(state_dir / 'shadow'))} /etc/shadow")
    steps += python[1]
    return " && ".join(steps) if steps else "true"


def _python_mounts(state_dir: Path, private_dirs: Sequence[str], python3: Optional[str]):
    """Mounts (before, after the private dirs) that make ``python3`` the host's
    /usr/bin/python3. An interpreter under a private dir (pyenv's, in /root) has
    its whole tree moved aside first and back on top of the private dir after."""
    if python3 is None:
        return [], []
    real = os.path.realpath(python3)
    tree = real.split("/bin/")[0]  # pyenv: .../versions/3.6.15
    before, after = [], []
    if any(tree == d or tree.startswith(d.rstrip("/") + "/") for d in private_dirs):
        aside = state_dir / "python"
        aside.mkdir(exist_ok=True)
        before.append(f"mount --bind {shlex.quote(tree)} {shlex.quote(str(aside))}")
        after.append(f"mkdir -p {shlex.quote(tree)}")
        after.append(f"mount --move {shlex.quote(str(aside))} {shlex.quote(tree)}")
    after.append(f"mount --bind {shlex.quote(real)} /usr/bin/python3")
    return before, after


def start_sshd(host: Host, authorized_key: Path, private_dirs: Sequence[str]) -> None:
    """Host key, config, private mounts and sshd in the host's (linked) namespace.

    Writes ``state_dir/known_hosts`` with the host's key line; returns once the
    sshd serves.
    """
    state = host.state_dir
    state.mkdir(mode=0o700)
    keygen(state / "host_key", f"host-{host.name}")
    shutil.copy(authorized_key, state / "authorized_keys")
    (state / "authorized_keys").chmod(0o600)
    if host.password:
        _shadow_with_password(host.password, state / "shadow")
    (state / "sshd_config").write_text(_sshd_config(host, host.password))
    hostkey = (state / "host_key.pub").read_text().split()
    pattern = host.address if host.port == 22 else f"[{host.address}]:{host.port}"
    (state / "known_hosts").write_text(f"{pattern} {hostkey[0]} {hostkey[1]}\n")

    # /run/sshd is sshd's privilege-separation chroot; the package normally makes it.
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    mask = _mask_script(state, private_dirs, host.password, host.python3)
    script = f"{mask} && exec {SSHD} -D -e -f " + (shlex.quote(str(state / "sshd_config")))
    log = open(state / "sshd.log", "w")  # noqa: SIM115 - owned by the Popen for its life
    host.sshd = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            host.netns,
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            script,
        ],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    _wait_listening(host)


def kill_sshd(host: Host) -> None:
    """Kill the host's sshd at once (teardown)."""
    if host.sshd is not None and host.sshd.poll() is None:
        host.sshd.kill()
        host.sshd.wait(5)


def _wait_listening(host: Host) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if host.sshd.poll() is not None:
            log = (host.state_dir / "sshd.log").read_text()
            raise RuntimeError(f"host {host.name}: sshd exited: {log.strip()}")
        if host.jump is None and _banner(host):
            return
        # Behind a jump host it cannot be reached from here: see it listen instead.
        if host.jump is not None and f"{host.address}:{host.port}" in host.listeners():
            return
        time.sleep(0.02)
    raise RuntimeError(f"host {host.name}: sshd not listening after {START_TIMEOUT} s")


def _banner(host: Host) -> bool:
    """sshd speaks first: a banner means it is serving, not just bound."""
    try:
        with socket.create_connection((host.address, host.port), timeout=0.5) as sock:
            sock.settimeout(2)
            return sock.recv(4).startswith(b"SSH-")
    except OSError:
        return False
