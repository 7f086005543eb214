"""The validated graph: what a graph file asks for, independent of YAML."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from mgmt.resources.base import Meta

# A resource is identified by (kind, name).
ResourceKey = Tuple[str, str]

EXPORT_MARK = "@@"


def key_str(key: ResourceKey) -> str:
    return f"{key[0]}[{key[1]}]"


@dataclass
class ResourceSpec:
    """One resource as the graph describes it; params validated, defaults filled.

    ``exported`` resources (named ``@@name`` in the file) are published to the
    world instead of applied; ``origin`` is the exporting host of a collected one.
    """

    kind: str
    name: str
    params: Dict[str, Any]
    meta: Meta = field(default_factory=Meta)
    line: Optional[int] = None
    exported: bool = False
    origin: str = ""
    # The kind's autoedges (provided ids, needed ids), computed once on demand.
    auto: Optional[Tuple[List[str], List[str]]] = field(default=None, compare=False, repr=False)

    @property
    def key(self) -> ResourceKey:
        return (self.kind, self.name)

    def same_as(self, other: ResourceSpec) -> bool:
        """Equal for live reload: a changed line number alone changes nothing."""
        return (
            self.kind == other.kind
            and self.name == other.name
            and self.params == other.params
            and self.meta == other.meta
            and self.exported == other.exported
        )


@dataclass(frozen=True)
class Edge:
    """``to`` runs after ``from_``."""

    from_: ResourceKey
    to: ResourceKey
    name: str = ""
    line: Optional[int] = None


@dataclass(frozen=True)
class Collect:
    """A collect: entry: run every exported resource of ``kind`` (filtered by ``pattern``)."""

    kind: str
    pattern: str = ""


@dataclass
class Graph:
    """One validated graph file: its resources, edges, collects and remote: value."""

    name: str
    resources: Dict[ResourceKey, ResourceSpec] = field(default_factory=dict)
    edges: List[Edge] = field(default_factory=list)
    collect: List[Collect] = field(default_factory=list)
    comment: str = ""
    remote: Optional[str] = None
    remote_line: Optional[int] = None  # for errors about the remote: value
    path: Optional[str] = None

    def local(self) -> Dict[ResourceKey, ResourceSpec]:
        """The resources this host applies itself (exports are only published)."""
        return {k: r for k, r in self.resources.items() if not r.exported}

    def exported(self) -> Dict[ResourceKey, ResourceSpec]:
        return {k: r for k, r in self.resources.items() if r.exported}
