"""Host-key trust: known_hosts decides, as OpenSSH's StrictHostKeyChecking does.

Fabric's Connection accepts any key it is shown (AutoAddPolicy, fabric #1804);
that lets anyone on the path pose as the host and receive the agent, the graph
and a tunnel into our etcd. Here:

- a known host must show the key known_hosts has for it, always (paramiko
  raises BadHostKeyException, which we turn into :class:`HostKeyChanged`);
- an unknown host is refused with its fingerprint and how to accept it;
- ``--ssh-accept-new`` adds unknown hosts to known_hosts (OpenSSH's
  ``accept-new``), and never replaces a key that is there;
- a key known_hosts marks ``@revoked`` is refused, always; ``@cert-authority``
  lines are skipped (host certificates are not checked: the host's own key
  decides), as are lines that do not parse, as ssh skips them.
"""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path
from typing import Dict, FrozenSet, List, Mapping, Optional, Set, Tuple

import paramiko

from mgmt.errors import RemoteError
from mgmt.log import get_logger

log = get_logger("remote")

GLOBAL_KNOWN_HOSTS = Path("/etc/ssh/ssh_known_hosts")
_write_lock = threading.Lock()
# Parsed known_hosts files, by their paths and what stat says of them: every
# session of a run reads the same files, and parsing every key of every host
# for every connection costs the initiator O(N^2) at N hosts.
_Files = Tuple[Tuple[str, Tuple[int, ...]], ...]
_parsed: Dict[_Files, Tuple[paramiko.HostKeys, FrozenSet[str]]] = {}
_parsed_lock = threading.Lock()


class HostKeyUnknown(RemoteError):
    """The host is not in known_hosts, and --ssh-accept-new was not given."""

    def __init__(self, host: str, key_name: str, fingerprint: str, known_hosts: Path):
        self.fingerprint = fingerprint
        super().__init__(
            host,
            f"unknown host key ({key_name} {fingerprint}), not in {known_hosts}. "
            f"If that fingerprint is the host's, accept it with --ssh-accept-new, "
            f"or connect once with ssh and answer yes",
        )


class HostKeyRevoked(RemoteError):
    """The host showed a key that known_hosts marks @revoked: refused, always."""

    def __init__(self, host: str, got: paramiko.PKey):
        self.fingerprint = got.fingerprint
        super().__init__(
            host,
            f"REVOKED HOST KEY: it showed {got.get_name()} {got.fingerprint}, which "
            f"known_hosts marks @revoked. Refused",
        )


class HostKeyChanged(RemoteError):
    """The host showed a key other than the one known_hosts has: refused, always."""

    def __init__(self, host: str, got: paramiko.PKey, expected: paramiko.PKey, entry: str):
        self.fingerprint = got.fingerprint
        super().__init__(
            host,
            f"HOST KEY CHANGED: it showed {got.get_name()} {got.fingerprint}, "
            f"known_hosts has {expected.get_name()} {expected.fingerprint}. Someone may be "
            f"intercepting the connection. Refused; if the host was really reinstalled, "
            f"remove the old key with: ssh-keygen -R '{entry}'",
        )


def known_hosts_files(ssh_config: Mapping[str, object]) -> List[Path]:
    """The user's known_hosts files (the first is the one we add to), from ssh_config."""
    configured = ssh_config.get("userknownhostsfile")
    if isinstance(configured, list):
        configured = " ".join(configured)
    names = str(configured).split() if configured else ["~/.ssh/known_hosts"]
    return [Path(os.path.expanduser(name)) for name in names]


def host_key_entry(hostname: str, port: int) -> str:
    """How known_hosts names a host (OpenSSH's convention for non-22 ports)."""
    return hostname if port == 22 else f"[{hostname}]:{port}"


