"""Throw-away SSH hosts for tests, demos and benches (contracts.md item 5).

Each host is a network namespace joined to this machine by a veth pair (a /32
address and a host route: any address in 10.254.0.0/16), with its own mount
namespace where /tmp and root's home are private tmpfs (so every host has its
own /tmp, its own ~/.cache and a clean shell without this machine's ~/.bashrc),
and an ``sshd -D`` listening only on the host's address, with its own host key
and authorized_keys.

The pool also writes a HOME for the initiator: ``.ssh/config`` with one alias
per host, ``.ssh/known_hosts`` with every host key, and ``.ssh/id_ed25519``.
Run the code under test with ``env=pool.env()`` and it sees the hosts as a user
with a normal ~/.ssh would (OpenSSH's ``ssh`` reads the passwd home, not $HOME:
give it ``-F pool.ssh_config``).

    with ssh_hosts(["a", "b"]) as pool:
        subprocess.run(["mgmt", "run", "--remote", ...], env=pool.env())
        assert pool["a"].read_file("/tmp/file1a") == "i am file1a\\n"

Only namespaces and addresses made here are touched; teardown (also after a
failed test, and for pools whose creating process died) kills every process
inside and deletes the namespaces. Needs root, iproute2, util-linux, OpenSSH.

Command line (for demos): ``python tests/support/hosts.py --names a,b
[--addresses 10.254.0.2,10.254.0.3] -- CMD`` runs CMD with HOME set to the
pool's home and MGMT_TEST_HOSTS="a=10.254.0.2 ...", then tears the hosts down.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Union

NETWORK = ipaddress.ip_network("10.254.0.0/16")
# This machine's end of every veth pair: one /32 shared by all of them, with a
# host route per throw-away host, so hosts can have any addresses (neighbours
# such as the examples' 10.254.0.2 and 10.254.0.3 included).
GATEWAY = ipaddress.ip_address("10.254.255.254")
LOCK_FILE = Path("/run/lock/mgmt-test-hosts.lock")
# Namespace names carry the creating pid (hex) so stale ones can be reaped.
NAME_RE = re.compile(r"^mh([0-9a-f]+)-(\d+)$")
PRIVATE_DIRS = ("/tmp", "/root")
SSHD = "/usr/sbin/sshd"
START_TIMEOUT = 10.0

_counter = 0

Command = Union[str, Sequence[str]]


def _run(args: Sequence[str], check: bool = True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), check=check, capture_output=True, text=True, **kw)


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
    sshd: Optional[subprocess.Popen] = field(default=None, repr=False)

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
        return _run(
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
        out = _run(["ip", "netns", "pids", self.netns], check=False).stdout
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
        out = _run(["ip", "netns", "exec", self.netns, "ss", "-Hltn"]).stdout
        return [line.split()[3] for line in out.splitlines() if line.strip()]

    # -- faults -----------------------------------------------------------

    def stop_sshd(self) -> None:
        """Make the host refuse SSH (connection refused) while keeping its namespaces."""
        # Keep a placeholder process in the namespaces so run() still works.
        if self.sshd is not None and self.sshd.poll() is None:
            self.sshd.send_signal(signal.SIGTERM)
            self.sshd.wait(5)

    def kill_sessions(self) -> None:
        """Drop every SSH session (as a host that goes away would) but keep sshd."""
        for pid in self.processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    @property
    def url(self) -> str:
        auth = f"{self.user}:{self.password}" if self.password else self.user
        return f"ssh://{auth}@{self.address}:{self.port}"


class HostPool:
    """A set of hosts plus the initiator-side HOME that knows them."""

    def __init__(self, root: Path):
        self.root = root
        self.home = root / "home"
        self.hosts: List[Host] = []

    def __getitem__(self, key: Union[int, str]) -> Host:
        if isinstance(key, int):
            return self.hosts[key]
        for host in self.hosts:
            if host.name == key:
                return host
        raise KeyError(key)

    def __iter__(self) -> Iterator[Host]:
        return iter(self.hosts)

    def __len__(self) -> int:
        return len(self.hosts)

    @property
    def ssh_dir(self) -> Path:
        return self.home / ".ssh"

    @property
    def known_hosts(self) -> Path:
        return self.ssh_dir / "known_hosts"

    @property
    def identity(self) -> Path:
        return self.ssh_dir / "id_ed25519"

    @property
    def ssh_config(self) -> Path:
        return self.ssh_dir / "config"

    def env(self, **extra: str) -> Dict[str, str]:
        """Environment for the initiator: HOME with the pool's ~/.ssh, no ssh-agent."""
        env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
        env["HOME"] = str(self.home)
        env["MGMT_TEST_HOSTS"] = " ".join(f"{h.name}={h.address}" for h in self.hosts)
        env.update(extra)
        return env

    def known_hosts_line(self, host: Host) -> str:
        return (host.state_dir / "known_hosts").read_text()

    def forget(self, host: Host) -> None:
        """Remove a host from the pool's known_hosts (to test unknown-host refusal)."""
        line = self.known_hosts_line(host)
        kept = [x for x in self.known_hosts.read_text().splitlines(True) if x != line]
        self.known_hosts.write_text("".join(kept))

    def remember_all(self) -> None:
        """Rewrite known_hosts with every host's key (undoing forget())."""
        self.known_hosts.write_text("".join(self.known_hosts_line(h) for h in self.hosts))


