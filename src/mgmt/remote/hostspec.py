"""Which host a --remote graph is for: its ``remote:`` key, parsed and checked.

``remote:`` is either ``ssh://user[:password]@host[:port]`` (mgmt 0.0.5's form)
or a bare ``[user@]alias[:port]``: any name ~/.ssh/config knows, whose HostName,
User, Port, IdentityFile and ProxyJump then apply, as they would for ``ssh alias``.
A password in the URL works, but the file then holds a secret in plain text,
so it is reported with a warning.
"""

import re
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple, Union
from urllib.parse import unquote, urlsplit

from mgmt.errors import GraphError
from mgmt.log import get_logger

if TYPE_CHECKING:
    from mgmt.graph.model import Graph

log = get_logger("remote")

PASSWORD_WARNING = (
    "{path}: the remote URL holds a password in plain text; prefer keys, "
    "ssh-agent or --allow-interactive"
)
# A user, an alias or a host name: what ssh itself would accept, no shell or URL syntax,
# and no leading "-": ssh (and sudo, scp...) would read "-oProxyCommand=..." as an option.
# Used with fullmatch: "$" would also take a final newline ("host\n"). A user may
# hold "@" past its first character: a domain login (SSSD's fully qualified
# names, a realmd-joined RHEL's default: alice@corp.example.com), written
# ssh://alice%40corp.example.com@host, or alice@corp.example.com@host as ssh takes it.
_NAME_RE = re.compile(r"[A-Za-z0-9_.%+][A-Za-z0-9_.%+@-]*")
_HOST_RE = re.compile(r"[A-Za-z0-9_.%:][A-Za-z0-9_.%:-]*")
# What the resolver (inet_aton) takes for an IPv4 address: up to 4 parts, each
# decimal, octal (a leading 0) or hex (0x). One part alone is left alone: it may
# be an ~/.ssh/config alias.
_INET_ATON_RE = re.compile(r"(0[xX][0-9a-fA-F]*|[0-9]+)(\.(0[xX][0-9a-fA-F]*|[0-9]+)){1,3}")


class HostSpec(NamedTuple):
    """A host to run one graph on: where to connect, as whom, and which graph.

    A NamedTuple (not a dataclass): secondaries use it too, on Python 3.6.
    """

    target: str  # an address or an ~/.ssh/config alias
    graph: Path
    user: Optional[str] = None
    port: Optional[int] = None
    password: Optional[str] = None  # never in repr()
    # The hosts it is reached through, first hop first (its graph's via:, see
    # mgmt.remote.hierarchy); () for a host the initiator logs in to itself.
    via: Tuple["HostSpec", ...] = ()
    # The graph's sudo: and python: keys (None: the run's --sudo, --python).
    sudo: Union[bool, str, None] = None
    python: Optional[str] = None

    @property
    def name(self) -> str:
        """The host's name in the cluster (the agent's --hostname)."""
        return self.target

    def __str__(self) -> str:
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        return f"{user}{self.target}{port}"

    def __repr__(self) -> str:
        return (
            f"HostSpec(target={self.target!r}, graph={self.graph!r}, user={self.user!r}, "
            f"port={self.port!r}, via={self.via!r})"
        )


def _ambiguous_address(host: str) -> Optional[str]:
    """Why ``host`` is refused when the resolver would read it as an IPv4 address in
    another form than four plain decimal parts ("010.254.0.2" is 8.254.0.2 to
    it, "10.1" is 10.0.0.1): the host reached would not be the one meant."""
    if not _INET_ATON_RE.fullmatch(host):
        return None
    import ipaddress  # only for names made of digits

    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return (
            "is not a plain IPv4 address (four decimal parts, 0 to 255, no leading zeros): "
            "the resolver would read 010 as octal 8 and 10.1 as 10.0.0.1"
        )
    return None


def _bare_port(
    target: str, bad: "Callable[[str], GraphError]", value: str
) -> Tuple[str, Optional[int]]:
    """``host:port`` written without ssh:// (Fabric's shorthand): the host and the
    port, checked as the URL's are. Left to Fabric, a bad port ended in an
    internal error on connecting ("a:abc", ":22"), port 0 or 99999 passed, and
    the port became part of the host's name in the cluster. Two colons or more:
    a bare IPv6 address, taken whole (as Fabric does)."""
    if target.count(":") != 1:
        return target, None
    host, _, port = target.partition(":")
    if not host:
        raise bad(f"not a host name or ssh alias: {value!r}")
    if not port.isdigit() or not 0 < int(port) <= 65535:
        raise bad(f"invalid port in {value!r}")
    return host, int(port)


def _written_host(netloc: str, host: Optional[str]) -> Optional[str]:
    """The URL's host as written: urlsplit's ``hostname`` is lower-cased, and an
    ~/.ssh/config alias is matched case by case (``ssh ssh://root@WEB2`` finds
    ``Host WEB2``; mgmt looked for ``web2`` and found no such host)."""
    written = netloc.rpartition("@")[2]
    if not written.startswith("["):
        written = written.partition(":")[0]
    else:
        written = written[1:].partition("]")[0]
    return written if host is not None and written.lower() == host else host