def add_known_host(path: Path, entry: str, key: paramiko.PKey) -> None:
    """Append one line to known_hosts, safely against parallel sessions and processes."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    line = f"{entry} {key.get_name()} {key.get_base64()}\n"
    with _write_lock:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.write(line)


class KnownHostsPolicy(paramiko.MissingHostKeyPolicy):
    """What to do with a host known_hosts does not list: refuse, or add it."""

    def __init__(
        self, host: str, known_hosts: Path, accept_new: bool, revoked: FrozenSet[str] = frozenset()
    ):
        self.host = host
        self.known_hosts = known_hosts
        self.accept_new = accept_new
        self.revoked = revoked  # the base64 of keys marked @revoked

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey):
        # A revoked key is left out of the known ones: a host showing it comes
        # here, before any login is tried.
        if key.get_base64() in self.revoked:
            raise HostKeyRevoked(self.host, key)
        # paramiko asks the server for the key type known_hosts has, so a known
        # host showing only another type is a changed key, not a new host.
        for keys in (client.get_host_keys(), client._system_host_keys):
            known = keys.lookup(hostname)
            if known:
                expected = next(iter(known.values()))
                raise HostKeyChanged(self.host, key, expected, hostname)
        if not self.accept_new:
            raise HostKeyUnknown(self.host, key.get_name(), key.fingerprint, self.known_hosts)
        add_known_host(self.known_hosts, hostname, key)
        log.warning(
            "%s: added new host key %s %s to %s",
            self.host,
            key.get_name(),
            key.fingerprint,
            self.known_hosts,
        )


def apply_trust(
    client: paramiko.SSHClient,
    host: str,
    ssh_config: Mapping[str, object],
    accept_new: bool,
    global_known_hosts: Optional[Path] = GLOBAL_KNOWN_HOSTS,
) -> None:
    """Load known_hosts into the client and replace its accept-anything policy."""
    files = known_hosts_files(ssh_config)
    # Shared, read-only: paramiko only looks keys up in it while connecting.
    client._system_host_keys, revoked = _load_known_hosts([*files, global_known_hosts])
    client.set_missing_host_key_policy(KnownHostsPolicy(host, files[0], accept_new, revoked))


def _load_known_hosts(
    paths: List[Optional[Path]],
) -> Tuple[paramiko.HostKeys, FrozenSet[str]]:
    """The keys of every file in ``paths`` that exists, parsed once per file version,
    but those marked @revoked; and those (their base64)."""
    present = []
    for path in paths:
        try:
            info = os.stat(path) if path is not None else None
        except OSError:
            continue
        if info is not None and os.path.isfile(path):
            signature = (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
            present.append((str(path), signature))
    key = tuple(present)
    with _parsed_lock:
        found = _parsed.get(key)
        if found is None:
            entries: List[paramiko.hostkeys.HostKeyEntry] = []
            revoked: Set[str] = set()
            for name, _signature in present:
                _read_known_hosts(name, entries, revoked)
            # A key revoked anywhere (a later file too) is known nowhere.
            keys = paramiko.HostKeys()
            for entry in entries:  # later files add to earlier ones
                if entry.key.get_base64() not in revoked:
                    for hostname in entry.hostnames:
                        keys.add(hostname, entry.key.get_name(), entry.key)
            found = (keys, frozenset(revoked))
            _parsed.clear()  # only the current version of the files is worth keeping
            _parsed[key] = found
        return found


def _read_known_hosts(
    name: str, entries: List[paramiko.hostkeys.HostKeyEntry], revoked: Set[str]
) -> None:
    """One file's entries into ``entries``, the keys it revokes into ``revoked``.
    paramiko's own HostKeys.load ended in an InvalidHostKey ("Incorrect padding")
    on a marker line (@cert-authority, @revoked): every host of the run failed
    with "internal error", and a revoked key was not refused."""
    with open(name, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("@"):
                fields = line.split()
                if fields[0] == "@revoked" and len(fields) >= 4:
                    revoked.add(fields[3])
                continue
            try:
                entry = paramiko.hostkeys.HostKeyEntry.from_line(line, number)
            except (paramiko.SSHException, paramiko.hostkeys.InvalidHostKey, ValueError):
                continue  # ssh skips a line it cannot read
            if entry is not None:
                entries.append(entry)