# -- building -------------------------------------------------------------


def _require_root() -> None:
    if os.geteuid() != 0:
        raise PermissionError("throw-away hosts need root (network and mount namespaces)")


@contextlib.contextmanager
def _allocation_lock() -> Iterator[None]:
    LOCK_FILE.parent.mkdir(parents=True, exist_ok=True)
    with open(LOCK_FILE, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _our_namespaces() -> List[str]:
    out = _run(["ip", "netns", "list"], check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _delete_namespace(netns: str) -> None:
    """Kill every process in the namespace, then delete it (its veth goes too)."""
    for _ in range(50):
        pids = _run(["ip", "netns", "pids", netns], check=False).stdout.split()
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
        time.sleep(0.02)
    _run(["ip", "netns", "delete", netns], check=False)


def reap_stale() -> List[str]:
    """Delete namespaces left by pools whose creating process has died."""
    reaped = []
    for netns in _our_namespaces():
        match = NAME_RE.match(netns)
        if match and not _pid_alive(int(match.group(1), 16)):
            _delete_namespace(netns)
            reaped.append(netns)
    return reaped


def _used_addresses() -> set:
    """Addresses in 10.254.0.0/16 already on this machine (as addresses or host routes)."""
    text = _run(["ip", "-o", "-4", "addr", "show"]).stdout + _run(["ip", "-4", "route"]).stdout
    return {ipaddress.ip_address(m) for m in re.findall(r"\b(10\.254\.\d+\.\d+)\b", text)}


def _pick_addresses(count: int, wanted: Optional[Sequence[str]]) -> List[str]:
    used = _used_addresses()
    if wanted is not None:
        taken = [a for a in wanted if ipaddress.ip_address(a) in used]
        if taken:
            raise RuntimeError(f"address(es) already in use on this machine: {', '.join(taken)}")
        if not all(ipaddress.ip_address(a) in NETWORK for a in wanted):
            raise ValueError(f"host addresses must be in {NETWORK}")
        return list(wanted)
    free = []
    for address in NETWORK.hosts():
        if address not in used and address != GATEWAY and address.packed[3] not in (0, 1, 255):
            free.append(str(address))
            if len(free) == count:
                return free
    raise RuntimeError(f"no free address left in {NETWORK}")


def _keygen(path: Path, comment: str) -> None:
    _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)])


def _shadow_with_password(password: str, dest: Path) -> None:
    """A copy of /etc/shadow where root's password is ``password`` (private to the host)."""
    hashed = _run(["openssl", "passwd", "-6", "-stdin"], input=password).stdout.strip()
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
        f"AuthorizedKeysFile {host.state_dir / 'authorized_keys'}",
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


def _mask_script(state_dir: Path, private_dirs: Sequence[str], password: Optional[str]) -> str:
    """Shell run inside the new mount namespace before exec'ing sshd."""
    steps = []
    for path in private_dirs:
        mode = "1777" if path == "/tmp" else "0700"
        steps.append(f"mount -t tmpfs -o mode={mode} tmpfs {shlex.quote(path)}")
    if password:
        steps.append(f"mount --bind {shlex.quote(str(state_dir / 'shadow'))} /etc/shadow")
    return " && ".join(steps) if steps else "true"


def _start_host(host: Host, pool: HostPool, private_dirs: Sequence[str]) -> None:
    """Namespace, veth, addresses, host key, sshd: one host up and listening."""
    veth_out, veth_in = host.veth, f"{host.netns}b"
    _run(["ip", "netns", "add", host.netns])
    _run(["ip", "link", "add", veth_out, "type", "veth", "peer", "name", veth_in])
    _run(["ip", "link", "set", veth_in, "netns", host.netns])
    if host.jump is None:
        peer, outside = str(GATEWAY), ["ip"]
        _run(["ip", "addr", "add", f"{GATEWAY}/32", "dev", veth_out])
    else:
        # The other end is inside the jump host; here the address goes nowhere
        # (a blackhole, so a bug cannot send it out through the default route).
        peer, outside = host.jump.address, ["ip", "-n", host.jump.netns]
        _run(["ip", "link", "set", veth_out, "netns", host.jump.netns])
        _run(["ip", "route", "add", "blackhole", f"{host.address}/32"])
    _run([*outside, "link", "set", veth_out, "up"])
    _run([*outside, "route", "add", f"{host.address}/32", "dev", veth_out, "src", peer])
    ns = ["ip", "-n", host.netns]
    _run([*ns, "addr", "add", f"{host.address}/32", "dev", veth_in])
    _run([*ns, "link", "set", veth_in, "up"])
    _run([*ns, "link", "set", "lo", "up"])
    _run([*ns, "route", "add", f"{peer}/32", "dev", veth_in])

    state = host.state_dir
    state.mkdir(mode=0o700)
    _keygen(state / "host_key", f"host-{host.name}")
    shutil.copy(str(pool.identity) + ".pub", state / "authorized_keys")
    (state / "authorized_keys").chmod(0o600)
    if host.password:
        _shadow_with_password(host.password, state / "shadow")
    (state / "sshd_config").write_text(_sshd_config(host, host.password))
    hostkey = (state / "host_key.pub").read_text().split()
    pattern = host.address if host.port == 22 else f"[{host.address}]:{host.port}"
    (state / "known_hosts").write_text(f"{pattern} {hostkey[0]} {hostkey[1]}\n")

    # /run/sshd is sshd's privilege-separation chroot; the package normally makes it.
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    script = f"{_mask_script(state, private_dirs, host.password)} && exec {SSHD} -D -e -f " + (
        shlex.quote(str(state / "sshd_config"))
    )
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


