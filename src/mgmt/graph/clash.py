"""Resources that would fight: two of them managing the same thing.

Two file resources with one path, one writing "one" and the other "two",
never converge: each write is an event for the other (30,000 writes in 8 s).
A kind names what it manages in the ids it provides for autoedges
(``file:/etc/motd``, ``svc:sshd.service``, ``pkg:nginx``, ``hostname:static``); the
exchange of exported resources already treats those ids as identities (a
collected resource whose id is taken locally is skipped), and the graph
refuses two local resources with one id in the same way.

Only the exact id is compared: a file inside a directory another resource
manages is the usual pattern (the directory first, by autoedge), not a clash.
"""

from typing import Dict, Iterable, Optional, Tuple

from mgmt.graph.model import ResourceSpec
from mgmt.resources.base import kind_class

__all__ = ["find_clash"]


def find_clash(specs: Iterable[ResourceSpec]) -> Optional[Tuple[ResourceSpec, ResourceSpec, str]]:
    """The first pair (earlier, later) that provide one id, and that id; or None."""
    owners: Dict[str, ResourceSpec] = {}
    for spec in specs:
        if spec.auto is None:  # cached on the spec: dependencies() reuses it
            spec.auto = kind_class(spec.kind).autoedges(spec.name, spec.params)
        for ident in spec.auto[0]:
            first = owners.setdefault(ident, spec)
            if first is not spec:
                return first, spec, ident
    return None
