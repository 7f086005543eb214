"""One agent per host, however the graphs spell it.

``load_remotes`` refuses two graphs that name one host the same way. Two
spellings of one host (its name and its address, an ssh_config alias and its
HostName) pass that check, and would start two agents there that fight over
its resources and its keys in etcd. What a connection actually reached tells
them apart: the same login (user) at the same address and port is one host.
Only direct connections are compared: through a ProxyJump the address seen is
the jump host's, shared by every host behind it.
"""

import threading
from typing import Dict, NamedTuple, Optional

from mgmt.errors import RemoteError


class Login(NamedTuple):
    """Who logged in where, as the connection reached it."""

    user: str
    address: str
    port: int

    def __str__(self) -> str:
        address = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.user}@{address}:{self.port}"


class SameHostGuard:
    """Claims each login for the first host name that reached it, for one run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hosts: Dict[Login, str] = {}

    def claim(self, host: str, login: Optional[Login]) -> None:
        """RemoteError for ``host`` if another host of the run has this login
        (None, a login that cannot be told: nothing to compare)."""
        if login is None:
            return
        with self._lock:
            first = self._hosts.setdefault(login, host)
        if first != host:
            raise RemoteError(
                host,
                f"the same host as {first} (both log in as {login}): two agents there would "
                "fight over its resources; give the host one graph",
            )