def parse_remote(
    value: object, graph: Path, line: Optional[int] = None, key: str = "remote"
) -> HostSpec:
    """Parse one ``remote:`` value (or a ``via:`` hop, as ``key`` says); a bad one
    is a GraphError naming file and line."""

    def bad(message: str) -> GraphError:
        if isinstance(value, str) and "@" in value:  # a password in the URL: not in the message
            from mgmt.world.client import shown_url  # on the error path only

            message = message.replace(repr(value), repr(shown_url(value)))
        return GraphError(f"{key}: {message}", str(graph), line)

    if not isinstance(value, str) or not value.strip():
        raise bad("expected ssh://user@host[:port] or an ~/.ssh/config alias")
    value = value.strip()
    if "://" not in value:
        user, at, target = value.rpartition("@")
        # "@host" (an empty user) is refused too.
        if not _HOST_RE.fullmatch(target) or (at and not _NAME_RE.fullmatch(user)):
            raise bad(f"not a host name or ssh alias: {value!r}")
        target, port = _bare_port(target, bad, value)
        ambiguous = _ambiguous_address(target)
        if ambiguous:
            raise bad(f"{target!r} {ambiguous}")
        return HostSpec(target=target, graph=graph, user=user or None, port=port)

    try:
        url = urlsplit(value)
        host = _written_host(url.netloc, url.hostname)
    except ValueError as err:  # an unclosed "[" (IPv6)
        raise bad(f"not a URL ({err}): {value!r}") from None
    # Percent-decoded, as the user is: a link-local address's zone is written %25
    # in a URL (RFC 6874), and "fe80::1%25eth0" would name zone "25eth0".
    host = unquote(host) if host else host
    if url.scheme != "ssh":
        raise bad(f"unsupported scheme {url.scheme!r} (only ssh:// is supported)")
    if url.path not in ("", "/") or url.query or url.fragment:
        raise bad(f"unexpected path or query in {value!r}")
    try:
        port = url.port
    except ValueError:
        raise bad(f"invalid port in {value!r}") from None
    if port == 0:
        raise bad(f"invalid port in {value!r}")
    if not host or not _HOST_RE.fullmatch(host):
        raise bad(f"missing or invalid host in {value!r}")
    ambiguous = _ambiguous_address(host)
    if ambiguous:
        raise bad(f"{host!r} {ambiguous}")
    user = unquote(url.username) if url.username is not None else None
    if user is not None and not _NAME_RE.fullmatch(user):  # "ssh://@host" too
        raise bad(f"invalid user name {user!r}")
    password = unquote(url.password) if url.password is not None else None
    if password is not None:
        log.warning(PASSWORD_WARNING.format(path=graph))
    return HostSpec(target=host, graph=graph, user=user, port=port, password=password)


def _remote_value(path: Path) -> "Tuple[Graph, object, Optional[int]]":
    """The graph file, validated, with its ``remote:`` value and that value's line.

    The whole graph is loaded and checked as ``mgmt run --file`` would (one
    reader for graph files), so a bad one stops the run with its file:line
    before any host is contacted, instead of failing on the host.
    """
    from mgmt.graph.parse import load_graph  # lazy: the agent's start-up needs none of this

    graph = load_graph(path)
    if graph.remote is None:
        raise GraphError("no remote: key (which host should run this graph?)", str(path))
    return graph, graph.remote, graph.remote_line


def read_remote(path: Path) -> HostSpec:
    """The host a --remote graph file names, with its sudo: and python: keys and
    the hops of its ``via:``."""
    return _read_remote(path)[0]


def _read_remote(path: Path) -> Tuple[HostSpec, Optional[int]]:
    """:func:`read_remote`, and the line of the ``remote:`` key (for errors)."""
    graph, value, line = _remote_value(path)
    spec = parse_remote(value, path, line)._replace(sudo=graph.sudo, python=graph.python)
    if not graph.via:
        return spec, line
    from mgmt.remote.hierarchy.hops import parse_via

    return parse_via(spec, graph.via, graph.via_line), line


class RemoteSet(NamedTuple):
    """The hosts of a run, one graph each."""

    specs: List[HostSpec]


def load_remotes(paths: Sequence[Path]) -> RemoteSet:
    """Read every --remote graph: duplicate files collapse, a duplicate host is refused.

    A bad file, or a second graph for a host already named (two agents of one
    name would fight over its resources and its state in etcd), is an input
    error for the whole run, reported before any host is contacted.
    """
    specs: List[HostSpec] = []
    seen_files = set()
    by_name: Dict[str, str] = {}  # host -> "file:line" of the graph that named it first
    for path in paths:
        resolved = Path(path).resolve()
        if resolved in seen_files:
            continue
        seen_files.add(resolved)
        spec, line = _read_remote(Path(path))
        if spec.name in by_name:
            why = f"remote: host {spec.name} is already the remote of {by_name[spec.name]}"
            raise GraphError(why, str(path), line)
        by_name[spec.name] = str(path) if line is None else f"{path}:{line}"
        specs.append(spec)
    return RemoteSet(specs)
