"""Exported (``@@``) and collected resources: the graph's side of the world.

Exports are published in one call (one transaction) with their validated
parameters. Collection asks the world for every host's exports of the kinds
the graph collects, lets each kind apply the collect pattern, and validates
the result like a resource from a file; a bad one is logged and skipped.

Two hosts may export the same name: the second is renamed ``name@host``. But a
collected resource whose identity (what autoedges use, a file's path) is
already taken here, by a local resource or one collected before it, is skipped
with a warning: two files on one path would rewrite each other forever.
"""

from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from mgmt.engine.exportread import ExportReader
from mgmt.errors import GraphError
from mgmt.graph.limits import name_problem
from mgmt.graph.located import checked_value
from mgmt.graph.model import Graph, ResourceKey, ResourceSpec, key_str
from mgmt.log import get_logger
from mgmt.resources.base import FieldError, fill_params, kind_class
from mgmt.resources.fields import Meta, meta_export, meta_from_export, shown_name

log = get_logger("exchange")


def publish(world: Any, graph: Graph) -> None:
    """Publish this host's exports; keys it no longer exports go in the same call."""
    world.export(exports(graph))


def exports(graph: Graph) -> Dict[ResourceKey, Dict[str, Any]]:
    """What :func:`publish` sends: each export's parameters, by key.

    An export carries its ``meta`` (what differs from the defaults) under the key
    ``meta``, which no kind has as a field: a collector applies it as exported."""
    found = {}
    for key, spec in graph.exported().items():
        params = dict(spec.params)
        meta = meta_export(spec.meta)
        if meta:
            params["meta"] = meta
        found[key] = params
    return found


def collected(world: Any, graph: Graph) -> Dict[ResourceKey, ResourceSpec]:
    """Every host's exports of the collected kinds, ready to run here."""
    kinds = sorted(_patterns(graph))
    if not kinds:
        return {}
    return collected_from(world.collect(kinds), graph, getattr(world, "hostname", "this host"))


def _patterns(graph: Graph) -> Dict[str, str]:
    patterns: Dict[str, str] = {}
    for item in graph.collect:
        patterns.setdefault(item.kind, item.pattern)  # the first pattern for a kind wins
    return patterns


def collected_from(
    items: List[Any], graph: Graph, here: str, warn: Callable[..., None] = log.warning
) -> Dict[ResourceKey, ResourceSpec]:
    """:func:`collected` from ``items``, the world's exports as read (``here``: this
    host's name, for the warnings, said through ``warn``)."""
    patterns = _patterns(graph)
    local = graph.local()
    out: Dict[ResourceKey, ResourceSpec] = {}
    taken: Dict[str, str] = {}  # identity -> who has it, for the warning
    for spec in local.values():
        for ident in _provided(spec):
            taken.setdefault(ident, f"{key_str(spec.key)} of {here}")
    for item in sorted(items, key=lambda r: (r.hostname, r.kind, r.name)):
        if item.kind not in patterns:
            continue
        cls = kind_class(item.kind)
        name = item.name
        if (item.kind, name) in local or (item.kind, name) in out:
            name = f"{item.name}@{item.hostname}"  # two hosts exported the same name
            if (item.kind, name) in out:
                # An export of that very name (a host's "x@b" before b's "x"): the
                # rename must not put one in the other's place unsaid.
                warn(
                    "skipping %s from %s: %s, the name it would be collected under, "
                    "is collected from %s",
                    key_str((item.kind, item.name)),
                    shown_name(item.hostname),
                    key_str((item.kind, name)),
                    shown_name(out[(item.kind, name)].origin),
                )
                continue
        try:
            params = _checked(item)
            meta = meta_from_export(params.pop("meta")) if "meta" in params else Meta()
            params = cls.collected_params(item.name, params, patterns[item.kind])
            params = fill_params(cls, params)
            cls(name, params, meta)  # constructor checks that need the name
        except (FieldError, GraphError, TypeError, ValueError) as err:
            # The host and name as the key had them, escaped and cut: a name
            # from etcd may hold a line break meant to forge a log line.
            what = key_str((item.kind, item.name))
            reason = err.message if isinstance(err, GraphError) else err
            warn("skipping %s from %s: %s", what, shown_name(item.hostname), reason)
            continue
        spec = ResourceSpec(item.kind, name, params, meta, origin=item.hostname)
        provided = _provided(spec)
        clash = next((ident for ident in provided if ident in taken), None)
        if clash is not None:
            warn(
                "skipping %s from %s: %s is already taken by %s",
                key_str((item.kind, item.name)),
                shown_name(item.hostname),
                clash,
                taken[clash],
            )
            continue
        for ident in provided:
            taken[ident] = f"{key_str((item.kind, item.name))} from {shown_name(item.hostname)}"
        out[spec.key] = spec
    return out


def _checked(item: Any) -> Dict[str, Any]:
    """An export's parameters, checked as a graph file's resource is before its kind
    sees it: the names as a graph's (visible text on one line), the values within
    the graph's bounds (depth, count, valid text without NUL). GraphError if not."""
    for what, name in (("host", item.hostname), ("name", item.name)):
        problem = name_problem(name)
        if problem is not None:
            raise GraphError(f"its {what} {problem}")
    if not isinstance(item.params, dict):
        raise GraphError("its value is not a mapping")
    return checked_value(item.params)