def _write_client_home(pool: HostPool) -> None:
    ssh = pool.ssh_dir
    ssh.mkdir(parents=True, mode=0o700, exist_ok=True)
    config = []
    for host in pool.hosts:
        config += [
            f"Host {host.name}",
            f"    HostName {host.address}",
            f"    Port {host.port}",
            f"    User {host.user}",
            f"    IdentityFile {pool.identity}",
            "    IdentitiesOnly yes",
            f"    UserKnownHostsFile {pool.known_hosts}",
        ]
        if host.jump is not None:
            config.append(f"    ProxyJump {host.jump.name}")
        config.append("")
    pool.ssh_config.write_text("\n".join(config))
    pool.remember_all()


@contextlib.contextmanager
def ssh_hosts(
    names: Union[int, Sequence[str]] = 2,
    port: int = 22,
    password: Optional[str] = None,
    private_dirs: Sequence[str] = PRIVATE_DIRS,
    workdir: Optional[Path] = None,
    addresses: Optional[Sequence[str]] = None,
    behind: Optional[Dict[str, str]] = None,
) -> Iterator[HostPool]:
    """Make throw-away SSH hosts; everything is torn down on exit, whatever happened.

    ``names``: a count (hosts h1..hN) or the aliases to use. ``password``: also
    allow root to log in with this password (a private /etc/shadow per host).
    ``addresses``: the hosts' addresses (default: the lowest free ones in
    10.254.0.0/16, so a first pool gets 10.254.0.2, 10.254.0.3, ...).
    ``behind``: host name -> the (earlier) host it is reachable through only;
    its ssh_config alias gets ``ProxyJump``.
    """
    global _counter
    _require_root()
    if isinstance(names, int):
        names = [f"h{i + 1}" for i in range(names)]
    root = Path(tempfile.mkdtemp(prefix="mgmt-hosts-", dir=workdir or "/run"))
    root.chmod(0o700)
    pool = HostPool(root)
    pool.home.mkdir()
    pool.ssh_dir.mkdir(mode=0o700)
    _keygen(pool.identity, "mgmt-test-initiator")
    try:
        with _allocation_lock():
            reap_stale()
            for name, address in zip(names, _pick_addresses(len(names), addresses)):
                _counter += 1
                netns = f"mh{os.getpid():x}-{_counter}"
                host = Host(
                    name=name,
                    address=address,
                    port=port,
                    netns=netns,
                    veth=f"{netns}a",
                    state_dir=root / f"host-{name}",
                    identity=pool.identity,
                    known_hosts=pool.known_hosts,
                    password=password,
                    jump=pool[behind[name]] if behind and name in behind else None,
                )
                pool.hosts.append(host)
                _start_host(host, pool, private_dirs)
        _write_client_home(pool)
        yield pool
    finally:
        for host in pool.hosts:
            if host.sshd is not None and host.sshd.poll() is None:
                host.sshd.kill()
                host.sshd.wait(5)
            # Deleting one end of the pair deletes both, at once rather than
            # whenever the kernel gets round to freeing the namespace.
            _run(["ip", "link", "delete", host.veth], check=False)
            if host.jump is not None:
                _run(["ip", "route", "delete", "blackhole", f"{host.address}/32"], check=False)
            _delete_namespace(host.netns)
        shutil.rmtree(root, ignore_errors=True)


def main(argv: Optional[List[str]] = None) -> int:
    """``hosts.py --names a,b [--password P] -- CMD``: run CMD with hosts up."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--names", default="h1,h2")
    parser.add_argument("--password")
    parser.add_argument("--addresses", help="comma-separated, one per name (default: free ones)")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give a command after --")
    # SIGTERM -> KeyboardInterrupt so the finally of ssh_hosts() always runs.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    addresses = args.addresses.split(",") if args.addresses else None
    with ssh_hosts(args.names.split(","), password=args.password, addresses=addresses) as pool:
        try:
            return subprocess.call(command, env=pool.env())
        except KeyboardInterrupt:
            return 130


if __name__ == "__main__":
    sys.exit(main())
