"""One agent per host, however the graphs spell it.

``load_remotes`` refuses two graphs that name one host the same way. Two
spellings of one host (its name and its address, an ssh_config alias and its
HostName) pass that check, and would start two agents there that fight over
its resources and its keys in etcd. What a connection actually reached tells
them apart: the same address and port is one host, whoever logs in (two users,
one through sudo, would still fight over the same machine). Only direct
connections are compared: through a ProxyJump the address seen is the jump
host's, shared by every host behind it.
"""

import ipaddress
import threading
from typing import Dict, NamedTuple, Optional, Sequence, Tuple

from mgmt.errors import RemoteError


class Endpoint(NamedTuple):
    """The address and port a connection reached."""

    address: str
    port: int

    @classmethod
    def of(cls, address: str, port: int) -> "Endpoint":
        """An IPv4-mapped IPv6 address (::ffff:a.b.c.d) as the IPv4 one it is."""
        try:
            parsed = ipaddress.ip_address(address)
        except ValueError:
            return cls(address, port)
        return cls(str(getattr(parsed, "ipv4_mapped", None) or parsed), port)

    def __str__(self) -> str:
        return (
            f"[{self.address}]:{self.port}"
            if ":" in self.address
            else f"{self.address}:{self.port}"
        )


class Login(NamedTuple):
    """Who a connection logged in as, and where: the user's detached cluster there."""

    user: str
    endpoint: Endpoint

    def __str__(self) -> str:
        return f"{self.user}@{self.endpoint}"


def later_names(logins: Sequence[Tuple[str, Optional[Login]]]) -> Dict[str, str]:
    """Of (host, login) pairs in the graphs' order, each host whose login an earlier
    host had -> how it is told. For the commands that look at or end a detached
    cluster (kept in the login user's home): one cluster is seen once, under its
    first name. Another user at the same address has a cluster of its own."""
    firsts: Dict[Login, str] = {}
    later: Dict[str, str] = {}
    for host, login in logins:
        if login is None:
            continue
        first = firsts.setdefault(login, host)
        if first != host:
            later[host] = f"the same login as {first} ({login})"
    return later


class SameHostGuard:
    """Claims each endpoint for the first host name that reached it, for one run:
    hosts that run a graph and hosts that are the ``via:`` of others (``hop``) alike."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hosts: Dict[Endpoint, Tuple[str, bool]] = {}

    def claim(self, host: str, endpoint: Optional[Endpoint], hop: bool = False) -> None:
        """RemoteError for ``host`` if another host of the run reached ``endpoint``
        (None, an endpoint that cannot be told: nothing to compare)."""
        if endpoint is None:
            return
        with self._lock:
            first, first_hop = self._hosts.setdefault(endpoint, (host, hop))
        if first == host:
            return
        if hop and first_hop:
            why = "one via: host under two names; name it one way in every graph"
        elif hop or first_hop:
            why = "a host runs its graph or is the via: of others, not both; name it one way"
        else:
            why = "two agents there would fight over its resources; give the host one graph"
        raise RemoteError(host, f"the same host as {first} (both reach {endpoint}): {why}")
