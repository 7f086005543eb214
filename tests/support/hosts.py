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

The pieces: :mod:`support.netns` (namespaces, veth pairs, addresses, reaping),
:mod:`support.sshd` (one :class:`Host` and its sshd), and this module (the
pool, its client HOME, :func:`ssh_hosts` and the command line).

Command line (for demos): ``python tests/support/hosts.py --names a,b
[--addresses 10.254.0.2,10.254.0.3] [--bridge] -- CMD`` runs CMD with HOME set to the
pool's home and MGMT_TEST_HOSTS="a=10.254.0.2 ...", then tears the hosts down.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Union

if not __package__:  # run as a script (the demos' command line): find the support package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from support.netns import (
    GATEWAY,
    NETWORK,
    allocation_lock,
    delete_bridge,
    join_bridged,
    link_namespace,
    new_bridge,
    new_namespace_name,
    pick_addresses,
    reap_stale,
    release_unreachable_range,
    unlink_namespace,
    unreachable_range,
)
from support.sshd import PRIVATE_DIRS, Host, keygen, kill_sshd, start_sshd

__all__ = ["GATEWAY", "NETWORK", "Host", "HostPool", "main", "reap_stale", "ssh_hosts"]


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
        """Environment for the initiator: HOME with the pool's ~/.ssh, no ssh-agent,
        and the login's name in USER and LOGNAME as a login session has them (a CI
        job's may not: paramiko then asks the passwd file for it at each Host block
        of the ssh_config a host does not match, 20,000 times at N = 100)."""
        env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
        login = pwd.getpwuid(os.getuid()).pw_name
        env.setdefault("USER", login)
        env.setdefault("LOGNAME", login)
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
    python3: Optional[Dict[str, str]] = None,
    bridge: bool = False,
) -> Iterator[HostPool]:
    """Make throw-away SSH hosts; everything is torn down on exit, whatever happened.

    ``names``: a count (hosts h1..hN) or the aliases to use. ``password``: also
    allow root to log in with this password (a private /etc/shadow per host).
    ``addresses``: the hosts' addresses (default: the lowest free ones in
    10.254.0.0/16, so a first pool gets 10.254.0.2, 10.254.0.3, ...).
    ``behind``: host name -> the (earlier) host it is reachable through only;
    its ssh_config alias gets ``ProxyJump``, and this machine an ``unreachable``
    route for the whole test range (only the hosts' own routes lead anywhere).
    ``python3``: host name -> the interpreter that is its /usr/bin/python3 (say
    pyenv's 3.6, as on RHEL 8), bind-mounted in the host's mount namespace only.
    ``bridge``: the hosts' veths share one bridge, so they reach each other (and
    this machine) without IP forwarding; the rest of 10.254.0.0/16 is unreachable
    from them.
    """
    if bridge and behind:
        raise ValueError("bridge and behind do not mix: bridged hosts all reach each other")
    _require_root()
    if isinstance(names, int):
        names = [f"h{i + 1}" for i in range(names)]
    root = Path(tempfile.mkdtemp(prefix="mgmt-hosts-", dir=workdir or "/run"))
    root.chmod(0o700)
    pool = HostPool(root)
    bridge_name: Optional[str] = None
    pool.home.mkdir()
    pool.ssh_dir.mkdir(mode=0o700)
    keygen(pool.identity, "mgmt-test-initiator")
    try:
        with allocation_lock():
            reap_stale()
            if behind:
                unreachable_range(f"{os.getpid()}-{root.name}")
            if bridge:
                bridge_name = new_bridge()
            for name, address in zip(names, pick_addresses(len(names), addresses)):
                netns = new_namespace_name()
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
                    python3=(python3 or {}).get(name),
                )
                pool.hosts.append(host)
                jump = host.jump
                link_namespace(
                    netns,
                    host.veth,
                    address,
                    jump.netns if jump else None,
                    jump.address if jump else None,
                    bridge_name,
                )
                start_sshd(host, Path(str(pool.identity) + ".pub"), private_dirs)
            if bridge_name is not None:
                for host in pool.hosts:
                    join_bridged(host.netns, [h.address for h in pool.hosts])
        _write_client_home(pool)
        yield pool
    finally:
        for host in pool.hosts:
            kill_sshd(host)
            unlink_namespace(host.netns, host.veth, host.address, host.jump is not None)
        if behind:
            with allocation_lock():
                release_unreachable_range(f"{os.getpid()}-{root.name}")
        if bridge_name is not None:
            delete_bridge(bridge_name)
        shutil.rmtree(root, ignore_errors=True)


def main(argv: Optional[List[str]] = None) -> int:
    """``hosts.py --names a,b [--password P] -- CMD``: run CMD with hosts up."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--names", default="h1,h2")
    parser.add_argument("--password")
    parser.add_argument("--addresses", help="comma-separated, one per name (default: free ones)")
    parser.add_argument("--bridge", action="store_true", help="hosts that reach each other")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give a command after --")
    # SIGTERM -> KeyboardInterrupt so the finally of ssh_hosts() always runs.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    addresses = args.addresses.split(",") if args.addresses else None
    names = args.names.split(",")
    with ssh_hosts(names, password=args.password, addresses=addresses, bridge=args.bridge) as pool:
        try:
            return subprocess.call(command, env=pool.env())
        except KeyboardInterrupt:
            return 130


if __name__ == "__main__":
    sys.exit(main())
