"""Network plumbing for the throw-away hosts: namespaces, veth pairs, addresses.

Each host is a network namespace joined to this machine by a veth pair: this
machine's end carries :data:`GATEWAY` (one /32 shared by every pair) and a
host route per host, so hosts can have any addresses in 10.254.0.0/16. A host
behind a jump host has its outside end inside the jump host instead.

Namespace names carry the creating process's pid, so namespaces left by a
process that died are found and reaped (:func:`reap_stale`). Only namespaces
and addresses made here are ever touched.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Set

NETWORK = ipaddress.ip_network("10.254.0.0/16")
# This machine's end of every veth pair: one /32 shared by all of them, with a
# host route per throw-away host, so hosts can have any addresses (neighbours
# such as the examples' 10.254.0.2 and 10.254.0.3 included).
GATEWAY = ipaddress.ip_address("10.254.255.254")
LOCK_FILE = Path("/run/lock/mgmt-test-hosts.lock")
# Namespace names carry the creating pid (hex) so stale ones can be reaped;
# so do the bridges of pools whose hosts reach each other.
NAME_RE = re.compile(r"^mh([0-9a-f]+)-(\d+)$")
BRIDGE_RE = re.compile(r"^mb([0-9a-f]+)-(\d+)$")

_counter = 0


def run_tool(args: Sequence[str], check: bool = True, **kw) -> subprocess.CompletedProcess:
    """Run a system tool, capturing its output as text."""
    return subprocess.run(list(args), check=check, capture_output=True, text=True, **kw)


def new_namespace_name() -> str:
    """A name unique on this machine that records this process's pid."""
    global _counter
    _counter += 1
    return f"mh{os.getpid():x}-{_counter}"


@contextlib.contextmanager
def allocation_lock() -> Iterator[None]:
    """Held while picking addresses and making namespaces: pools in parallel processes."""
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


