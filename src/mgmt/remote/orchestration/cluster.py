"""The third kind of etcd endpoint: the cluster's own etcd, on the hosts.

:class:`~.etcd.RunEtcd` is the initiator's etcd and :class:`~.etcd.SeedsEtcd`
an existing cluster; :class:`HostsEtcd` is what a detached run exchanges
through: members on the first K hosts (``--cluster-size K``; by default 1 for
one or two hosts, 3 from three on), listening on the address each host is
reached at (the one the SSH connection arrived on, or ``--cluster-address
HOST=ADDR``), with credentials made for this cluster. Agents dial its members
directly (``seeds``), not through a tunnel: the cluster lives on without the
initiator. The members talk to each other over TLS, with certificates made
for this cluster (:mod:`.cluster_tls`).
"""

import secrets
import threading
from typing import Dict, List, NamedTuple, Optional, Sequence

from mgmt.errors import InputError
from mgmt.remote.orchestration.cluster_tls import MemberTLS, member_certificates
from mgmt.settings import EtcdCredentials
from mgmt.world.auth import new_run_credentials

CLIENT_PORT = 2379
PEER_PORT = 2380


class Member(NamedTuple):
    host: str  # the host's name in the cluster (the graph's remote:)
    name: str  # the etcd member's name
    address: str

    @property
    def client_url(self) -> str:
        return f"http://{self._in_url}:{CLIENT_PORT}"

    @property
    def peer_url(self) -> str:
        return f"https://{self._in_url}:{PEER_PORT}"  # TLS between members: cluster_tls

    @property
    def _in_url(self) -> str:
        """The address as a URL holds it: an IPv6 one (from --cluster-address or
        SSH_CONNECTION, which gives it bare) in brackets."""
        bare = ":" in self.address and not self.address.startswith("[")
        return f"[{self.address}]" if bare else self.address


def default_size(hosts: int) -> int:
    """1 member for one or two hosts (two members would halve availability), 3 from three."""
    return 1 if hosts < 3 else 3


def check_size(size: int, hosts: int) -> int:
    """The number of members (``size``, 0 for the default); an input error if impossible."""
    size = size or default_size(hosts)
    if size < 1 or size > hosts:
        raise InputError(f"--cluster-size {size}: between 1 and the {hosts} host(s)")
    return size


def parse_addresses(values: Sequence[str], hosts: Sequence[str]) -> Dict[str, str]:
    """``--cluster-address HOST=ADDR`` flags as a dict; an unknown host is an input error."""
    found: Dict[str, str] = {}
    for value in values:
        host, sep, address = value.partition("=")
        if not sep or not host or not address or any(c.isspace() for c in value):
            raise InputError(f"--cluster-address {value!r}: expected HOST=ADDRESS")
        if host not in hosts:
            raise InputError(
                f"--cluster-address {value!r}: {host!r} is not a host of this run "
                f"({', '.join(hosts)})"
            )
        found[host] = address
    return found


def new_token() -> str:
    """A cluster's token: its members' --initial-cluster-token, and what its run's
    processes on the hosts are known by (their owner) until the hand-over."""
    return "mgmt-" + secrets.token_hex(6)


class HostsEtcd:
    """The cluster's etcd on the hosts: who the members are, and the credentials
    every agent uses (readwrite on /_mgmt/ only; the root account stays on the
    members' hosts, in a file of the login user's alone: members leave the cluster
    through it, mgmt.remote.orchestration.detach_stop)."""

    def __init__(
        self,
        hosts: Sequence[str],
        addresses: Dict[str, str],
        size: int = 0,
        credentials: Optional[EtcdCredentials] = None,
        token: str = "",
        clocks: Sequence[float] = (),
    ):
        """``clocks``: the hosts' clocks (POSIX times, as each said it): the members'
        certificates are valid by the one furthest behind."""
        size = check_size(size, len(hosts))
        missing = [h for h in hosts[:size] if not addresses.get(h)]
        if missing:
            raise InputError(
                f"no address for {', '.join(missing)}: give --cluster-address HOST=ADDR"
            )
        self.members: List[Member] = [
            Member(host, f"mgmt-{i + 1}", addresses[host]) for i, host in enumerate(hosts[:size])
        ]
        self.credentials = credentials or new_run_credentials()
        self.token = token or new_token()
        self._earliest_clock = min(clocks) if clocks else None
        self._tls: Optional[Dict[str, MemberTLS]] = None
        self._tls_lock = threading.Lock()  # members start in parallel: one CA for all

    def tls(self, member: Member) -> MemberTLS:
        """The member's certificate and key, and the cluster's CA (made once, in memory)."""
        with self._tls_lock:
            if self._tls is None:
                addresses = {m.name: m.address for m in self.members}
                self._tls = member_certificates(self.token, addresses, self._earliest_clock)
        return self._tls[member.name]

    @property
    def seeds(self) -> List[str]:
        return [m.client_url for m in self.members]

    def member(self, host: str) -> Optional[Member]:
        return next((m for m in self.members if m.host == host), None)

    @property
    def peers(self) -> Dict[str, str]:
        return {m.name: m.peer_url for m in self.members}

    def publish_converged(self, host: str, converged: bool) -> None:
        pass  # the detached agents write their own converged keys

    def close(self) -> None:
        pass  # the cluster outlives the initiator: `mgmt stop` ends it
