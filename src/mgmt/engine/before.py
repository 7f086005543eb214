"""What would change before a vertex under noop: the resources above it (its parents,
theirs, ...) whose check found they would change (Resource.changed_before).

Walking every ancestor at each check made ``--noop`` quadratic on a long chain
(8,000 resources: 14.5 s against 1.2 s without it). Instead each vertex keeps a
:class:`WouldChange`, built from its parents' when it is first asked for: the
parents that would change, and the parents' own :class:`WouldChange` shared,
not copied. Building one costs the vertex's parents; the names are only listed
when a resource reads them (pkg, svc and the served kinds do, and only when
something above them would change).

A parent checked again later (an event) may turn would-change after its
descendants were built: :func:`after_check` rebuilds those below it, stopping
where nothing differs. A graph edit forgets them all (the engine clears each vertex's); they
are built again on demand. All of it runs under the engine's lock; a
:class:`WouldChange` is never changed once built, so a resource reads its own
outside the lock.
"""

import collections.abc
from typing import TYPE_CHECKING, Dict, Iterator, List, Optional, Sequence, Tuple

from mgmt.engine.vertex import would_change

if TYPE_CHECKING:  # for the annotations alone
    from mgmt.engine.vertex import Vertex


class WouldChange(collections.abc.Sequence):  # of str
    """The resources above one vertex that would change, as their sorted names.

    ``changed``: its parents that would change; ``parts``: the non-empty
    WouldChange of its parents. Truth is known at once; the names are listed
    (once, then kept) on first use."""

    __slots__ = ("_names", "changed", "parts")

    def __init__(self, changed: Tuple["Vertex", ...], parts: Tuple["WouldChange", ...]):
        self.changed = changed
        self.parts = parts
        self._names: Optional[List[str]] = None

    def __bool__(self) -> bool:
        return bool(self.changed or self.parts)  # a part is never empty

    def __len__(self) -> int:
        return len(self.names())

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __getitem__(self, index):  # type: ignore[no-untyped-def]  # int or slice
        return self.names()[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (WouldChange, list, tuple)):
            return self.names() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # compared as a list is

    def __repr__(self) -> str:
        return repr(self.names())

    def names(self) -> List[str]:
        """The names, sorted; each resource once however many paths lead to it."""
        if self._names is None:
            found: Dict[int, Vertex] = {}
            seen = set()
            todo: List[WouldChange] = [self]
            while todo:
                node = todo.pop()
                if id(node) in seen:
                    continue
                seen.add(id(node))
                for vertex in node.changed:
                    found[id(vertex)] = vertex
                todo.extend(node.parts)
            self._names = sorted(repr(vertex.res) for vertex in found.values())
        return self._names


NOTHING = WouldChange((), ())


def would_change_before(vertex: "Vertex") -> WouldChange:
    """The resources before ``vertex`` that a check in noop mode found it would
    change: what ``vertex`` sees now is not what it would see after them (a
    repository file not written yet, a server not started). Called under the
    engine's lock; builds what is missing above it, each vertex once."""
    todo = [vertex]
    while todo:  # depth first, parents before their child, without recursion
        current = todo[-1]
        if current.before is not None:
            todo.pop()
            continue
        missing = [p for p in current.parents if p.before is None]
        if missing:
            todo.extend(missing)
            continue
        todo.pop()
        current.before = _build(current)
    assert vertex.before is not None
    return vertex.before


def _build(vertex: "Vertex") -> WouldChange:
    """``vertex``'s WouldChange from its parents' (all built); its old one when
    the same, so that what is below it need not change either."""
    changed = tuple(p for p in vertex.parents if would_change(p))
    parts: List[WouldChange] = []
    seen = set()
    for parent in vertex.parents:
        part = parent.before
        if part and id(part) not in seen:
            seen.add(id(part))
            parts.append(part)
    if not changed and not parts:
        return NOTHING
    if not changed and len(parts) == 1:
        return parts[0]  # shared: a chain below one change holds one, not one each
    old = vertex.before
    if old is not None and _same(old.changed, changed) and _same(old.parts, parts):
        return old
    return WouldChange(changed, tuple(parts))


def _same(old: Sequence[object], new: Sequence[object]) -> bool:
    return len(old) == len(new) and all(a is b for a, b in zip(old, new))


def after_check(vertex: "Vertex", was: bool) -> None:
    """``vertex`` was checked; ``was``: whether it would change before. If that
    turned, rebuild the WouldChange below it that were built, as far as they
    differ (one not built yet is built from the right ones when asked for)."""
    if would_change(vertex) == was or vertex.before is None:
        return  # none below it was built: each is built after its parents
    todo = [vertex]
    while todo:
        for child in todo.pop().children:
            if child.before is not None:
                rebuilt = _build(child)
                if rebuilt is not child.before:
                    child.before = rebuilt
                    todo.append(child)