def _namespaces() -> List[str]:
    out = run_tool(["ip", "netns", "list"], check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def delete_namespace(netns: str) -> None:
    """Kill every process in the namespace, then delete it (its veth goes too)."""
    for _ in range(50):
        pids = run_tool(["ip", "netns", "pids", netns], check=False).stdout.split()
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
        time.sleep(0.02)
    run_tool(["ip", "netns", "delete", netns], check=False)


def reap_stale() -> List[str]:
    """Delete namespaces (and bridges) left by pools whose creating process has died."""
    reaped = []
    for netns in _namespaces():
        match = NAME_RE.match(netns)
        if match and not _pid_alive(int(match.group(1), 16)):
            delete_namespace(netns)
            reaped.append(netns)
    links = run_tool(["ip", "-o", "link", "show", "type", "bridge"], check=False).stdout
    for name in re.findall(r"^\d+: ([^:@]+)[:@]", links, re.M):
        match = BRIDGE_RE.match(name)
        if match and not _pid_alive(int(match.group(1), 16)):
            delete_bridge(name)
            reaped.append(name)
    return reaped


def new_bridge() -> str:
    """A bridge for hosts that reach each other: it carries :data:`GATEWAY`, so this
    machine reaches every host on it as it reaches hosts on a plain veth."""
    global _counter
    _counter += 1
    name = f"mb{os.getpid():x}-{_counter}"
    run_tool(["ip", "link", "add", name, "type", "bridge"])
    run_tool(["ip", "addr", "add", f"{GATEWAY}/32", "dev", name])
    run_tool(["ip", "link", "set", name, "up"])
    return name


def delete_bridge(name: str) -> None:
    run_tool(["ip", "link", "delete", name], check=False)


def join_bridged(netns: str, addresses: Sequence[str]) -> None:
    """Let the host in ``netns`` reach the other ``addresses`` of its bridge, and
    nothing else of the test range (an ``unreachable`` route: nothing leaves)."""
    inside = ["ip", "-n", netns]
    run_tool([*inside, "route", "add", "unreachable", str(NETWORK)])
    own = run_tool([*inside, "-4", "-o", "addr", "show"]).stdout
    for address in addresses:
        if f" {address}/" not in own:
            run_tool([*inside, "route", "add", f"{address}/32", "dev", f"{netns}b"])


def _used_addresses() -> Set[ipaddress.IPv4Address]:
    """Addresses in 10.254.0.0/16 already on this machine (as addresses or host routes)."""
    text = (
        run_tool(["ip", "-o", "-4", "addr", "show"]).stdout + run_tool(["ip", "-4", "route"]).stdout
    )
    return {ipaddress.ip_address(m) for m in re.findall(r"\b(10\.254\.\d+\.\d+)\b", text)}


def pick_addresses(count: int, wanted: Optional[Sequence[str]]) -> List[str]:
    """``wanted`` if all are free and in :data:`NETWORK`, else the lowest free ones."""
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


def link_namespace(
    netns: str,
    veth: str,
    address: str,
    jump_netns: Optional[str] = None,
    jump_address: Optional[str] = None,
    bridge: Optional[str] = None,
) -> None:
    """Make ``netns`` with ``address`` on its end of a veth pair named ``veth``.

    The outside end is on this machine, or inside ``jump_netns`` (then the
    address is reachable only through the jump host), or on ``bridge`` (then
    the hosts of that bridge can reach each other: see :func:`join_bridged`).
    """
    veth_in = f"{netns}b"
    run_tool(["ip", "netns", "add", netns])
    run_tool(["ip", "link", "add", veth, "type", "veth", "peer", "name", veth_in])
    run_tool(["ip", "link", "set", veth_in, "netns", netns])
    if bridge is not None:
        peer, outside = str(GATEWAY), ["ip"]
        run_tool(["ip", "link", "set", veth, "master", bridge])
    elif jump_netns is None:
        peer, outside = str(GATEWAY), ["ip"]
        run_tool(["ip", "addr", "add", f"{GATEWAY}/32", "dev", veth])
    else:
        # The other end is inside the jump host; here the address is unreachable
        # (a packet for it fails at once, and a bug cannot send it out through
        # the default route; see also unreachable_range()).
        peer, outside = str(jump_address), ["ip", "-n", jump_netns]
        run_tool(["ip", "link", "set", veth, "netns", jump_netns])
        run_tool(["ip", "route", "add", "unreachable", f"{address}/32"])
    run_tool([*outside, "link", "set", veth, "up"])
    via = bridge if bridge is not None else veth
    run_tool([*outside, "route", "add", f"{address}/32", "dev", via, "src", peer])
    inside = ["ip", "-n", netns]
    run_tool([*inside, "addr", "add", f"{address}/32", "dev", veth_in])
    run_tool([*inside, "link", "set", veth_in, "up"])
    run_tool([*inside, "link", "set", "lo", "up"])
    run_tool([*inside, "route", "add", f"{peer}/32", "dev", veth_in])


def unlink_namespace(netns: str, veth: str, address: str, behind_jump: bool) -> None:
    """Undo :func:`link_namespace` (after the namespace's sshd is gone)."""
    # Deleting one end of the pair deletes both, at once rather than
    # whenever the kernel gets round to freeing the namespace.
    run_tool(["ip", "link", "delete", veth], check=False)
    if behind_jump:
        run_tool(["ip", "route", "delete", "unreachable", f"{address}/32"], check=False)
    delete_namespace(netns)


# One file per live pool that needs the range's route (its creator's pid first):
# the last one to go removes the route, whatever other pools still run.
RANGE_HOLDERS = Path("/run/lock/mgmt-test-unreachable")


def unreachable_range(holder: str) -> None:
    """An ``unreachable`` route for all of :data:`NETWORK` on this machine (the
    initiator's namespace): only the hosts' own /32 routes lead anywhere, so a
    packet for a host behind another fails at once, whatever its address.
    ``holder``: ``<pid>-<name>``, unique per pool. Call with :func:`allocation_lock`
    held; :func:`release_unreachable_range` undoes it."""
    RANGE_HOLDERS.mkdir(parents=True, exist_ok=True)
    (RANGE_HOLDERS / holder).touch()
    run_tool(["ip", "route", "replace", "unreachable", str(NETWORK)])


def release_unreachable_range(holder: str) -> None:
    """Drop ``holder``; remove the route once no live pool holds it (with the lock held)."""
    with contextlib.suppress(FileNotFoundError):
        (RANGE_HOLDERS / holder).unlink()
    for other in list(RANGE_HOLDERS.iterdir()) if RANGE_HOLDERS.is_dir() else []:
        pid = other.name.split("-", 1)[0]
        if pid.isdigit() and _pid_alive(int(pid)):
            return
        other.unlink()  # its pool's process died without releasing it
    run_tool(["ip", "route", "delete", "unreachable", str(NETWORK)], check=False)