def _provided(spec: ResourceSpec) -> List[str]:
    """The identities a resource provides (its autoedge ids), computed once per spec."""
    if spec.auto is None:
        spec.auto = kind_class(spec.kind).autoedges(spec.name, spec.params)
    return list(spec.auto[0])


class Collection:
    """What the agent runs: the graph's own resources and what it collects.

    It collects from every host's exports as last read, which its
    :class:`~mgmt.engine.exportread.ExportReader` reads on a thread of its own
    (etcd may hang: each read then waits for its timeouts) when asked: at the
    first graph, when the graph collects kinds not read yet, and when the agent
    says the exports changed (:meth:`refresh`) or cannot tell (``read``, an
    edit while the exports' watch is not running); ``on_read`` says when an
    answer came. So an edit changes only what it changes, and the exports as
    last read are kept while etcd cannot be read. It also owns why collected
    resources are left out when they close a dependency cycle with the
    graph's (:attr:`error`).
    """

    def __init__(
        self,
        world: Any,
        on_read: Optional[Callable[[], None]] = None,
        on_pending: Optional[Callable[[bool], None]] = None,
    ):
        """``on_read``, ``on_pending``: see :class:`~mgmt.engine.exportread.ExportReader`."""
        self.world = world
        self.error: Optional[str] = None
        self.reader = ExportReader(world, on_read, on_pending)
        self._answered = 0  # the newest read answered that wanted() collected from
        self._graph: Optional[Graph] = None  # the graph wanted() was last given
        self._warnings = _SaidOnce()

    @property
    def pending(self) -> bool:
        """Whether a read is asked, or its answer not yet applied (:meth:`apply`)."""
        return self.reader.pending

    def refresh(self) -> None:
        """The exports changed (from any thread): read them again. Returns at once."""
        self.reader.ask()

    def close(self) -> None:
        self.reader.close()

    def wanted(self, graph: Graph, read: bool = True) -> Dict[ResourceKey, ResourceSpec]:
        """The resources to run: the graph's, and the collected ones whose names
        it does not use itself (the graph's own resource wins, with a warning),
        from the exports as last read. ``read``: ask for a read (the exports as
        last read may be out of date); one is asked too when the graph collects
        kinds not read yet, which follow once it is answered."""
        wanted = dict(graph.local())
        if self.world is None or not graph.collect:
            self.reader.forget()
            self._answered, self._graph = 0, graph
            self._warnings = _SaidOnce()  # collecting again says them again
            return wanted
        kinds = sorted(_patterns(graph))
        done, last = self.reader.last()
        # Kinds never read are asked once per graph: the same graph again is the
        # answer's own collect, and a read that failed would be asked again at once.
        unread = last is None or not set(kinds) <= set(last[0])
        if read or (unread and graph is not self._graph):
            self.reader.ask(kinds)
        self._answered, self._graph = done, graph
        if last is None:
            return wanted
        here = getattr(self.world, "hostname", "this host")
        self._warnings.begin()
        collected = collected_from(last[1], graph, here, self._warnings)
        # collected_from() left out what the graph's own resources manage: a
        # name taken by one of them is said, not run.
        for key, spec in collected.items():
            if key in wanted:
                self._warnings("collected %s is not used: the graph has its own", key_str(key))
            else:
                wanted[key] = spec
        return wanted

    def apply(
        self, engine: Any, graph: Graph, path: str, read: bool = True
    ) -> Tuple[Dict[ResourceKey, ResourceSpec], Any]:
        """Run :meth:`wanted` on ``engine``: (what runs, the engine's GraphDiff).

        The graph alone has no cycle (parse_graph checks it): a cycle here goes
        through collected resources. They are all left out and the graph's own
        run; :attr:`error` says why, and the run fails."""
        try:  # an answer read is applied, or failed to be: it holds "converged" no more
            wanted = self.wanted(graph, read)
            diff = engine.update(wanted, graph.edges)
        except GraphError as err:
            self.error = f"{path}: {err.message} (through collected resources)"
            log.error("%s: running without the collected resources", self.error)
            wanted = dict(graph.local())
            return wanted, engine.update(wanted, graph.edges)
        finally:
            # After the update: the engine is busy with what it added by now, so
            # the agent is never seen idle in between (see ExportReader.pending).
            self.reader.applied(self._answered)
        self.error = None
        return wanted, diff


class _SaidOnce:
    """The warnings of collecting, each said once for as long as it holds.

    Every read of the exports (any host's change) and every edit collect again
    from all of them: a clash that stays was said again each time, five lines
    per clash at an agent's start. A warning is said when it was not among the
    previous collect's (:meth:`begin` starts a collect), so one that went away
    and comes back is said again."""

    def __init__(self) -> None:
        self._before: Set[str] = set()
        self._now: Set[str] = set()

    def begin(self) -> None:
        self._before, self._now = self._now, set()

    def __call__(self, message: str, *args: Any) -> None:
        text = message % args
        if text not in self._before and text not in self._now:
            log.warning("%s", text)
        self._now.add(text)
