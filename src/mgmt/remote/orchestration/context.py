"""What every session of one run is given, made once by the initiator (or a
secondary, for the hosts below it) and only read after: the bundle, where the
tunnels lead, the transport, the agents' options, and how a graph file becomes
what its host is sent.

Imported by secondaries too (mgmt.remote.hierarchy): Python 3.6, standard library.
"""

from pathlib import Path
from typing import Any, Callable, Dict, NamedTuple, Optional, Tuple

from mgmt.errors import GraphError
from mgmt.remote.hostspec import HostSpec
from mgmt.remote.transport.runner import Runner

# How a host's graph file becomes what it is sent: the bytes, and the JSON form if any.
Payload = Callable[[Path], Tuple[bytes, Optional[str]]]


def graph_payload(graph: Path) -> Tuple[bytes, Optional[str]]:
    """The graph's bytes, and its JSON form on one line when it has one (the agent
    then never imports PyYAML, see mgmt.graph.located)."""
    return payload_of(graph.read_text(encoding="utf-8"))


def payload_of(text: str, document: Any = None) -> Tuple[bytes, Optional[str]]:
    """:func:`graph_payload` of a graph's text already read (``document``: what
    mgmt.graph.located.load_located read of it, if that was done)."""
    from mgmt.graph.located import graph_as_json

    try:
        as_json = graph_as_json(text, document)
    except GraphError:
        as_json = None  # edited into a bad state: the agent says why
    if as_json is not None and "\n" in as_json:
        as_json = None
    return (text if as_json is None else as_json).encode("utf-8"), as_json


class RunContext(NamedTuple):
    """What every session of one run shares (read only)."""

    bundle: Path
    bundle_sha256: str
    endpoint: Any  # where tunnels lead: mgmt.remote.orchestration.etcd
    connect: Callable[[HostSpec], Runner]  # the transport, chosen by the initiator
    bundle_build_id: str = ""
    caching: bool = True
    agent_options: Dict[str, Any] = {}  # noop, no_watch, verbosity: mgmt.settings
    output: Optional[Callable[[str, str], None]] = None
    # What a host is sent for its graph file (a secondary's files hold that already):
    # at an edit, and when its agent starts (None: the same).
    payload: Payload = graph_payload
    start_payload: Optional[Payload] = None
