"""Autogroup: resources a kind can apply together run as one vertex.

mgmt's autogroup, kept general: the engine knows only the contract of
:mod:`mgmt.resources.base` (``autogroup_key`` says which resources may share a
run, ``merge`` hands the leader its members) and never what a kind does with
it. pkg uses it to put every package into one dnf transaction.

Grouping happens on the specs, before the engine builds vertices: members
become one :class:`GroupSpec` whose key is the leader's kind and name with
the number of others, and the dependency map is rewritten onto it. A member whose merge would
close a dependency cycle (``pkg a -> file -> pkg b``) stays on its own, as in
mgmt, so grouping never changes what runs before what.
"""

from typing import Any, Dict, List, Mapping, Optional, Set, Tuple

from mgmt.graph.deps import find_cycle
from mgmt.graph.model import ResourceKey, ResourceSpec
from mgmt.resources.base import kind_class

Parents = Dict[ResourceKey, Set[ResourceKey]]


class GroupSpec(ResourceSpec):
    """Several specs of one kind run as one vertex; ``members`` in a stable order."""

    __slots__ = ("members",)

    def __init__(self, members: List[ResourceSpec]):
        leader = members[0]
        # The leader's name and a count: unique (the leader's is), short in logs.
        name = f"{leader.name} (+{len(members) - 1} grouped)"
        super().__init__(leader.kind, name, dict(leader.params), leader.meta, leader.line)
        self.members = members

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GroupSpec):
            return NotImplemented
        return self.members == other.members

    __hash__ = None  # type: ignore[assignment]

    def same_as(self, other: ResourceSpec) -> bool:
        if not isinstance(other, GroupSpec) or len(other.members) != len(self.members):
            return False
        return all(a.same_as(b) for a, b in zip(self.members, other.members))


def build(spec: ResourceSpec):  # -> Resource
    """The resource for a spec: a group's leader with its members merged in."""
    cls = kind_class(spec.kind)
    if not isinstance(spec, GroupSpec):
        return cls(spec.name, spec.params, spec.meta)
    first, rest = spec.members[0], spec.members[1:]
    leader = cls(first.name, first.params, first.meta)
    leader.merge([cls(m.name, m.params, m.meta) for m in rest])
    return leader


def _group_of(spec: ResourceSpec) -> Optional[Tuple[Any, ...]]:
    if not spec.meta.autogroup or spec.exported:
        return None
    key = kind_class(spec.kind).autogroup_key(spec.name, spec.params)
    # A group runs as its leader's meta says: only members that say the same
    # share it (a pkg with ``noop: true`` was installed with the others).
    meta = spec.meta
    return None if key is None else (spec.kind, key, meta.noop, meta.retry, meta.delay)


def _remap(parents: Mapping[ResourceKey, Set[ResourceKey]], into: Dict[ResourceKey, ResourceKey]):
    out: Parents = {}
    for key, deps in parents.items():
        target = into.get(key, key)
        merged = out.setdefault(target, set())
        merged.update(into.get(d, d) for d in deps)
        merged.discard(target)
    return out


def _apart(parents: Parents, members: List[ResourceSpec]) -> bool:
    """Whether no member runs before another, even through other resources: then
    one vertex for them all closes no cycle (it would have to pass from a member,
    through others, to a member)."""
    keys = {m.key for m in members}
    seen: Set[ResourceKey] = set()
    todo = [p for key in keys for p in parents.get(key, ())]
    while todo:
        key = todo.pop()
        if key in keys:
            return False
        if key not in seen:
            seen.add(key)
            todo.extend(parents.get(key, ()))
    return True


def autogroup(
    specs: Mapping[ResourceKey, ResourceSpec], parents: Mapping[ResourceKey, Set[ResourceKey]]
) -> Tuple[Dict[ResourceKey, ResourceSpec], Parents]:
    """(specs, parents) with groupable resources merged; unchanged when nothing groups."""
    buckets: Dict[Tuple[Any, ...], List[ResourceSpec]] = {}
    for key in sorted(specs):
        group = _group_of(specs[key])
        if group is not None:
            buckets.setdefault(group, []).append(specs[key])
    buckets = {g: members for g, members in buckets.items() if len(members) > 1}
    if not buckets:
        return dict(specs), {k: set(v) for k, v in parents.items()}
    into: Dict[ResourceKey, ResourceKey] = {}
    groups: List[List[ResourceSpec]] = []
    for members in buckets.values():
        if _apart(_remap(parents, into), members):
            # The usual case, in one walk of the graph: trying members one by one
            # walks it once per member (2000 packages took 3 s at each update).
            into.update((m.key, members[0].key) for m in members)
            groups.append(members)
            continue
        accepted = [members[0]]
        for spec in members[1:]:
            trial = dict(into)
            for member in [*accepted, spec]:
                trial[member.key] = accepted[0].key
            if find_cycle(_remap(parents, trial)) is None:
                accepted.append(spec)
                into = trial
        if len(accepted) > 1:
            groups.append(accepted)
    out = {k: s for k, s in specs.items() if k not in into}
    final_into: Dict[ResourceKey, ResourceKey] = {}
    for members in groups:
        group = GroupSpec(members)
        out[group.key] = group
        for member in members:
            final_into[member.key] = group.key
    return out, _remap(parents, final_into)
