"""The validated graph: what a graph file asks for, independent of YAML.

Plain classes and NamedTuples rather than dataclasses, for the agent's start-up
(see mgmt.settings).
"""

from typing import Any, Dict, List, NamedTuple, Optional, Tuple, Union

from mgmt.resources.base import Meta
from mgmt.resources.fields import shown_name

# A python: key or --python: a name is looked up on the host's PATH, an absolute
# path taken as it is, and ~/ is the home of the user the agent runs as. A
# relative path is relative to nothing dependable: START looked it up from the
# login's home and then ran it from the run dir, where it was not found.
RELATIVE_PYTHON = (
    "is a relative path: give a name on the host's PATH (python3.11), an absolute path or ~/PATH"
)


def relative_path(value: str) -> bool:
    """Whether a python: key or --python is a path relative to no known folder."""
    return "/" in value and not value.startswith(("/", "~/"))


# A resource is identified by (kind, name).
ResourceKey = Tuple[str, str]

EXPORT_MARK = "@@"


def key_str(key: ResourceKey) -> str:
    """``kind[name]`` for a message or a log line, the name cut and escaped (see shown_name)."""
    return f"{shown_name(key[0])}[{shown_name(key[1])}]"


class ResourceSpec:
    """One resource as the graph describes it; params validated, defaults filled.

    ``exported`` resources (named ``@@name`` in the file) are published to the
    world instead of applied; ``origin`` is the exporting host of a collected one.
    """

    __slots__ = ("auto", "exported", "kind", "line", "meta", "name", "origin", "params")
    # What == and repr look at: not the autoedge cache.
    _COMPARED = ("kind", "name", "params", "meta", "line", "exported", "origin")

    def __init__(
        self,
        kind: str,
        name: str,
        params: Dict[str, Any],
        meta: Meta = Meta(),  # noqa: B008 - immutable
        line: Optional[int] = None,
        exported: bool = False,
        origin: str = "",
    ):
        self.kind, self.name, self.params, self.meta = kind, name, params, meta
        self.line, self.exported, self.origin = line, exported, origin
        # The kind's autoedges (provided ids, needed ids), computed once on demand.
        self.auto: Optional[Tuple[List[str], List[str]]] = None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ResourceSpec):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self._COMPARED)

    __hash__ = None  # type: ignore[assignment]  # mutable: not a dict key

    def __repr__(self) -> str:
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in self._COMPARED)
        return f"ResourceSpec({fields})"

    @property
    def key(self) -> ResourceKey:
        return (self.kind, self.name)

    def same_as(self, other: "ResourceSpec") -> bool:
        """Equal for live reload: a changed line number alone changes nothing."""
        return (
            self.kind == other.kind
            and self.name == other.name
            and self.params == other.params
            and self.meta == other.meta
            and self.exported == other.exported
        )


class Edge(NamedTuple):
    """``to`` runs after ``from_``."""

    from_: ResourceKey
    to: ResourceKey
    name: str = ""
    line: Optional[int] = None


class Collect(NamedTuple):
    """A collect: entry: run every exported resource of ``kind`` (filtered by ``pattern``)."""

    kind: str
    pattern: str = ""


class Graph:
    """One validated graph file: its resources, edges, collects and remote: value."""

    def __init__(self, name: str, path: Optional[str] = None):
        self.name = name
        self.path = path
        self.resources: Dict[ResourceKey, ResourceSpec] = {}
        self.edges: List[Edge] = []
        self.collect: List[Collect] = []
        self.comment = ""
        self.remote: Optional[str] = None
        self.remote_line: Optional[int] = None  # for errors about the remote: value
        # How a remote run starts the agent on that host (see mgmt.remote.hostspec).
        self.sudo: Union[bool, str, None] = None  # true: root; a name: that user
        self.python: Optional[str] = None
        self.via: List[str] = []  # the hops to the host (mgmt.remote.hierarchy), first first
        self.via_line: Optional[int] = None

    def __repr__(self) -> str:
        return f"Graph({self.name!r}, {len(self.resources)} resources, path={self.path!r})"

    def local(self) -> Dict[ResourceKey, ResourceSpec]:
        """The resources this host applies itself (exports are only published)."""
        return {k: r for k, r in self.resources.items() if not r.exported}

    def exported(self) -> Dict[ResourceKey, ResourceSpec]:
        return {k: r for k, r in self.resources.items() if r.exported}
