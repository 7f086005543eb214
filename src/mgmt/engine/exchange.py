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

from typing import Any, Dict, List

from mgmt.graph.model import Graph, ResourceKey, ResourceSpec, key_str
from mgmt.log import get_logger
from mgmt.resources.base import FieldError, fill_params, kind_class

log = get_logger("exchange")


def publish(world: Any, graph: Graph) -> None:
    """Publish this host's exports; keys it no longer exports go in the same call."""
    world.export({key: dict(spec.params) for key, spec in graph.exported().items()})


def collected(world: Any, graph: Graph) -> Dict[ResourceKey, ResourceSpec]:
    """Every host's exports of the collected kinds, ready to run here."""
    patterns: Dict[str, str] = {}
    for item in graph.collect:
        patterns.setdefault(item.kind, item.pattern)  # the first pattern for a kind wins
    if not patterns:
        return {}
    local = graph.local()
    out: Dict[ResourceKey, ResourceSpec] = {}
    here = getattr(world, "hostname", "this host")
    taken: Dict[str, str] = {}  # identity -> who has it, for the warning
    for spec in local.values():
        for ident in _provided(spec):
            taken.setdefault(ident, f"{key_str(spec.key)} of {here}")
    for item in sorted(world.collect(list(patterns)), key=lambda r: (r.hostname, r.kind, r.name)):
        if item.kind not in patterns:
            continue
        cls = kind_class(item.kind)
        name = item.name
        if (item.kind, name) in local or (item.kind, name) in out:
            name = f"{item.name}@{item.hostname}"  # two hosts exported the same name
        try:
            params = cls.collected_params(item.name, item.params, patterns[item.kind])
            params = fill_params(cls, params)
            cls(name, params)  # constructor checks that need the name
        except (FieldError, TypeError, ValueError) as err:
            log.warning(
                "skipping %s from %s: %s", key_str((item.kind, item.name)), item.hostname, err
            )
            continue
        spec = ResourceSpec(item.kind, name, params, origin=item.hostname)
        provided = _provided(spec)
        clash = next((ident for ident in provided if ident in taken), None)
        if clash is not None:
            log.warning(
                "skipping %s from %s: %s is already taken by %s",
                key_str((item.kind, item.name)),
                item.hostname,
                clash,
                taken[clash],
            )
            continue
        for ident in provided:
            taken[ident] = f"{key_str((item.kind, item.name))} from {item.hostname}"
        out[spec.key] = spec
    return out


def _provided(spec: ResourceSpec) -> List[str]:
    """The identities a resource provides (its autoedge ids), computed once per spec."""
    if spec.auto is None:
        spec.auto = kind_class(spec.kind).autoedges(spec.name, spec.params)
    return list(spec.auto[0])
